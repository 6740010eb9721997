"""Online path: one transaction in, its feature row out, with state kept between calls.

The state per customer, per shared identifier (IP address, device, operator) and per peer group is
the streaming counterpart of the offline kernels: exact integer running sums with their cumulative
values per event (window sum = now minus the value before the window), running sums of squares added
in the same order, monotonic deques for window maxima and counted deques for distinct counts. The
last step, :func:`features.finalize.finalize`, is the very function the offline path calls.

Handling of awkward input (documented in docs/features.md):

* unknown customer: :class:`~features.registry.UnknownCustomerError`, nothing changes;
* a ``txn_id`` seen before: the stored feature row is returned and nothing is counted again;
* a transaction older than the customer's latest one: :class:`LateTransactionError`, nothing changes
  (windows would silently go wrong otherwise);
* a missing or malformed field: :class:`BadTransactionError` naming the field, nothing changes.
"""

from __future__ import annotations

import math
import pickle
from bisect import bisect_right
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from contract.errors import AmlError
from contract.schema import CHANNELS, COUNTERPARTY_TYPES, DIRECTIONS, TXN_TYPES
from features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION, INTEGER_FEATURES, WINDOWS
from features.events import (
    WINDOW_SUMS,
    TxnColumns,
    derive_facts,
    timestamp_ns,
    transaction_records,
)
from features.finalize import (
    DISTINCT_FEATURES,
    VELOCITY_WINDOWS,
    Primitives,
    finalize,
    pack_facts,
    reactivation_flags,
    window_sum_values,
)
from features.params import FeatureParams, load_feature_params
from features.registry import DAY_NS, CustomerRegistry
from features.store import FeatureStore, MemoryFeatureStore, SQLiteFeatureStore

WINDOW_NS = {name: seconds * 1_000_000_000 for name, seconds in WINDOWS.items()}
_MAX_WINDOW_NS = max(WINDOW_NS.values())
_SUM_COLUMNS_BY_WINDOW = tuple(
    (w, np.array([j for j, (_, win) in enumerate(WINDOW_SUMS) if win == w])) for w in WINDOWS
)
_REQUIRED = ("txn_id", "timestamp", "customer_id", "account_id", "direction", "amount", "channel", "txn_type",
             "counterparty_type")
_ENTITY_WINDOWS = (("ip_address", "ip_customers", ("24h", "7d")), ("device_id", "device_customers", ("24h", "7d")),
                   ("operator_id", "operator_customers", ("30d",)))
_SNAPSHOT_EVERY = 50_000
_INT_POSITIONS = np.array([i for i, n in enumerate(FEATURE_NAMES) if n in INTEGER_FEATURES])


class BadTransactionError(AmlError):
    """A transaction field is missing or has a value outside the contract."""


class LateTransactionError(AmlError):
    """A transaction is older than the latest one already processed for its customer."""


class _CountedWindow:
    """Distinct keys over a time window: a deque of (time, key) and a count per key."""

    __slots__ = ("window", "events", "counts")

    def __init__(self, window: int) -> None:
        self.window = window
        self.events: deque[tuple[int, Any]] = deque()
        self.counts: dict[Any, int] = {}

    def add_and_count(self, t: int, key: Any | None) -> int:
        if key is not None:
            self.events.append((t, key))
            self.counts[key] = self.counts.get(key, 0) + 1
        limit = t - self.window
        events, counts = self.events, self.counts
        while events and events[0][0] <= limit:
            _, old = events.popleft()
            c = counts[old] - 1
            if c:
                counts[old] = c
            else:
                del counts[old]
        return len(counts)


class _MaxWindow:
    """Maximum over a time window: a deque of (time, value) with decreasing values."""

    __slots__ = ("window", "events")

    def __init__(self, window: int) -> None:
        self.window = window
        self.events: deque[tuple[int, float]] = deque()

    def add_and_max(self, t: int, value: float | None) -> float:
        events = self.events
        if value is not None:
            while events and events[-1][1] <= value:
                events.pop()
            events.append((t, value))
        limit = t - self.window
        while events and events[0][0] <= limit:
            events.popleft()
        return events[0][1] if events else 0.0


class _CustomerState:
    """One customer's history within the longest window, with cumulative sums per event."""

    __slots__ = ("ts", "cum", "cum_sq_in", "cum_sq_out", "head", "base", "base_sq_in", "base_sq_out",
                 "maxes", "fans", "seen_cps", "prev_t", "last_in_t")

    def __init__(self, n_sums: int) -> None:
        self.ts: list[int] = []
        self.cum: list[np.ndarray] = []
        self.cum_sq_in: list[float] = []
        self.cum_sq_out: list[float] = []
        self.head = 0
        self.base = np.zeros(n_sums, dtype=np.int64)  # cumulative sums up to the last expired event
        self.base_sq_in = 0.0
        self.base_sq_out = 0.0
        self.maxes = {(d, w): _MaxWindow(WINDOW_NS[w]) for d in ("in", "out") for w in VELOCITY_WINDOWS}
        self.fans = {(d, w): _CountedWindow(WINDOW_NS[w]) for d in ("in", "out") for w in ("7d", "30d")}
        self.seen_cps: set[str] = set()
        self.prev_t: int | None = None
        self.last_in_t = -1

    def append(self, t: int, values: np.ndarray, sq_in: float, sq_out: float) -> None:
        last = self.cum[-1] if len(self.ts) > self.head else self.base
        last_in = self.cum_sq_in[-1] if len(self.ts) > self.head else self.base_sq_in
        last_out = self.cum_sq_out[-1] if len(self.ts) > self.head else self.base_sq_out
        self.ts.append(t)
        self.cum.append(last + values)
        self.cum_sq_in.append(last_in + sq_in)
        self.cum_sq_out.append(last_out + sq_out)
        self._expire(t - _MAX_WINDOW_NS)

    def _expire(self, limit: int) -> None:
        ts, h = self.ts, self.head
        while ts[h] <= limit:  # the newest event is never expired, so this stops
            self.base = self.cum[h]
            self.base_sq_in = self.cum_sq_in[h]
            self.base_sq_out = self.cum_sq_out[h]
            h += 1
        self.head = h
        if h > 256 and h * 2 > len(ts):  # compact so memory follows the window, not the history
            del self.ts[:h], self.cum[:h], self.cum_sq_in[:h], self.cum_sq_out[:h]
            self.head = 0

    def window_start(self, t: int, window: int) -> int:
        return bisect_right(self.ts, t - window, self.head, len(self.ts))

    def cum_before(self, start: int) -> np.ndarray:
        return self.cum[start - 1] if start > self.head else self.base

    def sq_before(self, start: int, direction: str) -> float:
        if start > self.head:
            return (self.cum_sq_in if direction == "in" else self.cum_sq_out)[start - 1]
        return self.base_sq_in if direction == "in" else self.base_sq_out


class OnlineFeatureState:
    """Incremental feature state: :meth:`update` takes one transaction and returns its feature row.

    Parameters
    ----------
    customers:
        Typed customers frame (as loaded by :func:`contract.load_dataset`).
    params:
        Feature parameters; the packaged defaults when None.
    store:
        Durable store; ``None`` keeps everything in memory. A path opens a SQLite store there.
    """

    def __init__(self, customers: pd.DataFrame, params: FeatureParams | None = None,
                 store: FeatureStore | str | Path | None = None, snapshot_every: int = _SNAPSHOT_EVERY) -> None:
        self.params = params or load_feature_params()
        self.registry = CustomerRegistry.from_customers(customers, self.params.bank_utc_offset_hours)
        if store is None:
            store = MemoryFeatureStore()
        elif isinstance(store, (str, Path)):
            store = SQLiteFeatureStore(store)
        self.store: FeatureStore = store
        self.snapshot_every = snapshot_every
        self._n_sums = len(WINDOW_SUMS)
        self._reset_state()
        self._restore()

    # -- state ------------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._customers: dict[int, _CustomerState] = {}
        self._entities: dict[tuple[str, str], dict[str, _CountedWindow]] = {
            (field, w): {} for field, _, windows in _ENTITY_WINDOWS for w in windows
        }
        self._peer_days: dict[int, dict[int, list[int]]] = {}
        self._static_cache: dict[tuple[int, int], tuple[np.ndarray, ...]] = {}
        self._seq = 0

    def _state_blob(self) -> bytes:
        payload = {
            "feature_set": FEATURE_SET_VERSION,
            "params_hash": self.params.hash,
            "seq": self._seq,
            "customers": self._customers,
            "entities": self._entities,
            "peer_days": self._peer_days,
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def _restore(self) -> None:
        snap = self.store.latest_snapshot()
        if snap is not None:
            payload = pickle.loads(snap[1])
            if payload.get("params_hash") == self.params.hash and payload.get("feature_set") == FEATURE_SET_VERSION:
                self._customers = payload["customers"]
                self._entities = payload["entities"]
                self._peer_days = payload["peer_days"]
                self._seq = payload["seq"]
        for seq, record in self.store.events_after(self._seq):
            self._apply(record)
            self._seq = seq

    def snapshot(self) -> None:
        """Write the whole state to the store so a restart replays only what came after."""
        self.store.save_snapshot(self._seq, self._state_blob())

    def close(self) -> None:
        """Snapshot and close the store."""
        self.snapshot()
        self.store.close()

    @property
    def processed(self) -> int:
        """Transactions the state has counted."""
        return self._seq

    # -- public API -------------------------------------------------------------------------------
    def update(self, txn: Mapping[str, Any]) -> dict[str, float | int]:
        """Count one transaction and return its feature row (``name -> value``).

        A transaction whose ``txn_id`` was already processed returns the stored row unchanged.
        """
        return self._row_dict(self.update_vector(txn))

    def update_vector(self, txn: Mapping[str, Any]) -> np.ndarray:
        """As :meth:`update`, returning the row as a float64 vector in :data:`FEATURE_NAMES` order."""
        record, t = _check_record(txn)
        stored = self.store.get_features(record["txn_id"])
        if stored is not None:
            return stored
        cust = self.registry.code_of.get(record["customer_id"])
        if cust is None:
            from features.registry import UnknownCustomerError

            raise UnknownCustomerError(f"customer_id {record['customer_id']!r} of transaction "
                                       f"{record['txn_id']!r} is not in the customers table")
        state = self._customers.get(cust)
        if state is not None and state.prev_t is not None and t < state.prev_t:
            raise LateTransactionError(
                f"transaction {record['txn_id']!r} at {record['timestamp']} is older than customer "
                f"{record['customer_id']!r}'s latest processed transaction "
                f"({pd.Timestamp(state.prev_t, tz='UTC').isoformat()}); windows are computed in time order, "
                "so late transactions must go through the offline path"
            )
        vector = self._apply(record, t)
        self._seq = self.store.append(record["txn_id"], record, vector)
        if self.snapshot_every and self._seq % self.snapshot_every == 0:
            self.snapshot()
        return vector

    def features_of(self, txn_id: str) -> dict[str, float | int] | None:
        """The feature row a processed transaction got, or None."""
        v = self.store.get_features(txn_id)
        return None if v is None else self._row_dict(v)

    @staticmethod
    def _row_dict(v: np.ndarray) -> dict[str, float | int]:
        values = v.tolist()
        for i in _INT_POSITIONS.tolist():
            values[i] = int(values[i])
        return dict(zip(FEATURE_NAMES, values))

    # -- the streaming computation ----------------------------------------------------------------
    def _apply(self, record: Mapping[str, Any], t_ns: int | None = None) -> np.ndarray:
        params, reg = self.params, self.registry
        if t_ns is None:
            t_ns = timestamp_ns(record["timestamp"])
        tx = TxnColumns.from_records([record], np.array([t_ns], dtype=np.int64))
        facts = derive_facts(tx, reg, params)
        cust = int(facts.cust[0])
        t = int(tx.t_ns[0])
        is_in = bool(tx.is_in[0])
        amount = float(tx.amount[0])
        state = self._customers.get(cust)
        if state is None:
            state = self._customers[cust] = _CustomerState(self._n_sums)

        prev_t = state.prev_t if state.prev_t is not None else int(reg.onboard_ns[cust])
        last_in_t = state.last_in_t
        cp = tx.counterparty_id[0]
        is_new_cp = cp is not None and cp not in state.seen_cps
        if cp is not None:
            state.seen_cps.add(cp)
        prev_arr = np.array([prev_t], dtype=np.int64)
        is_react = reactivation_flags(tx.t_ns, prev_arr, params)
        fact_matrix = pack_facts(tx, facts)
        is_new_arr = np.array([is_new_cp])
        values = window_sum_values(fact_matrix, is_new_arr, is_react)[0]
        sq = amount * amount
        state.append(t, values, sq if is_in else 0.0, 0.0 if is_in else sq)

        now = state.cum[-1]
        starts = {w: state.window_start(t, WINDOW_NS[w]) for w in WINDOWS}
        sums = np.empty(self._n_sums, dtype=np.int64)
        for w, cols in _SUM_COLUMNS_BY_WINDOW:
            sums[cols] = now[cols] - state.cum_before(starts[w])[cols]
        sq_now = {"in": state.cum_sq_in[-1], "out": state.cum_sq_out[-1]}
        sumsq = {d: np.array([[sq_now[d] - state.sq_before(starts[w], d) for w in VELOCITY_WINDOWS]])
                 for d in ("in", "out")}
        direction = "in" if is_in else "out"
        maxes = {d: np.array([[state.maxes[(d, w)].add_and_max(t, amount if d == direction else None)
                               for w in VELOCITY_WINDOWS]]) for d in ("in", "out")}
        distinct: dict[str, np.ndarray] = {}
        for d in ("in", "out"):
            for w in ("7d", "30d"):
                key = cp if d == direction else None
                distinct[f"fan_{d}_{w}"] = np.array([state.fans[(d, w)].add_and_count(t, key)])
        for field, prefix, windows in _ENTITY_WINDOWS:
            value = getattr(tx, field)[0]
            for w in windows:
                if value is None:
                    distinct[f"{prefix}_{w}"] = np.array([0])
                    continue
                table = self._entities[(field, w)]
                win = table.get(value)
                if win is None:
                    win = table[value] = _CountedWindow(WINDOW_NS[w])
                distinct[f"{prefix}_{w}"] = np.array([win.add_and_count(t, cust)])
        assert set(distinct) == set(DISTINCT_FEATURES)

        group = int(reg.peer_group[cust])
        day = int(facts.local_day[0])
        peer_cash, peer_cnt = self._peer_totals(group, day)
        days = self._peer_days.setdefault(group, {})
        bucket = days.setdefault(day, [0, 0])
        bucket[0] += int(tx.fen[0]) if bool(facts.is_cash[0]) else 0
        bucket[1] += 1

        state.prev_t = t
        if is_in:
            state.last_in_t = t
        codes = facts.cust
        day_arr = facts.local_day
        static = self._static_counts(cust, day, codes, day_arr)
        prims = Primitives(
            sums=sums[None, :],
            sumsq_in=sumsq["in"],
            sumsq_out=sumsq["out"],
            max_in=maxes["in"],
            max_out=maxes["out"],
            distinct=distinct,
            is_new_cp=is_new_arr,
            prev_t=prev_arr,
            last_in_t=np.array([last_in_t], dtype=np.int64),
            onboard_ns=reg.onboard_ns[codes],
            peer_cash_fen=np.array([peer_cash], dtype=np.int64),
            peer_txn_cnt=np.array([peer_cnt], dtype=np.int64),
            peer_size=static[0],
            agent_other=static[1],
            phone_other=static[2],
            emergency_other=static[3],
            is_corporate=reg.is_corporate[codes],
            income=reg.income[codes],
        )
        return finalize(fact_matrix, tx.amount, prims, params)[0]

    def _static_counts(self, cust: int, day: int, codes: np.ndarray, day_arr: np.ndarray) -> tuple[np.ndarray, ...]:
        """Peer-group size and shared agent/phone counts; they change only by day, so they are cached."""
        key = (cust, day)
        found = self._static_cache.get(key)
        if found is None:
            reg = self.registry
            found = (reg.peer_group_size(codes, day_arr), reg.other_customers("agent", codes, day_arr),
                     reg.other_customers("phone", codes, day_arr), reg.other_customers("emergency", codes, day_arr))
            if len(self._static_cache) > 1_000_000:
                self._static_cache.clear()
            self._static_cache[key] = found
        return found

    def _peer_totals(self, group: int, day: int) -> tuple[int, int]:
        days = self._peer_days.get(group)
        if not days:
            return 0, 0
        cash = cnt = 0
        for d in range(day - self.params.peer_lookback_days, day):
            b = days.get(d)
            if b is not None:
                cash += b[0]
                cnt += b[1]
        for old in [d for d in days if d < day - self.params.peer_lookback_days - 1]:
            del days[old]  # keep only the days a later transaction can still need
        return cash, cnt


_VALUE_SETS = {"direction": DIRECTIONS, "channel": CHANNELS, "txn_type": TXN_TYPES,
               "counterparty_type": COUNTERPARTY_TYPES}


def _check_record(txn: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Contract checks on one transaction; returns a clean copy (empty text as None) and its UTC time in ns."""
    if not isinstance(txn, Mapping):
        raise BadTransactionError(f"a transaction must be a mapping of contract fields; got {type(txn).__name__}")
    record = {k: (None if (v is None or (isinstance(v, str) and v.strip() == "")) else v) for k, v in txn.items()}
    missing = [f for f in _REQUIRED if record.get(f) is None]
    if missing:
        raise BadTransactionError(f"transaction {record.get('txn_id')!r} is missing required field(s): {', '.join(missing)}")
    for field, allowed in _VALUE_SETS.items():
        if record[field] not in allowed:
            raise BadTransactionError(
                f"The '{field}' field of transaction {record['txn_id']!r} must be one of {', '.join(allowed)}. "
                f"Got {record[field]!r} instead."
            )
    try:
        amount = float(record["amount"])
    except (TypeError, ValueError):
        raise BadTransactionError(
            f"The 'amount' field of transaction {record['txn_id']!r} must be a number > 0. Got {record['amount']!r} instead."
        ) from None
    if not math.isfinite(amount) or amount <= 0:
        raise BadTransactionError(
            f"The 'amount' field of transaction {record['txn_id']!r} must be a number > 0. Got {record['amount']!r} instead."
        )
    try:
        t_ns = timestamp_ns(record["timestamp"])
    except (TypeError, ValueError):
        raise BadTransactionError(
            f"The 'timestamp' field of transaction {record['txn_id']!r} must be an ISO 8601 timestamp. "
            f"Got {record['timestamp']!r} instead."
        ) from None
    for f in ("txn_id", "customer_id", "account_id"):
        record[f] = str(record[f])
    return record, t_ns


def replay(state: OnlineFeatureState, transactions: pd.DataFrame) -> np.ndarray:
    """Feed a typed transactions frame through the online state in time order; rows in frame order."""
    out = np.empty((len(transactions), len(FEATURE_NAMES)), dtype=np.float64)
    for i, record in enumerate(transaction_records(transactions)):
        out[i] = state.update_vector(record)
    return out
