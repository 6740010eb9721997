"""Point-in-time correctness of the offline path and parity of the online path with it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.features.catalogue import FEATURE_NAMES, INTEGER_FEATURES
from amlscore.features.offline import compute_feature_arrays
from amlscore.features.online import OnlineFeatureState, replay


def _matrix(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([arrays[n].astype(np.float64) for n in FEATURE_NAMES])


def assert_same_features(a: np.ndarray, b: np.ndarray, names: list[str] | None = None) -> None:
    """Exact for counts, flags and codes; within 1e-9 relative for floats; NaN equals NaN.

    ``names`` are the columns' features (default: the whole catalogue, in order)."""
    assert a.shape == b.shape
    for j, name in enumerate(FEATURE_NAMES if names is None else names):
        x, y = a[:, j], b[:, j]
        both_nan = np.isnan(x) & np.isnan(y)
        if name in INTEGER_FEATURES:
            ok = (x == y) | both_nan
        else:
            ok = both_nan | (x == y) | (np.abs(x - y) <= 1e-9 * np.maximum(np.abs(x), np.abs(y)))
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise AssertionError(f"{name}: {int((~ok).sum())} rows differ, first row {i}: {x[i]!r} vs {y[i]!r}")


def test_later_transactions_never_change_earlier_features(small_bank):
    customers, txns = small_bank
    cut = txns["timestamp"].iloc[len(txns) // 2]
    early = txns[txns["timestamp"] <= cut].reset_index(drop=True)
    base = _matrix(compute_feature_arrays(early, customers))

    later = txns[txns["timestamp"] > cut].copy()
    # alter everything about the later transactions that features read, and append more of them
    later["amount"] = later["amount"] * 3 + 1
    later["direction"] = later["direction"].map({"in": "out", "out": "in"}).astype(txns["direction"].dtype)
    extra = later.copy()
    extra["txn_id"] = extra["txn_id"].astype(str) + "X"
    extra["timestamp"] = extra["timestamp"] + pd.Timedelta(minutes=1)
    full = pd.concat([early, later, extra]).sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)
    after = compute_feature_arrays(full, customers)
    pos = pd.Index(full["txn_id"].astype(str)).get_indexer(early["txn_id"].astype(str))
    assert (pos >= 0).all()
    assert_same_features(base, _matrix(after)[pos])


def test_partitioned_offline_equals_one_piece(small_bank):
    customers, txns = small_bank
    whole = _matrix(compute_feature_arrays(txns, customers, chunk_rows=10_000_000))
    parts = _matrix(compute_feature_arrays(txns, customers, chunk_rows=700))
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(parts))
    np.testing.assert_array_equal(np.nan_to_num(whole), np.nan_to_num(parts))


def test_online_replay_matches_offline(small_bank):
    customers, txns = small_bank
    offline = _matrix(compute_feature_arrays(txns, customers))
    online = replay(OnlineFeatureState(customers), txns)
    assert_same_features(offline, online)
    # no column is left unset by the formulas
    assert not np.isnan(online).all(axis=0).any()
