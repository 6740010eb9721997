"""Fixtures for the serving tests: a tiny synthetic bank, API keys, and the service behind a TestClient.

Unit tests run the real BentoML app in process (``AmlScoring.to_asgi()`` + Starlette's TestClient)
with a stand-in model set (:mod:`serving_fakes`) injected through ``serving.service.make_engine``;
the end-to-end tests (``test_e2e.py``) start ``bentoml serve`` with a model set from the registry.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from serving_fakes import FakeLoader  # noqa: E402

KEYS = {"chan": ("channel", "test-channel-key"), "comp": ("compliance", "test-compliance-key"),
        "adm": ("admin", "test-admin-key")}
CHANNEL = {"Authorization": "Bearer test-channel-key"}
COMPLIANCE = {"Authorization": "Bearer test-compliance-key"}
ADMIN = {"X-API-Key": "test-admin-key"}


@pytest.fixture(scope="session")
def tiny_bank(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-customer, 30-day synthetic bank written in the contract (session-wide, read only)."""
    from synth import SynthConfig, generate_bank, write_bank

    folder = tmp_path_factory.mktemp("bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=30, seed=11)), folder)
    return folder


@pytest.fixture(scope="session")
def tiny_dataset(tiny_bank: Path) -> Any:
    from contract import load_dataset

    return load_dataset(tiny_bank)


def start_client(data: Path, state: Path, loader: FakeLoader, warm_up_days: int = 5, **env: str) -> Any:
    """Enter a TestClient on a fresh app (the caller must ``__exit__`` it); returns the client."""
    import os

    from starlette.testclient import TestClient

    import serving.service as service
    from serving.auth import write_keys_file
    from serving.scoring import ScoringEngine

    keys_file = state / "api_keys.yaml"
    if not keys_file.exists():
        write_keys_file(keys_file, KEYS)
    os.environ.update({"AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state), "AML_WARM_UP_DAYS": str(warm_up_days),
                       "AML_AUDIT_SYNC": "normal", "AML_MAX_FUTURE_SECONDS": "0", **env})
    service.make_engine = lambda settings: ScoringEngine(settings, loader=loader)
    service.AmlScoring.config["metrics"] = {"enabled": False}  # several apps in one process: no Prometheus
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        client = TestClient(service.AmlScoring.to_asgi())
    client.__enter__()
    return client


@pytest.fixture(scope="module")
def service_env(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Iterator[dict[str, Any]]:
    """One running app for a test module: its client, loader and state folder."""
    import os

    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("state")
    loader = FakeLoader()
    client = start_client(tiny_bank, state, loader)
    try:
        yield {"client": client, "loader": loader, "state": state, "data": tiny_bank}
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture()
def client(service_env: dict[str, Any]) -> Any:
    return service_env["client"]


def last_txn(dataset: Any, offset: int = 0) -> dict[str, Any]:
    """A contract record of a customer's own, dated after the whole data set (so never late)."""
    from features.events import transaction_records

    row = dataset.transactions.iloc[[-1 - offset]]
    return next(transaction_records(row))


def new_txn(customer_id: str, txn_id: str, when: str = "2026-03-01T10:00:00Z", **fields: Any) -> dict[str, Any]:
    base = {"txn_id": txn_id, "timestamp": when, "customer_id": customer_id, "account_id": f"ACC-{customer_id}",
            "direction": "in", "amount": 12_000.0, "channel": "counter", "txn_type": "cash_deposit",
            "counterparty_type": "unknown"}
    base.update(fields)
    return base
