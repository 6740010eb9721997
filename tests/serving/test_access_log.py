"""``AML_LOG_FORMAT=json``: one JSON access line per request with its id, caller, status and latency."""

from __future__ import annotations

import json
import logging

import pytest
from serving_helpers import CHANNEL, last_txn, start_client
from serving_fakes import FakeLoader

from amlscore.serving.access_log import JsonFormatter, log_format


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture()
def json_client(tiny_bank, tmp_path):
    import os

    saved = dict(os.environ)
    loggers = {name: logging.getLogger(name) for name in ("amlscore", "serving")}
    kept = {name: (list(lg.handlers), lg.propagate, lg.level) for name, lg in loggers.items()}
    client = start_client(tiny_bank, tmp_path / "state", FakeLoader(), AML_LOG_FORMAT="json")
    lines = _Lines()
    logging.getLogger("amlscore.access").addHandler(lines)
    try:
        yield client, lines
    finally:
        logging.getLogger("amlscore.access").removeHandler(lines)
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)
        for name, (handlers, propagate, level) in kept.items():  # the JSON handlers must not leak into other tests
            loggers[name].handlers[:] = handlers
            loggers[name].propagate, loggers[name].level = propagate, level


def test_every_request_is_one_json_line_with_id_caller_and_latency(json_client, tiny_dataset):
    client, lines = json_client
    scored = client.post("/v1/score", json={"transaction": last_txn(tiny_dataset)},
                         headers={**CHANNEL, "X-Request-ID": "bank-req-42"})
    refused = client.post("/v1/score", json={"transaction": last_txn(tiny_dataset)})
    meta = client.post("/v1/metadata", headers=CHANNEL)
    assert scored.status_code == 200 and refused.status_code == 401 and meta.status_code == 200
    assert scored.headers["x-request-id"] == "bank-req-42"
    assert len(refused.headers["x-request-id"]) == 32
    by_id = {line["request_id"]: line for line in lines.lines}
    first = by_id["bank-req-42"]
    assert (first["method"], first["path"], first["status"], first["role"]) == ("POST", "/v1/score", 200, "channel")
    assert first["caller"] and first["caller"] != "anonymous" and first["latency_ms"] > 0
    assert first["logger"] == "amlscore.access" and first["ts"].endswith("Z")
    second = by_id[refused.headers["x-request-id"]]
    assert (second["status"], second["caller"]) == (401, "anonymous")
    third = by_id[meta.headers["x-request-id"]]
    assert third["path"] == "/v1/metadata" and third["caller"] == first["caller"]


def test_log_format_is_validated():
    assert log_format({}) == "text" and log_format({"AML_LOG_FORMAT": "JSON"}) == "json"
    with pytest.raises(ValueError, match="AML_LOG_FORMAT must be json or text. Got 'xml'"):
        log_format({"AML_LOG_FORMAT": "xml"})
