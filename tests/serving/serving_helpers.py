"""Shared helpers of the serving tests: API keys, request headers, transactions, an in-process app."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from serving_fakes import FakeLoader

KEYS = {"chan": ("channel", "test-channel-key"), "comp": ("compliance", "test-compliance-key"),
        "adm": ("admin", "test-admin-key")}
CHANNEL = {"Authorization": "Bearer test-channel-key"}
COMPLIANCE = {"Authorization": "Bearer test-compliance-key"}
ADMIN = {"X-API-Key": "test-admin-key"}


def start_client(data: Path, state: Path, loader: FakeLoader, warm_up_days: int = 5, **env: str) -> Any:
    """Enter a TestClient on a fresh app (the caller must ``__exit__`` it); returns the client."""
    import os

    from starlette.testclient import TestClient

    import amlscore.serving.service as service
    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.scoring import ScoringEngine

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


def last_txn(dataset: Any, offset: int = 0) -> dict[str, Any]:
    """A contract record of a customer's own, dated after the whole data set (so never late)."""
    from amlscore.features.events import transaction_records

    row = dataset.transactions.iloc[[-1 - offset]]
    return next(transaction_records(row))


def new_txn(customer_id: str, txn_id: str, when: str = "2026-03-01T10:00:00Z", **fields: Any) -> dict[str, Any]:
    base = {"txn_id": txn_id, "timestamp": when, "customer_id": customer_id, "account_id": f"ACC-{customer_id}",
            "direction": "in", "amount": 12_000.0, "channel": "counter", "txn_type": "cash_deposit",
            "counterparty_type": "unknown"}
    base.update(fields)
    return base
