"""The HTTP API against its own OpenAPI 3.1 document, with generated requests (schemathesis, both roles).

The real app (BentoML's ASGI app with the gate, the engine, the audit log and the online state; a stand-in
model set) answers schemathesis' requests generated from ``/docs.json``: valid and invalid bodies,
missing and wrong keys. Every answer must be a documented status with a documented body, and none a
5xx. Bounded: ``FUZZ_CASES`` requests per route and role (a few thousand in all); hypothesis is
derandomized, so a failure repeats. ``benchmarks/bench_fuzz.py`` runs the same with 50,000 and more.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from serving_fakes import FakeLoader
from serving_helpers import CHANNEL, COMPLIANCE

FUZZ_CASES = int(os.environ.get("FUZZ_CASES", "150"))


@contextmanager
def served(data: Path, state: Path) -> Iterator[str]:
    """The service's ASGI app (stand-in model set) served by uvicorn on a free local port in a thread; yields its URL.

    uvicorn runs the app's lifespan once (start, then shutdown at the end), as ``bentoml serve`` does.
    """
    import socket
    import threading
    import time
    import warnings

    import uvicorn

    import amlscore.serving.service as service
    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.scoring import ScoringEngine
    from serving_helpers import KEYS

    saved = dict(os.environ)
    write_keys_file(state / "api_keys.yaml", KEYS)
    os.environ.update({"AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state), "AML_WARM_UP_DAYS": "5",
                       "AML_AUDIT_SYNC": "normal", "AML_MAX_FUTURE_SECONDS": "0"})
    loader = FakeLoader()
    service.make_engine = lambda settings: ScoringEngine(settings, loader=loader)
    service.AmlScoring.config["metrics"] = {"enabled": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asgi = service.AmlScoring.to_asgi()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, host="127.0.0.1", port=port, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert server.started, "the service did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Iterator[str]:
    with served(tiny_bank, tmp_path_factory.mktemp("state-fuzz")) as url:
        yield url


def fuzz(url: str, headers: dict[str, str], cases: int, statuses: dict[int, int] | None = None) -> dict[str, int]:
    """Send ``cases`` generated requests to every route with ``headers``; returns the count per route
    (and counts the answers' statuses in ``statuses`` when given).

    Raises on the first answer that breaks the document (schemathesis' default checks: no 5xx, a
    documented status, content type and body).
    """
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(f"{url}/docs.json")
    sent: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        if not operation.path.startswith("/v1/"):
            continue
        sent[operation.path] = 0

        @settings(max_examples=cases, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            sent[operation.path] += 1
            # the channel rules (ip_address with online banking, terminal_id with POS, ...) and the data (a known
            # customer, time order) are beyond a JSON schema: a schema-valid request may rightly get 400, 409, 422
            response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            if statuses is not None:
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        check()
    return sent


@pytest.mark.parametrize("role", ["channel", "compliance"])
def test_every_generated_request_gets_a_documented_answer(app: str, role: str) -> None:
    sent = fuzz(app, CHANNEL if role == "channel" else COMPLIANCE, FUZZ_CASES)
    assert set(sent) >= {"/v1/score", "/v1/score_batch", "/v1/explain", "/v1/feedback", "/v1/admin/reload"}
    assert sum(sent.values()) >= 8 * FUZZ_CASES // 2, sent
