"""The online state: idempotent replays, restarts from the durable store, and refusals of bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from amlscore.features.events import transaction_records
from amlscore.features.online import BadTransactionError, LateTransactionError, OnlineFeatureState
from amlscore.features.registry import UnknownCustomerError
from amlscore.features.store import SQLiteFeatureStore


@pytest.fixture()
def records(small_bank):
    _, txns = small_bank
    return list(transaction_records(txns.iloc[:1500]))


def _run(state: OnlineFeatureState, recs) -> np.ndarray:
    return np.array([state.update_vector(r) for r in recs])


def test_replayed_txn_id_returns_the_same_row_and_is_not_counted_twice(small_bank, records):
    customers, _ = small_bank
    clean = _run(OnlineFeatureState(customers), records)
    state = OnlineFeatureState(customers)
    first = _run(state, records[:800])
    again = _run(state, records[:800])  # every one a replay
    rest = _run(state, records[800:])
    np.testing.assert_array_equal(np.nan_to_num(first), np.nan_to_num(again))
    np.testing.assert_array_equal(np.nan_to_num(np.vstack([first, rest])), np.nan_to_num(clean))
    assert state.processed == len(records)


@pytest.mark.parametrize("graceful", [True, False], ids=["closed", "crashed"])
def test_restart_continues_where_it_stopped(tmp_path, small_bank, records, graceful):
    customers, _ = small_bank
    clean = _run(OnlineFeatureState(customers), records)
    db = tmp_path / "state.sqlite"
    state = OnlineFeatureState(customers, store=db, snapshot_every=500)
    first = _run(state, records[:1100])
    if graceful:
        state.close()
    del state  # a crash: no final snapshot; the store has a snapshot at 1000 and the events after it
    restarted = OnlineFeatureState(customers, store=db, snapshot_every=500)
    assert restarted.processed == 1100
    rest = _run(restarted, records[1100:])
    np.testing.assert_array_equal(np.nan_to_num(np.vstack([first, rest])), np.nan_to_num(clean))
    assert SQLiteFeatureStore(db).count() == len(records)


def test_restart_without_any_snapshot_replays_the_store(tmp_path, small_bank, records):
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    state = OnlineFeatureState(customers, store=db, snapshot_every=0)
    _run(state, records[:300])
    restarted = OnlineFeatureState(customers, store=db, snapshot_every=0)
    assert restarted.processed == 300
    before, after = state.features_of(records[10]["txn_id"]), restarted.features_of(records[10]["txn_id"])
    assert before is not None and after is not None
    np.testing.assert_array_equal(np.array(list(before.values())), np.array(list(after.values())))
    nxt = records[300]
    expected = _run(OnlineFeatureState(customers), records[:301])[-1]
    np.testing.assert_array_equal(restarted.update_vector(nxt), expected)


def _bad_variants(rec):
    yield "unknown customer", {**rec, "customer_id": "NOPE"}, UnknownCustomerError, "NOPE"
    yield "missing field", {k: v for k, v in rec.items() if k != "channel"}, BadTransactionError, "channel"
    yield "unknown channel", {**rec, "channel": "fax"}, BadTransactionError, "fax"
    yield "zero amount", {**rec, "amount": 0}, BadTransactionError, "amount"
    yield "negative amount", {**rec, "amount": -5}, BadTransactionError, "amount"
    yield "NaN amount", {**rec, "amount": math.nan}, BadTransactionError, "amount"
    yield "text amount", {**rec, "amount": "lots"}, BadTransactionError, "lots"
    yield "bad timestamp", {**rec, "timestamp": "yesterday"}, BadTransactionError, "timestamp"
    yield "late", {**rec, "timestamp": "2020-01-01T00:00:00Z"}, LateTransactionError, "older"


def test_bad_input_is_refused_and_changes_nothing(small_bank, records):
    customers, _ = small_bank
    clean = _run(OnlineFeatureState(customers), records[:400])
    state = OnlineFeatureState(customers)
    _run(state, records[:200])
    template = dict(records[200])
    template["txn_id"] = "BAD-1"
    for _, bad, error, needle in _bad_variants(template):
        with pytest.raises(error, match=needle):
            state.update_vector(bad)
    assert state.processed == 200
    assert state.features_of("BAD-1") is None
    rest = _run(state, records[200:400])
    np.testing.assert_array_equal(np.nan_to_num(rest), np.nan_to_num(clean[200:]))
