"""Offline path: one feature row per transaction over a whole history, point in time.

Each transaction's row uses only that transaction and earlier ones in time order (ties in
timestamp ordered by ``txn_id``): windows are ``(t - w, t]`` over rows up to and including it,
"first seen" and "previous" look only backwards, and peer-group averages use complete days before
the transaction's day. Appending or altering later transactions therefore never changes a row.

The work is group-wise (per customer, per IP address, per device, per operator, per peer group and
day), each group a streaming pass in time order with no state shared across groups: the shape a
distributed engine runs as ``groupBy(entity).applyInPandas``. What needs other customers' rows (the
identifier, peer-group and shared-phone counts) is computed first over the time-ordered table; then
the rows are shuffled by customer and processed in partitions of whole customers, each partition
small enough to stay in the CPU cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from amlscore.features.catalogue import FEATURE_NAMES, INTEGER_FEATURES, WINDOWS
from amlscore.features.events import (CP_TYPE_CODE, FACT_COLUMNS, N_FACTS, WINDOW_SUMS, Coded, EventFacts, TxnColumns,
                                      counterparty_keys, derive_facts)
from amlscore.features.finalize import (
    DISTINCT_FEATURES,
    FEATURE_INDEX,
    VELOCITY_WINDOWS,
    Primitives,
    finalize,
    reactivation_flags,
    window_sum_values,
)
from amlscore.features.graph import (GRAPH_FEATURES, PAYER_PEER_FEATURE, GraphArrays, graph_pass, payer_vs_peers,
                                    report_times)
from amlscore.features.idcomp import ID_COMPONENT_FEATURES, id_component_columns, transaction_fields
from amlscore.features.kernels import (
    previous_times,
    segment_firsts,
    segment_window_sums,
    segment_window_sumsq_max,
    window_distinct,
    window_starts,
)
from amlscore.features.params import FeatureParams, load_feature_params
from amlscore.features.registry import CustomerRegistry

if TYPE_CHECKING:  # pragma: no cover
    from amlscore.contract.load import Dataset

WINDOW_NS = {name: seconds * 1_000_000_000 for name, seconds in WINDOWS.items()}
ID_COLUMNS = ("txn_id", "customer_id", "timestamp")
ProgressFn = Callable[[str, float], None]
_WINDOW_POS = {w: i for i, w in enumerate(WINDOWS)}
# WINDOW_SUMS columns grouped by window (positions in WINDOWS), for the sliding window-sum kernel
_SUM_WINDOW_COLS = np.array(sorted(range(len(WINDOW_SUMS)), key=lambda c: _WINDOW_POS[WINDOW_SUMS[c][1]]), dtype=np.int64)
_SUM_WINDOW_OFFSETS = np.searchsorted(
    np.array([_WINDOW_POS[WINDOW_SUMS[c][1]] for c in _SUM_WINDOW_COLS]), np.arange(len(WINDOWS) + 1)).astype(np.int64)
# the columns of the sequential passes over the whole table (the counterparty graph, then the components
# of shared identifiers), in the order the partitions receive them
_GRAPH_POS = np.array([FEATURE_INDEX[name] for name in GRAPH_FEATURES + (PAYER_PEER_FEATURE,) + ID_COMPONENT_FEATURES],
                      dtype=np.int64)
_VELOCITY_WINDOW_NS = np.array([WINDOW_NS[w] for w in VELOCITY_WINDOWS], dtype=np.int64)


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


def entity_customer_counts(codes: np.ndarray, t: np.ndarray, cust: np.ndarray, n_cust: int,
                           windows: tuple[str, ...]) -> list[np.ndarray]:
    """Distinct customers seen with each row's entity (IP, device, operator) per window; 0 without one.

    Rows in time order; ``codes`` are the entity's codes (-1 = none), ``cust`` the customer codes. The
    entity's rows are grouped once and every window walks the same groups. Only rows sharing a code
    meet, so any subset of rows holding whole entities gives their rows the same counts (the Spark
    engine runs this per ``groupBy(entity)`` partition).
    """
    outs = [np.zeros(len(codes), dtype=np.int64) for _ in windows]
    rows = np.flatnonzero(codes >= 0)
    if len(rows) == 0:
        return outs
    s = _sort_by(codes[rows])
    idx = rows[s.order]
    t_e, cust_e = t[idx], cust[idx]
    for out, window in zip(outs, windows):
        out[idx] = window_distinct(t_e, s.seg_first, cust_e, np.int64(max(n_cust, 1)), np.int64(WINDOW_NS[window]))
    return outs


def _new_counterparty(cust: np.ndarray, cp: np.ndarray, n_cp: int) -> np.ndarray:
    """First time this customer deals with this counterparty; rows in time order within each customer."""
    first = ~pd.Series(cust * (n_cp + 1) + cp).duplicated(keep="first").to_numpy()
    return first & (cp >= 0)


# The peer groups' daily totals every peer feature reads, summed over the rows of each (peer group,
# day): cash in fen, transactions, outgoing fen, outgoing fen to individuals.
PEER_DAILY = ("cash_fen", "txn_cnt", "out_fen", "indiv_out_fen")


def peer_daily_values(tx: TxnColumns, facts: EventFacts) -> np.ndarray:
    """Each row's contribution (n, len(PEER_DAILY)) int64 to its peer group's day totals."""
    out_fen = tx.fen * ~tx.is_in
    return np.column_stack([tx.fen * facts.is_cash, np.ones(len(tx), dtype=np.int64), out_fen,
                            out_fen * (tx.cp_type == CP_TYPE_CODE["individual"])]).astype(np.int64)


@dataclass(frozen=True)
class PeerDays:
    """Cumulative daily totals (:data:`PEER_DAILY`) per peer group: any ``lookback`` complete days
    before a day in two reads. Built from per-row values or from totals already summed per (group,
    day) (what a distributed engine's aggregation returns): integer sums, so both give the same table."""

    day0: int
    cum: np.ndarray  # int64 (len(PEER_DAILY), groups, days)

    @classmethod
    def from_values(cls, group: np.ndarray, day: np.ndarray, values: np.ndarray, n_groups: int,
                    lookback: int) -> PeerDays:
        """``values`` (rows, len(PEER_DAILY)) summed per ``(group, day)``; rows may repeat a pair."""
        if len(day) == 0:
            return cls(day0=0, cum=np.zeros((len(PEER_DAILY), max(n_groups, 1), 1), dtype=np.int64))
        day0 = int(day.min()) - lookback - 1  # room below the first day, so lookups stay >= 0
        n_days = int(day.max()) - day0 + 1
        flat = group * n_days + (day - day0)
        size = n_groups * n_days
        cum = np.empty((len(PEER_DAILY), n_groups, n_days), dtype=np.int64)
        for q in range(len(PEER_DAILY)):  # float weights are exact: fen totals stay far below 2**53
            daily = np.rint(np.bincount(flat, weights=values[:, q].astype(np.float64), minlength=size))
            cum[q] = np.cumsum(daily.astype(np.int64).reshape(n_groups, n_days), axis=1)
        return cls(day0=day0, cum=cum)

    def totals(self, quantity: str, group: np.ndarray, day: np.ndarray, lookback: int) -> np.ndarray:
        """``quantity`` of each ``group`` over the ``lookback`` complete days before ``day``."""
        cum = self.cum[PEER_DAILY.index(quantity)]
        d = day - self.day0  # days [d - lookback, d - 1]: cum[d - 1] - cum[d - lookback - 1]
        return cum[group, d - 1] - cum[group, d - lookback - 1]


def peer_days(tx: TxnColumns, facts: EventFacts, registry: CustomerRegistry, params: FeatureParams) -> PeerDays:
    """The :class:`PeerDays` of a whole table."""
    return PeerDays.from_values(registry.peer_group[facts.cust], facts.local_day, peer_daily_values(tx, facts),
                                len(registry.peer_group_names), params.peer_lookback_days)


@dataclass(frozen=True)
class GraphInputs:
    """Per row, what :func:`amlscore.features.graph.graph_step` takes: node ids (customers by code,
    outside accounts from ``n_customers`` on; -1 without counterparty), and per edge whether the payee is
    an individual, whether the payer never paid this payee before, whether the row stores the edge."""

    cust: np.ndarray
    cp: np.ndarray
    payee_indiv: np.ndarray
    first_pair: np.ndarray
    store: np.ndarray
    n_nodes: int


def graph_inputs(tx: TxnColumns, cust: np.ndarray, cp: Coded, registry: CustomerRegistry,
                 first_pair: np.ndarray | None = None) -> GraphInputs:
    """The graph's view of rows in time order (see :mod:`amlscore.features.graph` for the edges).

    ``first_pair`` (per row: no earlier row stores an edge between the same payer and payee) is
    computed from these rows unless given: an engine that runs the graph over a stretch of the
    history computes it over the whole history (:func:`edge_pairs`) and passes it in.
    """
    n_cust = len(registry.onboard_ns)
    values = cp.values.tolist()
    value_node = np.empty(len(values) + 1, dtype=np.int64)
    outside = 0
    for j, key in enumerate(values):
        code = registry.code_of.get(key)
        if code is None:
            value_node[j] = n_cust + outside
            outside += 1
        else:
            value_node[j] = code
    value_node[-1] = -1  # code -1: no counterparty
    node = value_node[cp.codes]
    internal = (node >= 0) & (node < n_cust)
    store = (node >= 0) & ~(tx.is_in & internal)  # a transfer inside the bank: its out leg stores the edge
    payee_indiv = np.where(tx.is_in, ~registry.is_corporate[cust].astype(bool),
                           tx.cp_type == CP_TYPE_CODE["individual"])
    payer = np.where(tx.is_in, node, cust)
    payee = np.where(tx.is_in, cust, node)
    if first_pair is None:
        pair = payer.astype(np.int64) * np.int64(n_cust + outside + 1) + payee
        # first: no earlier row that stores an edge has this payer -> payee pair
        idx = np.arange(len(pair))
        first_store = pd.Series(idx[store]).groupby(pair[store]).min()
        earliest = pd.Series(pair).map(first_store).to_numpy(dtype=np.float64)
        first_pair = (node >= 0) & (np.isnan(earliest) | (earliest >= idx))
    return GraphInputs(cust=cust.astype(np.int64), cp=node, payee_indiv=payee_indiv.astype(np.bool_),
                       first_pair=np.asarray(first_pair, dtype=np.bool_), store=store, n_nodes=n_cust + outside)


def edge_pairs(txns: pd.DataFrame, registry: CustomerRegistry) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a typed transactions frame: the edge's payer and payee keys (customer_id, or the
    counterparty's ``account:`` key; None without a counterparty), whether the row stores the edge and
    whether it has one. A row's ``first_pair`` (:func:`graph_inputs`) is: it has an edge, and no earlier
    storing row has the same (payer, payee); keys name the same nodes as the graph's ids do."""
    cp = counterparty_keys(txns, registry.code_of)
    key = np.append(cp.values, None)[cp.codes]  # code -1 takes the last entry: no counterparty
    has_cp = cp.codes >= 0
    internal = has_cp & pd.Series(key, dtype=object).isin(registry.code_of.keys()).to_numpy()
    is_in = TxnColumns.direction_in(txns["direction"])
    customer = txns["customer_id"].astype(str).to_numpy(dtype=object)
    payer = np.where(is_in, key, customer)
    payee = np.where(is_in, customer, key)
    store = has_cp & ~(is_in & internal)
    return np.where(has_cp, payer, None), np.where(has_cp, payee, None), store, has_cp


def graph_matrix(tx: TxnColumns, g: GraphInputs, registry: CustomerRegistry, reports: pd.DataFrame | None,
                 params: FeatureParams) -> np.ndarray:
    """The graph features (n, len(GRAPH_FEATURES)) of rows in time order: one pass over the whole table."""
    arrays = GraphArrays.empty(g.n_nodes)
    report_ns = report_times(reports, registry.code_of, len(registry.onboard_ns), params.bank_utc_offset_hours)
    return graph_pass(arrays.ring, arrays.count, report_ns, g.cust, g.cp, tx.is_in.astype(np.bool_), tx.t_ns,
                      tx.fen, g.payee_indiv, g.first_pair, g.store)


def payer_peer_column(tx: TxnColumns, facts: EventFacts, registry: CustomerRegistry, g: GraphInputs,
                      graph: np.ndarray, params: FeatureParams, peers: PeerDays) -> np.ndarray:
    """:data:`PAYER_PEER_FEATURE` of rows in time order, from the graph's payer share: the payer's peer
    group's outgoing fen and outgoing fen to individuals over the lookback days before the row's day
    (NaN where the payer is not a customer)."""
    n_cust = len(registry.onboard_ns)
    payer = np.where(tx.is_in, g.cp, g.cust)
    is_cust = (payer >= 0) & (payer < n_cust)
    pg = registry.peer_group[np.where(is_cust, payer, 0)]
    lookback = params.peer_lookback_days
    out_fen, indiv_fen = (np.where(is_cust, peers.totals(q, pg, facts.local_day, lookback), 0)
                          for q in ("out_fen", "indiv_out_fen"))
    share = graph[:, GRAPH_FEATURES.index("payer_indiv_share_30d")]
    return np.where(is_cust, payer_vs_peers(share, out_fen, indiv_fen), np.nan)


def graph_columns(tx: TxnColumns, facts: EventFacts, cp: Coded, registry: CustomerRegistry,
                  reports: pd.DataFrame | None, params: FeatureParams, peers: PeerDays,
                  first_pair: np.ndarray | None = None) -> np.ndarray:
    """:data:`GRAPH_FEATURES` and :data:`PAYER_PEER_FEATURE` (n, columns) of rows in time order: one
    sequential pass (every customer's edges in one graph). Over the whole table, or over a stretch of
    it that starts :data:`GRAPH_WARM_UP_DAYS` before the rows whose values are kept, with ``first_pair``
    of the whole table (:func:`graph_inputs`): the values kept are the same."""
    g = graph_inputs(tx, facts.cust, cp, registry, first_pair)
    graph = graph_matrix(tx, g, registry, reports, params)
    return np.column_stack([graph, payer_peer_column(tx, facts, registry, g, graph, params, peers)])


def identifier_codes(columns: TxnColumns | Mapping[str, Coded], params: FeatureParams) -> list[np.ndarray]:
    """Per transaction identifier the components follow, each row's code of its value (-1 when empty);
    ``columns`` names each identifier's :class:`Coded` column (a batch's :class:`TxnColumns` or a mapping)."""
    out = []
    for field in transaction_fields(params.id_components):
        coded: Coded = columns[field] if isinstance(columns, Mapping) else getattr(columns, field)
        blank = np.append(coded.values == "", False)  # code -1 takes the last entry
        out.append(np.where(blank[coded.codes], -1, coded.codes).astype(np.int64))
    return out


def id_component_matrix(tx: TxnColumns, cust: np.ndarray, registry: CustomerRegistry, reports: pd.DataFrame | None,
                        params: FeatureParams) -> np.ndarray:
    """:data:`ID_COMPONENT_FEATURES` (n, columns) of rows in time order: one sequential pass over every
    customer's links (:mod:`amlscore.features.idcomp`)."""
    report_ns = report_times(reports, registry.code_of, len(registry.onboard_ns), params.bank_utc_offset_hours)
    return id_component_columns(tx.t_ns, cust, identifier_codes(tx, params), registry, report_ns, params.id_components)


# The graph reads edges of the last 30 days at most (cycles 7 days, fan-in/out 7, payees and reported
# neighbours 30), and an edge's chain length looks back at most CHAIN_CAP hops of 24 hours: what a row
# sees depends on the 38 days before it (besides first_pair, which the whole history gives). A
# stretch of history replayed from this many days before the rows kept gives them their values
# (measured on a generated bank in 5-day stretches: 3 days of warm-up change 17 graph features,
# 20 days 9 of them, 30 and 38 days none).
GRAPH_WARM_UP_DAYS = 40


# Per-row quantities that need other customers' rows (the same IP, device or operator; the peer group;
# shared agents and phones). Computed once over the time-ordered table, then shuffled with the rows.
_TABLE_COLS = DISTINCT_FEATURES[4:] + ("peer_cash_fen", "peer_txn_cnt", "peer_size", "agent_other", "phone_other",
                                       "emergency_other")
_FACT_T, _FACT_IN = FACT_COLUMNS.index("t_ns"), FACT_COLUMNS.index("is_in")
# Rows per partition at most: small enough that a partition's working arrays stay in cache and are
# recycled by the allocator instead of being faulted in afresh (measured: 2x faster than 500,000).
_BLOCK_ROWS = 16_384


# What the shared-identifier counts are taken over: (column, prefix of the feature, windows).
ENTITY_WINDOWS = (("ip_address", "ip_customers", ("24h", "7d")), ("device_id", "device_customers", ("24h", "7d")),
                  ("operator_id", "operator_customers", ("30d",)))


def registry_primitives(facts: EventFacts, registry: CustomerRegistry, params: FeatureParams, peers: PeerDays,
                        out: np.ndarray) -> None:
    """The :data:`_TABLE_COLS` that are not entity counts into ``out`` (n, columns): per row, lookups
    into the customers table and the peer groups' daily totals (nothing of other rows is read)."""
    col = {name: j for j, name in enumerate(_TABLE_COLS)}
    group, day, lookback = registry.peer_group[facts.cust], facts.local_day, params.peer_lookback_days
    out[:, col["peer_cash_fen"]] = peers.totals("cash_fen", group, day, lookback)
    out[:, col["peer_txn_cnt"]] = peers.totals("txn_cnt", group, day, lookback)
    out[:, col["peer_size"]] = registry.peer_group_size(facts.cust, facts.local_day)
    for kind in ("agent", "phone", "emergency"):
        out[:, col[f"{kind}_other"]] = registry.other_customers(kind, facts.cust, facts.local_day)


def _table_primitives(tx: TxnColumns, facts: EventFacts, registry: CustomerRegistry, params: FeatureParams,
                      peers: PeerDays, out: np.ndarray) -> None:
    """The :data:`_TABLE_COLS` of every row into ``out`` (n, columns), rows in the table's (time) order."""
    col = {name: j for j, name in enumerate(_TABLE_COLS)}
    n_cust = len(registry.onboard_ns)
    for column, prefix, windows in ENTITY_WINDOWS:
        entity: Coded = getattr(tx, column)
        for window, counts in zip(windows, entity_customer_counts(entity.codes, tx.t_ns, facts.cust, n_cust, windows)):
            out[:, col[f"{prefix}_{window}"]] = counts
    registry_primitives(facts, registry, params, peers, out)


@dataclass(frozen=True)
class _Partition:
    """One partition's rows, grouped by customer in time order; ``rows`` are their input positions."""

    rows: np.ndarray
    cust: np.ndarray
    facts: np.ndarray  # FACT_COLUMNS
    amount: np.ndarray
    counterparty: np.ndarray  # counterparty codes, -1 when none
    n_counterparties: int
    table: np.ndarray  # _TABLE_COLS


# Columns of the shuffled row data: the packed facts, the table primitives, then these.
_ROW_CUST, _ROW_CP, _ROW_AMOUNT = N_FACTS + len(_TABLE_COLS), N_FACTS + len(_TABLE_COLS) + 1, N_FACTS + len(_TABLE_COLS) + 2


@dataclass(frozen=True)
class _ByCustomer:
    """The batch shuffled by customer: ``rows`` lists the input rows grouped by customer (a stable
    sort keeps time order within each customer), the layout a distributed engine hands each
    ``groupBy(customer)`` task. Everything a partition needs sits in one row of ``data`` (in input
    order), so gathering a partition reads one short run of memory per row."""

    rows: np.ndarray
    data: np.ndarray  # int64 (n, columns): facts, table primitives, customer, counterparty, amount bits
    n_counterparties: int
    graph: np.ndarray  # float64 (n, len(GRAPH_COLUMNS) + len(ID_COMPONENT_FEATURES)), input order

    def partition(self, a: int, b: int) -> _Partition:
        rows = self.rows[a:b]
        data = self.data[rows]
        return _Partition(rows=rows, cust=data[:, _ROW_CUST].copy(), facts=np.ascontiguousarray(data[:, :N_FACTS]),
                          amount=data[:, _ROW_AMOUNT].view(np.float64).copy(), counterparty=data[:, _ROW_CP].copy(),
                          n_counterparties=self.n_counterparties,
                          table=np.ascontiguousarray(data[:, N_FACTS:_ROW_CUST]))


def _row_data(txns: pd.DataFrame, tx: TxnColumns, registry: CustomerRegistry, params: FeatureParams
              ) -> tuple[np.ndarray, EventFacts, Coded]:
    """The int64 row matrix (facts, table primitives left empty, customer, counterparty, amount bits),
    the facts and the counterparty codes of rows in time order: everything a row needs that reads no
    other row."""
    data = np.empty((len(tx), _ROW_AMOUNT + 1), dtype=np.int64)
    facts = derive_facts(tx, registry, params, out=data)
    data[:, _ROW_CUST] = facts.cust
    cp = counterparty_keys(txns, registry.code_of)  # customer_id inside the bank, else the account
    data[:, _ROW_CP] = cp.codes
    data[:, _ROW_AMOUNT] = tx.amount.view(np.int64)  # the float's bits, restored exactly
    return data, facts, cp


def _by_customer(txns: pd.DataFrame, registry: CustomerRegistry, params: FeatureParams,
                 reports: pd.DataFrame | None = None) -> _ByCustomer:
    """Everything the partitions need, one row per transaction in ``data``, and the shuffle order.

    ``data`` is the only whole-table matrix: the facts and the table primitives are written straight
    into its columns (fresh memory is costly at millions of rows).
    """
    tx = TxnColumns.from_frame(txns)
    data, facts, cp = _row_data(txns, tx, registry, params)
    peers = peer_days(tx, facts, registry, params)
    _table_primitives(tx, facts, registry, params, peers, data[:, N_FACTS:_ROW_CUST])
    graph = np.column_stack([graph_columns(tx, facts, cp, registry, reports, params, peers),
                             id_component_matrix(tx, facts.cust, registry, reports, params)])
    return _ByCustomer(rows=np.argsort(facts.cust, kind="stable"), data=data,
                       n_counterparties=len(cp.values), graph=graph)


def _customer_slices(cust: np.ndarray, max_rows: int) -> list[tuple[int, int]]:
    """``[a, b)`` ranges of rows grouped by customer, whole customers, about ``max_rows`` rows each."""
    starts = np.flatnonzero(np.diff(cust)) + 1  # where a new customer starts
    bounds: list[tuple[int, int]] = []
    begin = 0
    for b in starts.tolist():
        if b - begin >= max_rows:
            bounds.append((begin, b))
            begin = b
    bounds.append((begin, len(cust)))
    return [(a, b) for a, b in bounds if b > a]


def _partition_features(part: _Partition, registry: CustomerRegistry, params: FeatureParams) -> np.ndarray:
    """The feature rows of one partition of whole customers, rows grouped by customer in time order.

    Everything here is a streaming pass over each customer's rows: the per-customer windows, first-seen
    counterparties and previous times; what needs other customers arrives precomputed in ``part.table``.
    """
    cust = part.cust
    sf = segment_firsts(cust)
    t = np.ascontiguousarray(part.facts[:, _FACT_T])
    is_in = part.facts[:, _FACT_IN] != 0

    prev_t, last_in = previous_times(t, sf, is_in, registry.onboard_ns[cust])
    cp = part.counterparty
    is_new_cp = _new_counterparty(cust, cp, part.n_counterparties)
    is_react = reactivation_flags(t, prev_t, params)

    # exact integer window sums in one sliding pass per customer (no cumulative (n, columns) table)
    starts = np.stack([window_starts(t, sf, np.int64(WINDOW_NS[w])) for w in WINDOWS])
    values = window_sum_values(part.facts, is_new_cp, is_react)
    sums = segment_window_sums(values, starts, _SUM_WINDOW_COLS, _SUM_WINDOW_OFFSETS, sf)
    del values

    # sums of squares restart per customer (the online state adds them in the same order); maxima
    sumsq: dict[str, np.ndarray] = {}
    maxes: dict[str, np.ndarray] = {}
    distinct: dict[str, np.ndarray] = {}
    for d, mask in (("in", is_in), ("out", ~is_in)):
        sumsq[d], maxes[d] = segment_window_sumsq_max(t, sf, part.amount, mask, starts, _VELOCITY_WINDOW_NS)
        keys = np.where(mask & (cp >= 0), cp, -1)
        for w in ("7d", "30d"):
            distinct[f"fan_{d}_{w}"] = window_distinct(t, sf, keys, np.int64(part.n_counterparties),
                                                       np.int64(WINDOW_NS[w]))
    table = {name: part.table[:, j] for j, name in enumerate(_TABLE_COLS)}
    distinct.update({name: table[name] for name in DISTINCT_FEATURES[4:]})
    prims = Primitives(
        sums=sums, sumsq_in=sumsq["in"], sumsq_out=sumsq["out"], max_in=maxes["in"], max_out=maxes["out"],
        distinct=distinct, is_new_cp=is_new_cp, prev_t=prev_t, last_in_t=last_in, onboard_ns=registry.onboard_ns[cust],
        peer_cash_fen=table["peer_cash_fen"], peer_txn_cnt=table["peer_txn_cnt"], peer_size=table["peer_size"],
        agent_other=table["agent_other"], phone_other=table["phone_other"], emergency_other=table["emergency_other"],
        is_corporate=registry.is_corporate[cust], income=registry.income[cust],
    )
    return finalize(part.facts, part.amount, prims, params)


def iter_feature_chunks(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                        chunk_rows: int = 1_000_000, progress: ProgressFn | None = None,
                        reports: pd.DataFrame | None = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(row positions, feature matrix)`` per partition of whole customers (rows by customer).

    ``txns`` must be in time order. A partition holds whole customers and at most about
    ``min(chunk_rows, 16,384)`` rows (more only when one customer alone has more); memory stays
    proportional to that plus a few arrays over the whole table. The matrix columns follow
    :data:`FEATURE_NAMES`. ``reports`` (the contract's reports) feed the features of reported
    neighbours, each from its report_date on.
    """
    params = params or load_feature_params()
    registry = CustomerRegistry.from_customers(customers, params.bank_utc_offset_hours)
    n = len(txns)
    if n == 0:
        return
    by_cust = _by_customer(txns, registry, params, reports)
    done = 0
    for rows, matrix in _customer_chunks(by_cust, registry, params, min(chunk_rows, _BLOCK_ROWS)):
        yield rows, matrix
        done += len(rows)
        if progress:
            progress("features", done / n)


def _customer_chunks(by_cust: _ByCustomer, registry: CustomerRegistry, params: FeatureParams, max_rows: int
                     ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row positions, feature matrix)`` per partition of whole customers of ``by_cust``."""
    for a, b in _customer_slices(by_cust.data[by_cust.rows, _ROW_CUST], max_rows):
        part = by_cust.partition(a, b)
        matrix = _partition_features(part, registry, params)
        matrix[:, _GRAPH_POS] = by_cust.graph[part.rows]
        yield part.rows, matrix


# The per-row columns a partition of whole customers cannot compute from its own rows: the
# shared-identifier counts (over other customers' rows with the same IP, device or operator).
ENTITY_FEATURES = DISTINCT_FEATURES[4:]
GRAPH_COLUMNS = GRAPH_FEATURES + (PAYER_PEER_FEATURE,)


def customer_group_features(txns: pd.DataFrame, registry: CustomerRegistry, params: FeatureParams,
                            peers: PeerDays, entity_counts: np.ndarray, graph: np.ndarray,
                            id_components: np.ndarray) -> np.ndarray:
    """Feature matrix (rows of ``txns``, columns :data:`FEATURE_NAMES`) of the transactions of whole
    customers, in time order, given what reads other customers' rows: ``entity_counts`` (rows,
    :data:`ENTITY_FEATURES`), ``graph`` (rows, :data:`GRAPH_COLUMNS`), ``id_components`` (rows,
    :data:`ID_COMPONENT_FEATURES`) and the whole table's
    :class:`PeerDays`. The rest is computed here by the same partition function as
    :func:`iter_feature_chunks`: this is what a ``groupBy(customer).applyInPandas`` task runs.
    """
    out = np.empty((len(txns), len(FEATURE_NAMES)), dtype=np.float64)
    if len(txns) == 0:
        return out
    tx = TxnColumns.from_frame(txns)
    data, facts, cp = _row_data(txns, tx, registry, params)
    table = data[:, N_FACTS:_ROW_CUST]
    table[:, :len(ENTITY_FEATURES)] = entity_counts
    registry_primitives(facts, registry, params, peers, table)
    by_cust = _ByCustomer(rows=np.argsort(facts.cust, kind="stable"), data=data, n_counterparties=len(cp.values),
                          graph=np.column_stack([np.asarray(graph, dtype=np.float64),
                                                 np.asarray(id_components, dtype=np.float64)]))
    for rows, matrix in _customer_chunks(by_cust, registry, params, _BLOCK_ROWS):
        out[rows] = matrix
    return out


def compute_feature_matrix(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                           progress: ProgressFn | None = None, chunk_rows: int = 1_000_000,
                           reports: pd.DataFrame | None = None) -> np.ndarray:
    """Catalogue features for transactions already in time order, as a float64 matrix (rows kept,
    columns in :data:`FEATURE_NAMES` order)."""
    matrix = np.empty((len(txns), len(FEATURE_NAMES)), dtype=np.float64)
    for rows, part in iter_feature_chunks(txns, customers, params, chunk_rows, progress, reports):
        matrix[rows] = part
    return matrix


def compute_feature_arrays(txns: pd.DataFrame, customers: pd.DataFrame, params: FeatureParams | None = None,
                           progress: ProgressFn | None = None, chunk_rows: int = 1_000_000,
                           reports: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
    """As :func:`compute_feature_matrix`, as ``name -> array``: integer features int64, the others float64."""
    matrix = compute_feature_matrix(txns, customers, params, progress, chunk_rows, reports)
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
    matrix = compute_feature_matrix(txns, dataset.customers, params, progress, reports=dataset.reports)
    features = pd.DataFrame(matrix, columns=list(FEATURE_NAMES), copy=False)
    features = features.astype({name: np.int32 for name in FEATURE_NAMES if name in INTEGER_FEATURES})
    ids = txns[list(ID_COLUMNS)].reset_index(drop=True)
    return pd.concat([ids, features], axis=1)


_INTEGER_POSITIONS = [j for j, name in enumerate(FEATURE_NAMES) if name in INTEGER_FEATURES]
# Dictionary encoding pays for ids and small integers; for the float features it mostly builds a
# dictionary and then falls back to plain, which doubled the write time.
_DICTIONARY_COLUMNS = ["customer_id"] + [name for name in FEATURE_NAMES if name in INTEGER_FEATURES]


def _feature_arrays(part: np.ndarray) -> list:
    """One Arrow array per feature of a partition's matrix: integer features int32, the others float64."""
    import pyarrow as pa  # noqa: PLC0415 - only the writer needs it

    columns = np.ascontiguousarray(part.T)  # a partition is small, so this transpose stays in cache
    ints = set(_INTEGER_POSITIONS)
    return [pa.array(columns[j].astype(np.int32) if j in ints else columns[j]) for j in range(len(FEATURE_NAMES))]


def _arrow_column(column: pd.Series):
    """A column as one contiguous Arrow array (arrow-backed pandas columns are zero-copy)."""
    import pyarrow as pa  # noqa: PLC0415

    arr = pa.Array.from_pandas(column)
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def write_features(dataset: Dataset, path: str | Path, params: FeatureParams | None = None,
                   chunk_rows: int = 500_000, progress: ProgressFn | None = None) -> int:
    """Stream the feature rows of ``dataset`` to a Parquet file, one row group per ``chunk_rows`` rows
    (about); returns the row count.

    Rows come out grouped by customer partition (each in time order), not in global time order.
    Written to a temporary file first and renamed, so a failure never leaves a partial file. A row
    group is encoded and written by a background thread while the next one is computed, so at most
    two row groups are held in memory.
    """
    import pyarrow as pa  # noqa: PLC0415 - only this writer needs it
    import pyarrow.parquet as pq  # noqa: PLC0415
    from concurrent.futures import Future, ThreadPoolExecutor  # noqa: PLC0415

    txns = ordered_transactions(dataset.transactions)
    ids = {c: _arrow_column(txns[c]) for c in ID_COLUMNS}
    names = list(ID_COLUMNS) + list(FEATURE_NAMES)
    target = Path(path)
    tmp = target.with_name(target.name + ".partial")
    writer: pq.ParquetWriter | None = None
    pending: Future | None = None
    batches: list[pa.RecordBatch] = []
    buffered = rows_written = 0

    def write(table: pa.Table) -> None:
        nonlocal writer
        if writer is None:
            writer = pq.ParquetWriter(tmp, table.schema, compression="lz4", use_dictionary=_DICTIONARY_COLUMNS)
        writer.write_table(table, row_group_size=len(table))

    def flush(pool: ThreadPoolExecutor) -> None:
        nonlocal pending, batches, buffered
        table = pa.Table.from_batches(batches)
        batches, buffered = [], 0
        if pending is not None:
            pending.result()  # the previous row group is written (and its errors raised) first
        pending = pool.submit(write, table)

    try:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="features-writer") as pool:
            try:
                for rows, part in iter_feature_chunks(txns, dataset.customers, params, chunk_rows, progress,
                                                      dataset.reports):
                    take = pa.array(rows)
                    arrays = [ids[c].take(take) for c in ID_COLUMNS] + _feature_arrays(part)
                    batches.append(pa.RecordBatch.from_arrays(arrays, names=names))
                    buffered += len(rows)
                    rows_written += len(rows)
                    if buffered >= chunk_rows:
                        flush(pool)
                if buffered:
                    flush(pool)
            finally:
                if pending is not None:
                    pending.result()
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
