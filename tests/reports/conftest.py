"""Fixtures of the report tests: a tiny synthetic bank, its case store, a stand-in model set and audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from report_fakes import FakeModelSet, fake_audit_log  # noqa: E402


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-customer, 60-day synthetic bank in the contract (session-wide, read only)."""
    from synth import SynthConfig, generate_bank, write_bank

    folder = tmp_path_factory.mktemp("reports-bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=60, seed=11)), folder)
    return folder


@pytest.fixture(scope="session")
def store(bank_dir: Path) -> Any:
    from reports.store import CaseStore

    return CaseStore.open(bank_dir)


@pytest.fixture(scope="session")
def fake_model() -> Any:
    from reports.case import ModelInfo

    return ModelInfo(model_set=FakeModelSet(), name="aml-model-set", version="3", alias="champion", run_id="r123")


@pytest.fixture(scope="session")
def busy_customer(store: Any) -> str:
    """The customer with the most transactions in the data set."""
    rows = store.rows
    return max(rows, key=lambda c: rows[c][1] - rows[c][0])


@pytest.fixture(scope="session")
def audit(tmp_path_factory: pytest.TempPathFactory, store: Any, busy_customer: str) -> Any:
    """A throw-away audit log holding decisions on two transactions of ``busy_customer``."""
    return fake_audit_log(tmp_path_factory.mktemp("state") / "audit.sqlite", store, busy_customer)
