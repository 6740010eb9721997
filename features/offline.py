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

from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

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


def _utc_ns(timestamps: pd.Series) -> np.ndarray:
    """int64 UTC nanoseconds of a timestamp column, without materialising Timestamp objects."""
    values = timestamps.array
    if hasattr(values, "asi8"):  # DatetimeArray, tz-aware or naive (naive means UTC)
        return np.asarray(values.asi8, dtype=np.int64)
    return pd.to_datetime(timestamps, utc=True).array.asi8


def _time_order(txns: pd.DataFrame) -> np.ndarray | None:
    """None when the frame is already ordered by (timestamp, txn_id), else the permutation that orders it."""
    t = _utc_ns(txns["timestamp"])
    dt = np.diff(t)
    if (dt > 0).all():
        return None
    ids = txns["txn_id"].astype(str).to_numpy(dtype=object)
    if (dt >= 0).all() and not _tie_out_of_order(dt, ids):
        return None
    return np.lexsort((ids, t))


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


@dataclass
class _CustomerPrims:
    """Per-customer streaming quantities, rows in ``order`` (by customer, then time)."""

    order: np.ndarray
    sums: np.ndarray
    is_new_cp: np.ndarray
    fan: dict[str, np.ndarray]
    prev_t: np.ndarray
    last_in_t: np.ndarray
    sumsq_in: np.ndarray
    sumsq_out: np.ndarray
    max_in: np.ndarray
    max_out: np.ndarray


def _customer_primitives(tx: TxnColumns, facts: EventFacts, fact_matrix: np.ndarray, registry: CustomerRegistry,
                         params: FeatureParams) -> _CustomerPrims:
    """Per-customer streaming quantities for a batch holding whole customers' histories.

    Everything is computed and returned in customer order (``order``), which is how the kernels
    walk the rows; the caller puts the final feature rows back in place once.
    """
    s = _sort_by(facts.cust)
    o, sf = s.order, s.seg_first
    t = tx.t_ns[o]
    is_in = tx.is_in[o]

    prev_t, last_in = previous_times(t, sf, is_in, registry.onboard_ns[facts.cust[o]])
    is_new_cp = _new_counterparty(facts, tx)[o]  # "first seen" looks at pairs in time order
    is_react = reactivation_flags(t, prev_t, params)

    # exact integer window sums: cumulative sum minus the cumulative sum before the window
    starts = {w: window_starts(t, sf, np.int64(WINDOW_NS[w])) for w in WINDOWS}
    values = window_sum_values(fact_matrix[o], is_new_cp, is_react)
    sums = np.empty_like(values)
    for j, (_, w) in enumerate(WINDOW_SUMS):
        cum = np.cumsum(values[:, j])
        st = starts[w]
        sums[:, j] = cum - np.where(st > 0, cum[np.maximum(st - 1, 0)], 0)
    del values

    # sums of squares restart per customer (the online state adds them in the same order); maxima
    amount = tx.amount[o]
    sq = amount * amount
    sumsq: dict[str, np.ndarray] = {}
    maxes: dict[str, np.ndarray] = {}
    for d, mask in (("in", is_in), ("out", ~is_in)):
        cum = segment_cumsum(np.where(mask, sq, 0.0), sf)
        sq_cols, mx_cols = [], []
        for w in VELOCITY_WINDOWS:
            st = starts[w]
            sq_cols.append(cum - np.where(st > sf, cum[np.maximum(st - 1, 0)], 0.0))
            mx_cols.append(window_max(t, sf, amount, mask, np.int64(WINDOW_NS[w])))
        sumsq[d] = np.stack(sq_cols, axis=1)
        maxes[d] = np.stack(mx_cols, axis=1)

    cp, n_cp = _entity_codes(tx.counterparty_id)
    cp_s = cp[o]
    fan: dict[str, np.ndarray] = {}
    for d, mask in (("in", is_in), ("out", ~is_in)):
        keys = np.where(mask & (cp_s >= 0), cp_s, -1)
        for w in ("7d", "30d"):
            fan[f"fan_{d}_{w}"] = window_distinct(t, sf, keys, np.int64(n_cp), np.int64(WINDOW_NS[w]))
    return _CustomerPrims(order=o, sums=sums, is_new_cp=is_new_cp, fan=fan, prev_t=prev_t, last_in_t=last_in,
                          sumsq_in=sumsq["in"], sumsq_out=sumsq["out"], max_in=maxes["in"], max_out=maxes["out"])


def _take(obj, idx: np.ndarray):
    """The rows ``idx`` of a dataclass of equal-length arrays (TxnColumns, EventFacts)."""
    return type(obj)(**{f.name: getattr(obj, f.name)[idx] for f in fields(obj)})


@dataclass(frozen=True)
class _GlobalPrimitives:
    """What needs the whole table: other customers on the same IP/device/operator, and peer totals."""

    entity_distinct: dict[str, np.ndarray]
    peer_cash_fen: np.ndarray
    peer_txn_cnt: np.ndarray


def _global_primitives(tx: TxnColumns, facts: EventFacts, registry: CustomerRegistry,
                       params: FeatureParams) -> _GlobalPrimitives:
    distinct = {
        "ip_customers_24h": _distinct_per_entity(tx, facts, tx.ip_address, "24h"),
        "ip_customers_7d": _distinct_per_entity(tx, facts, tx.ip_address, "7d"),
        "device_customers_24h": _distinct_per_entity(tx, facts, tx.device_id, "24h"),
        "device_customers_7d": _distinct_per_entity(tx, facts, tx.device_id, "7d"),
        "operator_customers_30d": _distinct_per_entity(tx, facts, tx.operator_id, "30d"),
    }
    peer_cash, peer_cnt = _peer_totals(facts, tx, registry, params.peer_lookback_days)
    return _GlobalPrimitives(distinct, peer_cash, peer_cnt)


def _customer_partitions(cust: np.ndarray, chunk_rows: int) -> list[np.ndarray]:
    """Row positions (in time order) split by whole customers into parts of about ``chunk_rows`` rows."""
    order = np.argsort(cust, kind="stable")
    sorted_cust = cust[order]
    boundaries = np.flatnonzero(np.diff(sorted_cust)) + 1  # where a new customer starts
    starts = np.concatenate([[0], boundaries])
    parts: list[np.ndarray] = []
    begin = 0
    for b in starts[1:]:
        if b - begin >= chunk_rows:
            parts.append(np.sort(order[begin:b]))
            begin = int(b)
    parts.append(np.sort(order[begin:]))
    return [p for p in parts if len(p)]


def iter_feature_chunks(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                        chunk_rows: int = 1_000_000, progress: ProgressFn | None = None
                        ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(row positions, feature matrix)`` per partition of whole customers (rows by customer).

    ``txns`` must be in time order. Memory stays proportional to ``chunk_rows`` plus a few arrays
    over the whole table; the matrix columns follow :data:`FEATURE_NAMES`.
    """
    params = params or load_feature_params()
    registry = CustomerRegistry.from_customers(customers, params.bank_utc_offset_hours)
    tx = TxnColumns.from_frame(txns)
    if len(tx) == 0:
        return
    facts = derive_facts(tx, registry, params)
    glob = _global_primitives(tx, facts, registry, params)
    peer_size = registry.peer_group_size(facts.cust, facts.local_day)
    static = {kind: registry.other_customers(kind, facts.cust, facts.local_day)
              for kind in ("agent", "phone", "emergency")}
    parts = _customer_partitions(facts.cust, chunk_rows)
    done = 0
    for idx in parts:
        ptx, pfacts = _take(tx, idx), _take(facts, idx)
        fact_matrix = pack_facts(ptx, pfacts)
        cp = _customer_primitives(ptx, pfacts, fact_matrix, registry, params)
        rows = idx[cp.order]  # the partition's rows in customer order, as the primitives are
        cust = facts.cust[rows]
        distinct = dict(cp.fan)
        distinct.update({k: v[rows] for k, v in glob.entity_distinct.items()})
        prims = Primitives(
            sums=cp.sums, sumsq_in=cp.sumsq_in, sumsq_out=cp.sumsq_out, max_in=cp.max_in, max_out=cp.max_out,
            distinct=distinct, is_new_cp=cp.is_new_cp, prev_t=cp.prev_t, last_in_t=cp.last_in_t,
            onboard_ns=registry.onboard_ns[cust], peer_cash_fen=glob.peer_cash_fen[rows],
            peer_txn_cnt=glob.peer_txn_cnt[rows], peer_size=peer_size[rows], agent_other=static["agent"][rows],
            phone_other=static["phone"][rows], emergency_other=static["emergency"][rows],
            is_corporate=registry.is_corporate[cust], income=registry.income[cust],
        )
        yield rows, finalize(fact_matrix[cp.order], tx.amount[rows], prims, params)
        done += len(idx)
        if progress:
            progress("features", done / len(tx))


def compute_feature_matrix(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                           progress: ProgressFn | None = None, chunk_rows: int = 1_000_000) -> np.ndarray:
    """Catalogue features for transactions already in time order, as a float64 matrix (rows kept,
    columns in :data:`FEATURE_NAMES` order)."""
    matrix = np.empty((len(txns), len(FEATURE_NAMES)), dtype=np.float64)
    for rows, part in iter_feature_chunks(txns, customers, params, chunk_rows, progress):
        matrix[rows] = part
    return matrix


def compute_feature_arrays(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                           progress: ProgressFn | None = None, chunk_rows: int = 1_000_000) -> dict[str, np.ndarray]:
    """As :func:`compute_feature_matrix`, as ``name -> array``: integer features int64, the others float64."""
    matrix = compute_feature_matrix(txns, customers, params, progress, chunk_rows)
    return {
        name: (matrix[:, j].astype(np.int64) if name in INTEGER_FEATURES else matrix[:, j])
        for j, name in enumerate(FEATURE_NAMES)
    }


def ordered_transactions(txns: pd.DataFrame) -> pd.DataFrame:
    """The transactions in time order (timestamp, then txn_id), as both feature paths count them."""
    perm = _time_order(txns)
    return txns if perm is None else txns.iloc[perm].reset_index(drop=True)


def build_features(dataset: Dataset, params: FeatureParams | None = None,
                   progress: ProgressFn | None = None) -> pd.DataFrame:
    """One feature row per transaction of ``dataset``: ``txn_id``, ``customer_id``, ``timestamp`` and
    every catalogue feature, in the transactions' time order.

    Integer features (counts, flags, codes) are ``int32``; the others ``float64`` (NaN = undefined).
    """
    txns = ordered_transactions(dataset.transactions)
    matrix = compute_feature_matrix(txns, dataset.customers, params, progress)
    features = pd.DataFrame(matrix, columns=list(FEATURE_NAMES), copy=False)
    features = features.astype({name: np.int32 for name in FEATURE_NAMES if name in INTEGER_FEATURES})
    ids = txns[list(ID_COLUMNS)].reset_index(drop=True)
    return pd.concat([ids, features], axis=1)


def write_features(dataset: Dataset, path: str | Path, params: FeatureParams | None = None,
                   chunk_rows: int = 500_000, progress: ProgressFn | None = None) -> int:
    """Stream the feature rows of ``dataset`` to a Parquet file chunk by chunk; returns the row count.

    Rows come out grouped by customer partition (each in time order), not in global time order.
    Written to a temporary file first and renamed, so a failure never leaves a partial file.
    """
    import pyarrow as pa  # noqa: PLC0415 - only this writer needs it
    import pyarrow.parquet as pq  # noqa: PLC0415

    txns = ordered_transactions(dataset.transactions)
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    writer = None
    rows_written = 0
    try:
        for rows, part in iter_feature_chunks(txns, dataset.customers, params, chunk_rows, progress):
            columns = part.T  # one contiguous row per feature after the copy below
            columns = np.ascontiguousarray(columns)
            arrays = [pa.Array.from_pandas(txns[c].iloc[rows].reset_index(drop=True)) for c in ID_COLUMNS]
            for j, name in enumerate(FEATURE_NAMES):
                arrays.append(pa.array(columns[j].astype(np.int32) if name in INTEGER_FEATURES else columns[j]))
            table = pa.Table.from_arrays(arrays, names=list(ID_COLUMNS) + list(FEATURE_NAMES))
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="lz4")
            writer.write_table(table)
            rows_written += len(rows)
        if writer is None:
            raise ValueError("no transactions to compute features for")
        writer.close()
        writer = None
        tmp.replace(target)
    finally:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
    return rows_written
