"""Offline path: one feature row per transaction over a whole history, point in time.

Each transaction's row uses only that transaction and earlier ones in time order (ties in
timestamp ordered by ``txn_id``): windows are ``(t - w, t]`` over rows up to and including it,
"first seen" and "previous" look only backwards, and peer-group averages use complete days before
the transaction's day. Appending or altering later transactions therefore never changes a row.

The work is group-wise (per customer, per IP address, per device, per operator, per peer group and
day), each group a streaming pass in time order with no state shared across groups: the shape a
distributed engine runs as ``groupBy(entity).applyInPandas``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd

from features.catalogue import FEATURE_NAMES, INTEGER_FEATURES, WINDOWS
from features.events import WINDOW_SUMS, EventFacts, TxnColumns, derive_facts
from features.finalize import (
    DISTINCT_FEATURES,
    VELOCITY_WINDOWS,
    Primitives,
    finalize,
    pack_facts,
    reactivation_flags,
    window_sum_values,
)
from features.kernels import (
    previous_times,
    segment_cumsum,
    segment_firsts,
    window_distinct,
    window_max,
    window_starts,
)
from features.params import FeatureParams, load_feature_params
from features.registry import DAY_NS, CustomerRegistry

if TYPE_CHECKING:  # pragma: no cover
    from contract.load import Dataset

WINDOW_NS = {name: seconds * 1_000_000_000 for name, seconds in WINDOWS.items()}
ID_COLUMNS = ("txn_id", "customer_id", "timestamp")
ProgressFn = Callable[[str, float], None]


@dataclass(frozen=True)
class _Sorted:
    """A permutation of the batch sorted by (key, time order) and its segment starts."""

    order: np.ndarray
    seg_first: np.ndarray


def _sort_by(key: np.ndarray) -> _Sorted:
    order = np.argsort(key, kind="stable")  # stable: rows are already in time order
    return _Sorted(order=order, seg_first=segment_firsts(key[order]))


def _time_order(txns: pd.DataFrame) -> np.ndarray | None:
    """None when the frame is already ordered by (timestamp, txn_id), else the permutation that orders it."""
    t = txns["timestamp"].to_numpy()
    ids = txns["txn_id"].astype(str).to_numpy(dtype=object)
    dt = np.diff(t.astype("datetime64[ns]").astype(np.int64)) if len(t) > 1 else np.zeros(0, np.int64)
    if (dt > 0).all() or ((dt >= 0).all() and not _tie_out_of_order(dt, ids)):
        return None
    return np.lexsort((ids, t.astype("datetime64[ns]").astype(np.int64)))


def _tie_out_of_order(dt: np.ndarray, ids: np.ndarray) -> bool:
    ties = np.flatnonzero(dt == 0)
    return bool(len(ties)) and bool((ids[ties] > ids[ties + 1]).any())


def _entity_codes(values: np.ndarray) -> tuple[np.ndarray, int]:
    """Dense codes for a text column; missing values get -1."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    return codes.astype(np.int64), len(uniques)


def _distinct_per_entity(tx: TxnColumns, facts: EventFacts, entity: np.ndarray, window: str) -> np.ndarray:
    """Distinct customers seen with each row's entity (IP, device, operator) in the window; 0 without one."""
    codes, _ = _entity_codes(entity)
    out = np.zeros(len(tx), dtype=np.int64)
    rows = np.flatnonzero(codes >= 0)
    if len(rows) == 0:
        return out
    s = _sort_by(codes[rows])
    idx = rows[s.order]
    out[idx] = window_distinct(tx.t_ns[idx], s.seg_first, facts.cust[idx], np.int64(facts.cust.max() + 1),
                               np.int64(WINDOW_NS[window]))
    return out


def _new_counterparty(facts: EventFacts, tx: TxnColumns) -> np.ndarray:
    """First time (in time order) this customer deals with this counterparty."""
    cp, n_cp = _entity_codes(tx.counterparty_id)
    pair = facts.cust * (n_cp + 1) + cp
    first = ~pd.Series(pair).duplicated(keep="first").to_numpy()
    return first & (cp >= 0)


def _peer_totals(facts: EventFacts, tx: TxnColumns, registry: CustomerRegistry, lookback: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's peer group's cash (fen) and transaction count over the ``lookback`` complete days before its day."""
    group = registry.peer_group[facts.cust]
    day0 = int(facts.local_day.min()) - lookback - 1
    n_days = int(facts.local_day.max()) - day0 + 1
    n_groups = len(registry.peer_group_names)
    flat = group * n_days + (facts.local_day - day0)
    size = n_groups * n_days
    # bincount's float weights are exact here: integer fen totals stay far below 2**53.
    cash_fen = np.rint(np.bincount(flat, weights=(tx.fen * facts.is_cash).astype(np.float64), minlength=size))
    cash_fen = cash_fen.astype(np.int64)
    count = np.bincount(flat, minlength=size).astype(np.int64)
    cum_cash = np.cumsum(cash_fen.reshape(n_groups, n_days), axis=1)
    cum_cnt = np.cumsum(count.reshape(n_groups, n_days), axis=1)
    d = facts.local_day - day0
    # days [d - lookback, d - 1]: cum[d - 1] - cum[d - lookback - 1]; day0 leaves room so indices stay >= 0
    hi, lo = d - 1, d - lookback - 1
    return cum_cash[group, hi] - cum_cash[group, lo], cum_cnt[group, hi] - cum_cnt[group, lo]


def _customer_primitives(tx: TxnColumns, facts: EventFacts, fact_matrix: np.ndarray, registry: CustomerRegistry, params: FeatureParams,
                         progress: ProgressFn | None) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray], np.ndarray, np.ndarray,
                                                              np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = len(tx)
    s = _sort_by(facts.cust)
    o, sf = s.order, s.seg_first
    t = tx.t_ns[o]
    is_in = tx.is_in[o]

    prev_t_s, last_in_s = previous_times(t, sf, is_in, registry.onboard_ns[facts.cust[o]])
    prev_t = np.empty(n, np.int64)
    last_in = np.empty(n, np.int64)
    prev_t[o] = prev_t_s
    last_in[o] = last_in_s
    is_new_cp = _new_counterparty(facts, tx)
    is_react = reactivation_flags(tx.t_ns, prev_t, params)
    if progress:
        progress("history", 0.2)

    starts = {w: window_starts(t, sf, np.int64(WINDOW_NS[w])) for w in WINDOWS}
    values = window_sum_values(fact_matrix, is_new_cp, is_react)[o]
    sums_s = np.empty_like(values)
    for j, (_, w) in enumerate(WINDOW_SUMS):
        cum = np.cumsum(values[:, j])
        st = starts[w]
        before = np.where(st > 0, cum[np.maximum(st - 1, 0)], 0)
        sums_s[:, j] = cum - before
    del values
    sums = np.empty_like(sums_s)
    sums[o] = sums_s
    del sums_s
    if progress:
        progress("windows", 0.5)

    sq = tx.amount[o] * tx.amount[o]
    amount_s = tx.amount[o]
    sumsq = {}
    maxes = {}
    for d, mask in (("in", is_in), ("out", ~is_in)):
        cum = segment_cumsum(np.where(mask, sq, 0.0), sf)
        sq_out = np.empty((n, len(VELOCITY_WINDOWS)), np.float64)
        mx_out = np.empty((n, len(VELOCITY_WINDOWS)), np.float64)
        for wi, w in enumerate(VELOCITY_WINDOWS):
            st = starts[w]
            base = np.where(st > sf, cum[np.maximum(st - 1, 0)], 0.0)
            tmp = np.empty(n, np.float64)
            tmp[o] = cum - base
            sq_out[:, wi] = tmp
            tmp = np.empty(n, np.float64)
            tmp[o] = window_max(t, sf, amount_s, mask, np.int64(WINDOW_NS[w]))
            mx_out[:, wi] = tmp
        sumsq[d] = sq_out
        maxes[d] = mx_out
    if progress:
        progress("spreads", 0.7)

    cp, n_cp = _entity_codes(tx.counterparty_id)
    cp_s = cp[o]
    distinct: dict[str, np.ndarray] = {}
    for d, mask in (("in", is_in), ("out", ~is_in)):
        keys = np.where(mask & (cp_s >= 0), cp_s, -1)
        for w in ("7d", "30d"):
            tmp = np.empty(n, np.int64)
            tmp[o] = window_distinct(t, sf, keys, np.int64(n_cp), np.int64(WINDOW_NS[w]))
            distinct[f"fan_{d}_{w}"] = tmp
    return sums, is_new_cp, distinct, prev_t, last_in, sumsq["in"], sumsq["out"], maxes["in"], maxes["out"]


def compute_feature_arrays(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                           progress: ProgressFn | None = None) -> dict[str, np.ndarray]:
    """Catalogue features for transactions already in time order, as ``name -> array`` (row order kept)."""
    params = params or load_feature_params()
    registry = CustomerRegistry.from_customers(customers, params.bank_utc_offset_hours)
    tx = TxnColumns.from_frame(txns)
    if len(tx) == 0:
        return {name: np.zeros(0, np.int64 if name in INTEGER_FEATURES else np.float64) for name in FEATURE_NAMES}
    facts = derive_facts(tx, registry, params)
    fact_matrix = pack_facts(tx, facts)
    sums, is_new_cp, distinct, prev_t, last_in, sq_in, sq_out, mx_in, mx_out = _customer_primitives(
        tx, facts, fact_matrix, registry, params, progress
    )
    distinct["ip_customers_24h"] = _distinct_per_entity(tx, facts, tx.ip_address, "24h")
    distinct["ip_customers_7d"] = _distinct_per_entity(tx, facts, tx.ip_address, "7d")
    distinct["device_customers_24h"] = _distinct_per_entity(tx, facts, tx.device_id, "24h")
    distinct["device_customers_7d"] = _distinct_per_entity(tx, facts, tx.device_id, "7d")
    distinct["operator_customers_30d"] = _distinct_per_entity(tx, facts, tx.operator_id, "30d")
    assert set(distinct) == set(DISTINCT_FEATURES)
    peer_cash, peer_cnt = _peer_totals(facts, tx, registry, params.peer_lookback_days)
    if progress:
        progress("entities", 0.9)
    prims = Primitives(
        sums=sums,
        sumsq_in=sq_in,
        sumsq_out=sq_out,
        max_in=mx_in,
        max_out=mx_out,
        distinct=distinct,
        is_new_cp=is_new_cp,
        prev_t=prev_t,
        last_in_t=last_in,
        onboard_ns=registry.onboard_ns[facts.cust],
        peer_cash_fen=peer_cash,
        peer_txn_cnt=peer_cnt,
        peer_size=registry.peer_group_size(facts.cust, facts.local_day),
        agent_other=registry.other_customers("agent", facts.cust, facts.local_day),
        phone_other=registry.other_customers("phone", facts.cust, facts.local_day),
        emergency_other=registry.other_customers("emergency", facts.cust, facts.local_day),
        is_corporate=registry.is_corporate[facts.cust],
        income=registry.income[facts.cust],
    )
    matrix = finalize(fact_matrix, tx.amount, prims, params)
    if progress:
        progress("done", 1.0)
    return {
        name: (matrix[:, j].astype(np.int64) if name in INTEGER_FEATURES else matrix[:, j])
        for j, name in enumerate(FEATURE_NAMES)
    }


def build_features(dataset: Dataset, params: FeatureParams | None = None,
                   progress: ProgressFn | None = None) -> pd.DataFrame:
    """One feature row per transaction of ``dataset``: ``txn_id``, ``customer_id``, ``timestamp`` and
    every catalogue feature, in the transactions' time order.

    Integer features (counts, flags, codes) are ``int32``; the others ``float64`` (NaN = undefined).
    """
    txns = dataset.transactions
    perm = _time_order(txns)
    if perm is not None:
        txns = txns.iloc[perm].reset_index(drop=True)
    arrays = compute_feature_arrays(txns, dataset.customers, params, progress)
    frame = {c: txns[c].to_numpy() for c in ID_COLUMNS}
    for name in FEATURE_NAMES:
        v = arrays[name]
        frame[name] = v.astype(np.int32) if name in INTEGER_FEATURES else v
    return pd.DataFrame(frame)
