"""Contract 1.1: counterparty keys (customer_id of a customer, else counterparty_account) in the
distinct-counterparty features, and unknown onboarding dates, offline and online alike."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.offline import compute_feature_arrays
from amlscore.features.online import OnlineFeatureState, replay
from synthetic_frames import typed_customers, typed_transactions
from test_hand_computed import _customer, _txn


def _with_account(row: dict, account: str | None) -> dict:
    return {**row, "counterparty_account": account}


@pytest.fixture(scope="module")
def rows():
    customers = typed_customers(pd.DataFrame([_customer("A"), _customer("B"), {**_customer("N"), "onboarded_at": None}]))
    txns = typed_transactions(pd.DataFrame([
        # A receives from two accounts outside the bank, the first one twice, and from customer B
        _with_account(_txn("T1", "2025-03-01T02:00:00Z", "A", "in", 100.0, "counter", "transfer"), "EXT-1"),
        _with_account(_txn("T2", "2025-03-01T03:00:00Z", "A", "in", 100.0, "counter", "transfer"), "EXT-2"),
        _with_account(_txn("T3", "2025-03-01T04:00:00Z", "A", "in", 100.0, "counter", "transfer"), "EXT-1"),
        _with_account(_txn("T4", "2025-03-01T05:00:00Z", "A", "in", 100.0, "counter", "transfer", cp="B",
                           cp_type="individual"), "AB"),
        # a counterparty_id naming no customer, with its account: keyed by the account (EXT-2 again)
        _with_account(_txn("T5", "2025-03-01T06:00:00Z", "A", "in", 100.0, "counter", "transfer", cp="ZZ",
                           cp_type="individual"), "EXT-2"),
        # neither a customer nor an account: no counterparty
        _with_account(_txn("T6", "2025-03-01T07:00:00Z", "A", "in", 100.0, "counter", "transfer", cp="ZZ",
                           cp_type="individual"), None),
        # A pays out to three outside accounts
        *[_with_account(_txn(f"T{7 + i}", f"2025-03-01T{8 + i:02d}:00:00Z", "A", "out", 10.0, "counter", "transfer"),
                        f"EXT-{9 + i}") for i in range(3)],
        # N's onboarding date is unknown
        _txn("T10", "2025-03-02T02:00:00Z", "N", "out", 10.0, "counter", "transfer"),
        _txn("T11", "2025-03-02T03:00:00Z", "N", "out", 10.0, "counter", "transfer"),
    ]))
    arrays = compute_feature_arrays(txns, customers)
    online = replay(OnlineFeatureState(customers), txns)
    ids = txns["txn_id"].astype(str).tolist()
    offline_rows = {tid: {n: arrays[n][i] for n in FEATURE_NAMES} for i, tid in enumerate(ids)}
    online_rows = {tid: dict(zip(FEATURE_NAMES, online[i])) for i, tid in enumerate(ids)}
    return offline_rows, online_rows


EXPECTED = {
    "T1": {"fan_in_7d": 1, "is_new_counterparty": 1},
    "T2": {"fan_in_7d": 2, "is_new_counterparty": 1},
    "T3": {"fan_in_7d": 2, "is_new_counterparty": 0},  # EXT-1 again
    "T4": {"fan_in_7d": 3, "is_new_counterparty": 1},  # customer B (by its customer_id, not its account)
    "T5": {"fan_in_7d": 3, "is_new_counterparty": 0},  # unknown counterparty_id: keyed by the account EXT-2
    "T6": {"fan_in_7d": 3, "is_new_counterparty": 0},  # nothing to key it by
    "T9": {"fan_out_7d": 3, "fan_in_7d": 3, "new_cp_cnt_7d": 6},
    "T10": {"account_age_days": math.nan, "days_since_prev_txn": math.nan, "is_reactivation": 0},
    "T11": {"account_age_days": math.nan, "days_since_prev_txn": 1 / 24, "is_reactivation": 0},
}


@pytest.mark.parametrize("tid", sorted(EXPECTED))
def test_counterparty_keys_and_unknown_onboarding(rows, tid):
    offline, online = rows
    for name, want in EXPECTED[tid].items():
        for path, got in (("offline", offline[tid][name]), ("online", online[tid][name])):
            if isinstance(want, float) and math.isnan(want):
                assert math.isnan(got), (tid, name, path, got)
            else:
                assert got == pytest.approx(want), (tid, name, path, got)


def test_offline_and_online_are_equal_on_every_feature(rows):
    offline, online = rows
    for tid in offline:
        for name in FEATURE_NAMES:
            a, b = offline[tid][name], online[tid][name]
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b), (tid, name, a, b)
