"""Fixtures for feature tests: small typed frames with the patterns features look for."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from synthetic_frames import make_customers, make_transactions  # noqa: E402


@pytest.fixture(scope="session")
def small_bank():
    customers = make_customers(120, seed=3)
    transactions = make_transactions(customers, 6000, seed=4, days=150)
    return customers, transactions
