"""Logs as JSON lines (``AML_LOG_FORMAT=json``): every request with its id, caller and latency.

With ``AML_LOG_FORMAT=json`` the service's own loggers (``amlscore.*``, ``serving``) write one JSON object
per line to stderr (``ts``, ``level``, ``logger``, ``message`` and any structured fields), and
:class:`AccessLogMiddleware` adds one ``amlscore.access`` line per HTTP request::

    {"ts": "2026-12-07T13:30:01.123Z", "level": "INFO", "logger": "amlscore.access", "message": "POST /v1/score 200",
     "request_id": "5f0c...", "method": "POST", "path": "/v1/score", "status": 200, "latency_ms": 1.84,
     "caller": "key-3f2a", "role": "channel"}

``request_id`` is the client's ``X-Request-ID`` header when it sends one (up to 128 printable
characters), else a new random id; the response carries it back in ``X-Request-ID``. ``caller`` is the
API key's id (never the key), ``anonymous`` for a request refused before its key was known. Log
collectors (Fluent Bit, Vector, Splunk) read the lines as they are. Without the variable (or with
``text``) nothing changes: no access line, the usual text logs.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any, Awaitable, Callable, MutableMapping

__all__ = ["AccessLogMiddleware", "JsonFormatter", "configure_logging", "log_format"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

access_log = logging.getLogger("amlscore.access")
_OWN_LOGGERS = ("amlscore", "serving")
_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


def log_format(environ: MutableMapping[str, str] | None = None) -> str:
    """``json`` or ``text`` from ``AML_LOG_FORMAT`` (default ``text``); anything else is an error."""
    value = (os.environ if environ is None else environ).get("AML_LOG_FORMAT", "text").strip().lower() or "text"
    if value not in ("json", "text"):
        raise ValueError(f"AML_LOG_FORMAT must be json or text. Got {value!r} instead.")
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ms), level, logger, message, the record's extra fields, and the
    traceback as ``exc_info`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            payload["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False, default=str)


def configure_logging(fmt: str) -> None:
    """With ``fmt == "json"``, route the service's own loggers to stderr as JSON lines (once per process)."""
    if fmt != "json":
        return
    for name in _OWN_LOGGERS:
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


class AccessLogMiddleware:
    """ASGI middleware writing one ``amlscore.access`` record per HTTP request (``AML_LOG_FORMAT=json`` only).

    It must wrap the API-key gate (be added before it) so that refused requests and the routes the gate
    answers itself are logged too; the gate leaves the caller in ``scope["state"]["aml_caller"]``.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], enabled: bool | None = None) -> None:
        self.app = app
        self.enabled = (log_format() == "json") if enabled is None else enabled
        if self.enabled:
            configure_logging("json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.enabled or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode("ascii"))]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            caller = (scope.get("state") or {}).get("aml_caller")
            method, path = scope.get("method", ""), scope.get("path", "")
            access_log.info("%s %s %d", method, path, status, extra={
                "request_id": request_id, "method": method, "path": path, "status": status,
                "latency_ms": round((time.perf_counter() - started) * 1000.0, 3),
                "caller": getattr(caller, "key_id", "anonymous"), "role": getattr(caller, "role", None)})


def _request_id(scope: Scope) -> str:
    for key, value in scope.get("headers", []):
        if key.lower() == b"x-request-id":
            text = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    return uuid.uuid4().hex
