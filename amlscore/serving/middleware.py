"""The ASGI gate in front of every ``/v1/`` route: API key, role, body size, one error shape.

In order, before BentoML parses anything:

1. authentication (401) and the role's permission for the route (403) (:mod:`amlscore.serving.auth`);
2. the media type: JSON only (a body sent without ``Content-Type`` or as a form, as ``curl -d`` does,
   is read as JSON; anything else gets 415);
3. the body size: ``Content-Length`` above the limit, or a streamed body growing past it, gets 413
   without the body being parsed (the limit of ``/v1/score_batch`` is larger);
4. the caller is put in the request scope (``request.state.aml_caller``) for the API method;
5. a route the service registered with :meth:`Gate.serve_directly` (``POST /v1/score``, the one
   channels call for every transaction) is answered here with the body already read, instead of
   going on through BentoML's context middleware, router and API dispatch (a request object, the
   method's signature inspected again, the IO model built, the response passed back through
   Starlette): 0.4-0.7 ms less CPU per request, of 3.2-5 ms (docs/serving.md). The outer
   middlewares (access log, request metrics, tracing, timeout, concurrency limit) still see the
   request, and the answers are the same (the API method calls the same code;
   ``AML_SCORE_DISPATCH=bentoml`` sends the route through BentoML; a test compares both).

``GET /docs.json`` is answered here with the service's own OpenAPI 3.1 document
(:mod:`amlscore.serving.openapi`); the OpenAPI page ``/`` reads it.

On the way out, every error response of a ``/v1/`` route that is not already in the service's
error shape (BentoML's request-validation errors, unknown routes, wrong methods, unexpected
failures) is rewritten into it: ``{"error", "code", "status", "details"?}``. Paths outside
``/v1/`` (``/``, ``/docs.json``, ``/livez``, ``/readyz``, ``/healthz``, ``/metrics``) are open.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from amlscore.core.identity import CredentialRefused, SignInLocked, UserStore, basic_credentials
from amlscore.serving.auth import Caller, KeyStore, authorize, key_from_headers
from amlscore.serving.errors import (
    NotReady,
    PayloadTooLarge,
    ServingError,
    TooManySignIns,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
DirectHandler = Callable[[bytes, Caller], Awaitable[tuple[int, bytes]]]
"""``handler(body, caller) -> (status, JSON body)`` for a route the gate answers itself."""

API_PREFIX = "/v1/"
OPENAPI_PATH = "/docs.json"  # the OpenAPI 3.1 document (amlscore.serving.openapi) instead of BentoML's 3.0.2 one
BATCH_ROUTE = "/v1/score_batch"
_STATUS_CODES = {400: "invalid_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 409: "conflict", 413: "payload_too_large", 415: "unsupported_media_type",
                 422: "unprocessable", 429: "too_many_requests", 500: "internal_error", 503: "not_ready",
                 504: "timeout"}


class Gate:
    """What the middleware checks against, set by the service once it has loaded its keys."""

    def __init__(self) -> None:
        self.keys: KeyStore | None = None
        self.users: UserStore | None = None  # named people (Authorization: Basic); None: keys only
        self.max_body_bytes = 64 * 1024
        self.max_batch_body_bytes = 4 * 1024 * 1024
        self.direct: dict[str, DirectHandler] = {}

    def configure(self, keys: KeyStore, max_body_bytes: int, max_batch_body_bytes: int,
                  users: UserStore | None = None) -> None:
        self.keys = keys
        self.users = users
        self.max_body_bytes = max_body_bytes
        self.max_batch_body_bytes = max_batch_body_bytes
        self.direct = {}

    def copy(self) -> "Gate":
        """An independent copy of the current configuration."""
        other = Gate()
        other.configure(self.keys, self.max_body_bytes, self.max_batch_body_bytes, self.users)  # type: ignore[arg-type]
        other.direct = dict(self.direct)
        return other

    def serve_directly(self, path: str, handler: DirectHandler) -> None:
        """Answer ``POST path`` with ``handler`` once the checks pass (see the module docstring, step 5)."""
        if not path.startswith(API_PREFIX):
            raise ValueError(f"only routes under {API_PREFIX} pass the gate; got {path!r}")
        self.direct[path] = handler


GATE = Gate()


def error_body(status: int, message: str, code: str | None = None, details: list[dict[str, Any]] | None = None) -> bytes:
    out: dict[str, Any] = {"error": message, "code": code or _STATUS_CODES.get(status, "error"), "status": status}
    if details:
        out["details"] = details
    return json.dumps(out, ensure_ascii=False).encode("utf-8")


def _loc(loc: Any) -> str:
    parts = [str(p) for p in (loc or [])]
    return ".".join(parts) if parts else "body"


def invalid_request_body(errors: list[dict[str, Any]], status: int = 400) -> bytes:
    """The 400 body for pydantic's validation errors: every problem in ``details``, the first five in words."""
    details = [{"loc": _loc(d.get("loc")), "msg": str(d.get("msg", "")), "type": str(d.get("type", ""))}
               for d in errors if isinstance(d, dict)]
    summary = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
    more = f" (and {len(details) - 5} more)" if len(details) > 5 else ""
    return error_body(status, f"invalid request: {summary}{more}", "invalid_request", details)


def rewrite_error(status: int, body: bytes) -> bytes:
    """An error body in the service's shape (unchanged when it already is)."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):  # BentoML wraps 4xx messages in a list
        data = data[0]
    if isinstance(data, dict) and "code" in data and "error" in data:
        return body
    if isinstance(data, dict) and isinstance(data.get("detail"), list):  # pydantic validation, as BentoML returns it
        return invalid_request_body(data["detail"], status)
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return error_body(status, data["error"])
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        return error_body(status, data["detail"])
    text = body.decode("utf-8", "replace").strip() or _STATUS_CODES.get(status, "error").replace("_", " ")
    return error_body(status, text[:500])


async def _send_json(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _answer_directly(send: Send, handler: DirectHandler, body: bytes, caller: Caller, path: str) -> None:
    try:
        status, payload = await handler(body, caller)
    except Exception:  # a bug: answer as BentoML would (500, nothing internal shown) and keep the trace in the log
        log.exception("unexpected failure answering %s", path)
        status, payload = 500, error_body(500, "An unexpected error has occurred, please check the server log.")
    await _send_json(send, status, payload)


async def _send_error(send: Send, err: ServingError, extra_headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(err.body(), ensure_ascii=False).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if err.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="amlscore"'))
    await send({"type": "http.response.start", "status": err.status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})


def _person_caller(gate: Gate, headers: dict[str, str]) -> Caller | None:
    """The named person of an ``Authorization: Basic`` header (recorded as ``user:<name>``), None without one."""
    creds = basic_credentials(headers.get("authorization"))
    if creds is None:
        return None
    if gate.users is None:
        raise Unauthorized("this service knows no named people: send an API key")
    try:
        person = gate.users.authenticate(*creds)
    except SignInLocked as exc:
        raise TooManySignIns(str(exc), exc.retry_after) from None
    except CredentialRefused as exc:
        raise Unauthorized(str(exc)) from None
    return Caller(key_id=person.key_id, role=person.role)


class GateMiddleware:
    """ASGI middleware applying :data:`GATE` to ``/v1/`` routes (see the module docstring).

    The service configures the module's :data:`GATE` while its app starts (the instance is created
    in the app's lifespan). When that startup completes, the middleware pins a copy of it: several
    apps in one process (the tests) then keep their own keys and direct handlers, whichever started last.
    """

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]], gate: Gate | None = None) -> None:
        self.app = app
        self.gate = gate or GATE

    def _pin_on_startup(self, send: Send) -> Send:
        async def pinning_send(message: Message) -> None:
            if message.get("type") == "lifespan.startup.complete" and self.gate is GATE:
                self.gate = GATE.copy()
            await send(message)

        return pinning_send

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._pin_on_startup(send))
            return
        if scope["type"] == "http" and scope["path"] == OPENAPI_PATH and scope.get("method") in ("GET", "HEAD"):
            from amlscore.serving.openapi import openapi_json  # built on the first request for it

            await _send_json(send, 200, openapi_json())
            return
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        gate = self.gate
        try:
            if gate.keys is None:
                raise NotReady("the service is starting: API keys are not loaded yet")
            caller = _person_caller(gate, headers) or gate.keys.authenticate(key_from_headers(headers))
            authorize(caller, path)
        except ServingError as err:
            if err.status in (401, 403, 429):
                log.warning("refused %s %s: %s", scope.get("method"), path, err.message)
            retry = [(b"retry-after", str(err.retry_after).encode())] if isinstance(err, TooManySignIns) else None
            await _send_error(send, err, retry)
            return

        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype in ("", "application/x-www-form-urlencoded"):
            # curl -d sends form encoding by default; every route here takes JSON, so read the body as JSON
            scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
            scope["headers"].append((b"content-type", b"application/json"))
        elif ctype != "application/json" and not ctype.endswith("+json"):
            err = UnsupportedMediaType(f"the body must be JSON (Content-Type: application/json). Got {ctype!r} instead.")
            await _send_error(send, err)
            return

        limit = gate.max_batch_body_bytes if path == BATCH_ROUTE else gate.max_body_bytes
        too_large = PayloadTooLarge(f"request body larger than {limit} bytes for {path}")
        declared = headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    await _send_error(send, too_large, [(b"connection", b"close")])
                    return
            except ValueError:
                pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _send_error(send, too_large, [(b"connection", b"close")])
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope.setdefault("state", {})["aml_caller"] = caller  # for the API method and the access log
        direct = gate.direct.get(path)
        if direct is not None and scope.get("method") == "POST":
            await _answer_directly(send, direct, body, caller, path)
            return
        delivered = False

        async def replay_receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: Message | None = None
        parts: list[bytes] = []

        async def rewriting_send(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                if message["status"] >= 400:
                    held = message
                    return
                await send(message)
                return
            if message["type"] == "http.response.body" and held is not None:
                parts.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                status = int(held["status"])
                new_body = rewrite_error(status, b"".join(parts))
                hdrs = [(k, v) for k, v in held.get("headers", []) if k.lower() not in (b"content-length", b"content-type")]
                hdrs += [(b"content-type", b"application/json"), (b"content-length", str(len(new_body)).encode())]
                await send({**held, "headers": hdrs})
                await send({"type": "http.response.body", "body": new_body})
                held = None
                return
            await send(message)

        await self.app(scope, replay_receive, rewriting_send)
