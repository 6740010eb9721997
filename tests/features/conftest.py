"""Fixtures for feature tests: small typed frames with the patterns features look for."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlscore.features.offline import ordered_transactions  # noqa: E402
from servers import redis_server  # noqa: E402
from synthetic_frames import make_customers, make_transactions  # noqa: E402


@pytest.fixture(scope="session")
def small_bank():
    customers = make_customers(120, seed=3)
    transactions = make_transactions(customers, 6000, seed=4, days=150)
    return customers, transactions


# the shared store's tests (test_redis_state, test_redis_trim): a real redis-server per module, emptied per test
@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture()
def fresh(redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushall()
    return redis_url


@pytest.fixture(scope="module")
def stream(small_bank):
    """The small bank's customers and its transactions in (time, txn_id) order."""
    customers, transactions = small_bank
    return customers, ordered_transactions(transactions)
