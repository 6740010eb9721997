"""Online path: one transaction in, its feature row out, with state kept between calls.

The state per customer, per shared identifier (IP address, device, operator) and per peer group is
the streaming counterpart of the offline kernels: per customer, the events of the longest window with
the exact integer running sums and the running sums of squares after each (window sum = now minus the
value before the window; added in the offline order), from which one compiled step takes the window
sums and maxima; counted deques for distinct counts. The facts come from the same compiled
definitions as offline (:func:`amlscore.features.events.fact_rows`, :func:`amlscore.features.finalize.window_sum_values`)
and the last step is the very kernel the offline path ends in (:func:`amlscore.features.finalize.finalize_rows`).

:class:`OnlineFeatureState` holds the parts, each in its own module: the record checks and their errors
(:mod:`~amlscore.features.txn_checks`), each customer's windows (:mod:`~amlscore.features.customer_window`),
the windows of IPs, devices and operators (:mod:`~amlscore.features.entity_windows`), the peer groups'
days (:mod:`~amlscore.features.peer_days`), the counterparty graph (:mod:`~amlscore.features.online_graph`)
and the components of shared identifiers (:mod:`~amlscore.features.online_idcomp`). This module counts a
transaction through them, logs it in the store, snapshots and restores the state, follows the customers
table, and warms a state up (:func:`warm_up`, :func:`replay`).

Handling of awkward input (documented in docs/features.md):

* unknown customer: :class:`~features.registry.UnknownCustomerError`, nothing changes;
* a ``txn_id`` seen before: the stored feature row is returned and nothing is counted again;
* a transaction older than the customer's latest one: :class:`LateTransactionError`, nothing changes
  (windows would silently go wrong otherwise);
* a missing or malformed field: :class:`BadTransactionError` naming the field, nothing changes.

Memory follows the windows, not the history: a customer keeps the events of its longest window (90
days), cached peer-group and shared-identifier counts are one entry per customer, peer-group days
older than the lookback are dropped, and windows of IPs, devices and operators idle for longer than
their window plus 90 days are swept. What grows with the history is only what a feature needs for
ever: each customer's set of counterparties seen ("first-time counterparty"), and the payer-payee
pairs of the counterparty graph (first payment to a payee). The graph itself
(:mod:`amlscore.features.graph`) is one array per node id with the latest 16 edges out and in; outside
accounts idle for 120 days are forgotten with the identifier windows' sweep and their ids reused.

Snapshots (every ``snapshot_every`` transactions) leave the request path where they can: a forked
child pickles the state as it was at that instant (copy-on-write) and writes it to the store's
snapshot file while the parent goes on serving (:mod:`amlscore.features.snapshots`).
"""

from __future__ import annotations

import logging
import math
import pickle
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd

from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION, INTEGER_FEATURES
from amlscore.features.customer_window import (  # noqa: F401 - snapshots unpickle both classes from here
    MAX_WINDOW_NS,
    WINDOW_NS,
    _CountedWindow,
    _CustomerState,
)
from amlscore.features.entity_windows import EntityWindows
from amlscore.features.events import (
    _FC,
    N_FACTS,
    TextPredicates,
    counterparty_key,
    counterparty_keys,
    fact_constants,
    fact_rows,
    raw_row,
    timestamp_ns,
    transaction_records,
)
from amlscore.features.finalize import (
    DISTINCT_FEATURES,
    FEATURE_INDEX,
    PACKED_PRIMITIVES,
    finalize_constants,
    finalize_rows,
    reactivation_flags,
    window_sum_values,
)
from amlscore.features.graph import GRAPH_FEATURES, PAYER_PEER_FEATURE, report_times
from amlscore.features.idcomp import ID_COMPONENT_FEATURES
from amlscore.features.offline import ordered_transactions
from amlscore.features.online_graph import OnlineGraph
from amlscore.features.online_idcomp import OnlineIdComponents
from amlscore.features.params import FeatureParams, load_feature_params
from amlscore.features.peer_days import PeerGroupDays
from amlscore.features.registry import (
    DAY_NS,
    CustomerRegistry,
    UnknownCustomerError,
    customer_records as _customer_records,
    upsert_customer_table,
)
from amlscore.features.snapshots import SnapshotKeeper, StateIdentity
from amlscore.features.recent_rows import RecentRows, RecentRowsSpec
from amlscore.features.redis_store import LogTrimmedError, StateDivergedError
from amlscore.features.txn_checks import (  # noqa: F401 - the errors are re-exported
    BadTransactionError,
    LateTransactionError,
    check_record,
    encode_record,
    payload_digest,
)
from amlscore.features.store import (
    FeatureStore,
    MemoryFeatureStore,
    SQLiteFeatureStore,
)

log = logging.getLogger(__name__)

# Transactions between periodic snapshots: a restart replays at most this many events. Pickling and
# writing one takes 1-2 s at ~200k transactions of state: a forked child does it when it can, and the
# request that forks pays only the fork (~20-30 ms at ~800 MB of RSS on the project VM).
_SNAPSHOT_EVERY = 50_000
_STATE_FORMAT = 5  # snapshots of another layout are ignored (the state is rebuilt from the events)
CUSTOMERS_KEY = "_customers"  # a logged event that adds or changes customers (not a transaction)
_SWEEP_EVERY = 10_000  # transactions per pass over the shared-identifier windows, forgetting idle ones
_SWEEP_STEPS = 100  # each pass is cut in this many steps: a whole pass in one call paused it 45-75 ms
# the packed row the online path builds must follow the kernel's column order
assert PACKED_PRIMITIVES == ("is_new_cp", "prev_t", "last_in_t", "onboard_ns", "peer_cash_fen", "peer_txn_cnt",
                             "peer_size", "agent_other", "phone_other", "emergency_other", "is_corporate",
                             *DISTINCT_FEATURES)
assert DISTINCT_FEATURES[:4] == ("fan_in_7d", "fan_out_7d", "fan_in_30d", "fan_out_30d")
_F_IS_CASH, _F_FEN = _FC["is_cash"], _FC["fen"]
_INT_POSITIONS = np.array([i for i, n in enumerate(FEATURE_NAMES) if n in INTEGER_FEATURES])
_GRAPH_POS = np.array([FEATURE_INDEX[name] for name in GRAPH_FEATURES], dtype=np.int64)
_IDCOMP_POS = np.array([FEATURE_INDEX[name] for name in ID_COMPONENT_FEATURES], dtype=np.int64)
_PAYER_PEER_POS, _PAYER_SHARE_POS = FEATURE_INDEX[PAYER_PEER_FEATURE], FEATURE_INDEX["payer_indiv_share_30d"]
_GRAPH_IDLE_NS = WINDOW_NS["30d"] + MAX_WINDOW_NS  # an outside account idle this long is forgotten
_REBUILD_TRIES = 3  # loads of a snapshot of the shared store before giving up (trimmed meanwhile each time)


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
    snapshot_every:
        Transactions between periodic snapshots (0: only :meth:`snapshot` and :meth:`close` write one).
    background_snapshots:
        Write periodic snapshots from a forked child, off the request path. Only for stores with a
        snapshot file (:class:`~features.store.SQLiteFeatureStore`) where ``os.fork`` exists; otherwise,
        or when False, periodic snapshots are written in the calling transaction.
    reports:
        The contract's reports (the data folder's, plus feedback when the caller has it): the graph
        features of reported neighbours count a customer from its first suspicious report's
        report_date on. An input like ``customers``, not part of the state: :meth:`set_reports`
        replaces it.
    recent_rows:
        Keep these columns of the recent transactions' rows, in the state and its snapshots
        (:attr:`recent`; the service's rating window over a store that trims its rows).
    """

    def __init__(self, customers: pd.DataFrame, params: FeatureParams | None = None,
                 store: FeatureStore | str | Path | None = None, snapshot_every: int = _SNAPSHOT_EVERY,
                 background_snapshots: bool = True, reports: pd.DataFrame | None = None,
                 recent_rows: RecentRowsSpec | None = None) -> None:
        self.params = params or load_feature_params()
        self.registry = CustomerRegistry.from_customers(customers, self.params.bank_utc_offset_hours)
        self.customers = customers  # the table the registry indexes; upsert_customers changes both
        self._n_customers = len(self.registry.onboard_ns)
        self.set_reports(reports)
        if store is None:
            store = MemoryFeatureStore()
        elif isinstance(store, (str, Path)):
            store = SQLiteFeatureStore(store)
        self.store: FeatureStore = store
        identity = StateIdentity(self.params.hash, FEATURE_SET_VERSION, _STATE_FORMAT)
        bind = getattr(store, "bind", None)
        if bind is not None:  # a store shared by several workers: all must compute the same rows
            bind(identity.fields)
        self.snapshots = SnapshotKeeper(store, identity, every=snapshot_every, background=background_snapshots)
        self._last_txn_id: str | None = None  # of event ``_seq``: a snapshot file names it
        self._predicates = TextPredicates(self.params)
        self._fact_consts = fact_constants(self.params)
        self._offset_ns = int(self._fact_consts[0])
        self._consts = finalize_constants(self.params)
        self._since_sweep = 0
        self._sweep: Iterator[None] | None = None  # the pass in progress (see _maybe_sweep)
        # called with (record, row) for each transaction another worker counted (shared store only)
        self.on_event: Callable[[dict[str, Any], np.ndarray], None] | None = None
        # called with the changed customers' rows when another worker's upsert is applied (shared store only)
        self.on_customers: Callable[[pd.DataFrame], None] | None = None
        # called after the replica was rebuilt from a snapshot (it fell behind the shared log's trim point)
        self.on_rebuilt: Callable[[], None] | None = None
        self._recent_spec = recent_rows
        self._reset_state()
        self._restore_retrying()

    # -- state ------------------------------------------------------------------------------------
    def _reset_state(self) -> None:
        self._customers: dict[int, _CustomerState] = {}
        self._entities = EntityWindows()
        self._peers = PeerGroupDays(self.params.peer_lookback_days)
        self._graph = OnlineGraph(self._n_customers)  # customers are nodes 0..n-1, outside accounts after them
        self._idcomp = OnlineIdComponents(self.params.id_components, self.registry, self._n_customers)
        self._sweep = None  # a pass walks the tables it started on
        self._seq = 0
        self._latest_t = 0  # newest transaction time seen, for sweeping idle identifier windows
        self.recent = RecentRows(self._recent_spec) if self._recent_spec is not None else None
        self.recent_complete = True  # False when a snapshot restored did not carry them (see _restore)

    def _state_blob(self) -> bytes:
        payload = {
            "feature_set": FEATURE_SET_VERSION,
            "params_hash": self.params.hash,
            "state_format": _STATE_FORMAT,
            "seq": self._seq,
            "latest_t": self._latest_t,
            "customers": self._customers,
            "entities": self._entities.tables,
            "peer_days": self._peers.days,
            # what the customer codes and peer-group numbers above stand for: a restore under another
            # customers table (customers added or changed) maps them to its own (_remap)
            "customer_ids": self.registry.customer_ids.tolist(),
            "peer_groups": list(self.registry.peer_group_names),
            "customers_table": self.customers,
            "recent_rows": self.recent,
            "graph": self._graph.blob(),
            "idcomp": self._idcomp.blob(),
        }
        return pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)

    def _restore(self, upto: int | None = None, customers_from_snapshot: bool = False) -> None:
        """Load the newest usable snapshot (the store's snapshot file or its snapshot table, by seq),
        then replay the events stored after it (up to seq ``upto`` when given).

        A snapshot file that is damaged, of other parameters, feature set or state format, or not of
        this store's history (another store id, a seq beyond the last event, another transaction at its
        seq) is ignored with a warning: the events rebuild what it would have given.
        """
        payload = self.snapshots.newest(self.store.last_seq() if upto is None else upto)
        if payload is not None:
            self._customers = payload["customers"]
            self._entities.tables = payload["entities"]
            self._peers.days = payload["peer_days"]
            self._graph.restore(payload["graph"])
            self._idcomp.restore(payload["idcomp"])
            self._seq = payload["seq"]
            self._latest_t = payload["latest_t"]
            self._adopt_customers(payload["customers_table"], payload["customer_ids"], payload["peer_groups"],
                                  restored=not customers_from_snapshot)
            self._adopt_recent(payload.get("recent_rows"))
        del payload
        for seq, record in self.store.events_after(self._seq):
            if upto is not None and seq > upto:
                break
            if CUSTOMERS_KEY in record:
                self._upsert(record[CUSTOMERS_KEY])
            else:
                self._apply(record)
            self._seq = seq
            self._last_txn_id = record.get("txn_id") or record.get("_event_id")
        if self._last_txn_id is None and self._seq:
            txn_id_at = getattr(self.store, "txn_id_at", None)
            self._last_txn_id = txn_id_at(self._seq) if txn_id_at is not None else None

    def _adopt_recent(self, restored: RecentRows | None) -> None:
        """Take the snapshot's recent rows when they are of this state's columns and window; else they are
        incomplete until a window has passed (the caller falls back on the store's events)."""
        if self.recent is None:
            return
        if restored is not None and restored.spec == self.recent.spec:
            self.recent = restored
        else:
            self.recent_complete = False
            log.warning("online feature state: the snapshot restored carries no recent rows of these columns and "
                        "window; they fill from the transactions counted from here on")

    def _restore_retrying(self, upto: int | None = None, customers_from_snapshot: bool = False) -> None:
        """:meth:`_restore`, again from a newer snapshot when the shared log was trimmed past the one loaded."""
        for attempt in range(1, _REBUILD_TRIES + 1):
            try:
                self._restore(upto, customers_from_snapshot)
                return
            except LogTrimmedError as exc:
                if attempt == _REBUILD_TRIES:
                    raise StateDivergedError(
                        f"the online state could not be rebuilt from the shared store {_REBUILD_TRIES} times: {exc}. "
                        "The log is trimmed past every snapshot kept at or before the point needed: keep more "
                        "snapshots (AML_STATE_KEEP_SNAPSHOTS); docs/scale-out.md, 'Trimming'") from None
                log.warning("online feature state: %s; loading the snapshot again", exc)
                self._reset_state()

    def rebuild(self, upto: int | None = None) -> None:
        """Start the replica again from the newest snapshot (at or before seq ``upto``) and the log after it.

        For a worker that fell behind the shared log's trim point (it did not claim for longer than the
        snapshots kept cover): the entries it missed are gone, the snapshot has them. The snapshot's
        customers table is taken (it is newer than this replica's), plus customers only this one had.
        """
        given = self.customers
        was = self._seq
        self._reset_state()
        self._restore_retrying(upto, customers_from_snapshot=True)
        extra = given[~given["customer_id"].astype(str).isin(set(self.customers["customer_id"].astype(str)))]
        if len(extra):
            self._upsert(_customer_records(extra))
        rewind = getattr(self.store, "rewind", None)
        if rewind is not None:
            rewind(self._seq)
        log.warning("online feature state: rebuilt from the shared store's snapshot (this replica was at seq %d, "
                    "behind the log's trim point; now at seq %d)", was, self._seq)
        if self.on_rebuilt is not None:
            self.on_rebuilt()

    def snapshot(self) -> None:
        """Write the whole state now, so a restart replays only what comes after; synchronous.

        Waits for a running background snapshot first (so an older snapshot cannot replace this one);
        see :class:`amlscore.features.snapshots.SnapshotKeeper` for where it goes.
        """
        self.snapshots.write_now(self._seq, self._last_txn_id, self._state_blob)

    def close(self) -> None:
        """Wait for a running background snapshot, snapshot (synchronously) and close the store."""
        try:
            self.snapshot()
        finally:
            self.store.close()


    @property
    def processed(self) -> int:
        """Transactions the state has counted."""
        return self._seq

    @property
    def empty(self) -> bool:
        """Nothing counted and nothing seeded (:meth:`seed_history` needs it so)."""
        return not self._seq and not self._customers

    # -- public API -------------------------------------------------------------------------------
    def update(self, txn: Mapping[str, Any]) -> dict[str, float | int]:
        """Count one transaction and return its feature row (``name -> value``).

        A transaction whose ``txn_id`` was already processed returns the stored row unchanged.
        """
        return self._row_dict(self.update_vector(txn))

    def update_vector(self, txn: Mapping[str, Any]) -> np.ndarray:
        """As :meth:`update`, returning the row as a float64 vector in :data:`FEATURE_NAMES` order."""
        record, t = check_record(txn)
        stored = self.store.get_features(record["txn_id"])
        if stored is not None:
            return stored
        cust = self.registry.code_of.get(record["customer_id"])
        if cust is None and getattr(self.store, "shared", False):
            self.catch_up()  # another worker may have added the customer
            cust = self.registry.code_of.get(record["customer_id"])
        if cust is None:
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
        if getattr(self.store, "shared", False):
            return self._update_shared(record, t)
        vector = self._apply(record, t)
        self._seq = self.store.append(record["txn_id"], record, vector)
        self._last_txn_id = record["txn_id"]
        self._after_count()
        return vector

    def _after_count(self) -> None:
        self.snapshots.poll()
        if self.snapshots.due(self._seq):
            self.snapshots.periodic(self._seq, self._last_txn_id, self._state_blob)

    # -- several workers over one shared log (amlscore.features.redis_store) ------------------------
    def _update_shared(self, record: dict[str, Any], t: int) -> np.ndarray:
        """Claim the transaction in the shared log, apply what other workers logged before it, count it.

        Its row is then the function of the log before it, whichever worker computes it, so no worker's
        transaction is lost to another's (the claim is one atomic step on the server).
        """
        store = self.store
        try:
            claim = store.claim(record, t, encode_record(record))  # type: ignore[attr-defined]
        except LogTrimmedError:  # nothing claimed: catch up through the snapshot, then claim
            self.rebuild()
            claim = store.claim(record, t, encode_record(record))  # type: ignore[attr-defined]
        if claim.status == "late":
            raise LateTransactionError(
                f"transaction {record['txn_id']!r} at {record['timestamp']} is older than customer "
                f"{record['customer_id']!r}'s latest processed transaction "
                f"({pd.Timestamp(claim.latest_ns, tz='UTC').isoformat()}); windows are computed in time order, "
                "so late transactions must go through the offline path")
        if claim.status == "seen":  # claimed by a worker that stopped before storing its row
            self.catch_up(claim.seq)
            row = store.remembered_row(record["txn_id"])  # type: ignore[attr-defined]
            if row is None:
                raise StateDivergedError(f"transaction {record['txn_id']!r} was counted (seq {claim.seq}) but its "
                                         "feature row was never stored and this worker did not compute it")
            store.put_features(record["txn_id"], row)  # type: ignore[attr-defined]
            return row
        if claim.seq <= self._seq:
            raise StateDivergedError(
                f"the shared state gave seq {claim.seq} to transaction {record['txn_id']!r} but this worker has "
                f"counted {self._seq} already: the Redis/Valkey server lost transactions (restarted without "
                "them?). Restart the workers (they rebuild their state from what the server has); "
                "docs/scale-out.md, 'Persistence'")
        self.catch_up(claim.seq - 1)
        vector = self._apply(record, t)
        self._seq, self._last_txn_id = claim.seq, record["txn_id"]
        store.put_features(record["txn_id"], vector)  # type: ignore[attr-defined]
        self._after_count()
        return vector

    def catch_up(self, upto: int | None = None) -> int:
        """Apply the transactions other workers logged after this replica's last one (up to seq ``upto``).

        Each one's row goes to :attr:`on_event` (the service's behaviour window). Returns how many.
        A replica behind the log's trim point (the entries it missed are gone) is rebuilt from the snapshot.
        """
        before = self._seq
        try:
            return self._catch_up(upto)
        except LogTrimmedError:
            self.rebuild(upto)
            return self._seq - before

    def _catch_up(self, upto: int | None = None) -> int:
        """:meth:`catch_up` over a log that holds every entry this replica has not applied."""
        entries = getattr(self.store, "entries", None)
        if entries is None:
            return 0
        import json  # noqa: PLC0415

        n = 0
        for seq, payload in entries(self._seq, upto):
            record = json.loads(payload)
            if CUSTOMERS_KEY in record:
                self._upsert(record[CUSTOMERS_KEY])
                self._seq = seq
                if self.on_customers is not None:
                    self.on_customers(self._customer_rows(record[CUSTOMERS_KEY]))
                n += 1
                continue
            row = self._apply(record)
            self._seq, self._last_txn_id = seq, record["txn_id"]
            self.store.remember_row(record["txn_id"], row)  # type: ignore[attr-defined]
            if self.on_event is not None:
                self.on_event(record, row)
            n += 1
        return n

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

    def reseat_buffers(self) -> None:
        """Give every customer's event buffers the size a restore gives them (twice the events inside
        the window): after a replay from nothing, a buffer's size is wherever its doublings left it,
        and the ones just large enough would double again within the next window."""
        for state in self._customers.values():
            state.reseat()

    # -- customers added or changed while serving ----------------------------------------------------
    def upsert_customers(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Add or change customers (typed contract rows, keyed by ``customer_id``) from the next transaction on.

        The change is logged in the store like a transaction, so a restart, and every worker of a shared
        store, applies it at the same place in the history. Returns the changed customers' rows as the
        registry now has them (new and changed ones; unchanged rows sent again are left out).
        """
        records = _customer_records(rows)
        changed = self._changed(records)
        if not changed:
            return self.customers.iloc[0:0]
        payload = {CUSTOMERS_KEY: changed}
        store = self.store
        if getattr(store, "shared", False):
            try:
                seq = store.log_customers(encode_record(payload))  # type: ignore[attr-defined]
            except LogTrimmedError:  # nothing logged: catch up through the snapshot, then log
                self.rebuild()
                seq = store.log_customers(encode_record(payload))  # type: ignore[attr-defined]
            self.catch_up(seq - 1)
            self._upsert(changed)
            self._seq = seq
        else:
            event_id = f"customers:{self._seq + 1}:{payload_digest(payload)}"  # the events table's txn_id
            payload["_event_id"] = event_id
            self._upsert(changed)
            self._seq = store.append(event_id, payload, np.zeros(0))
            self._last_txn_id = event_id
        return self._customer_rows(changed)

    def _changed(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The records that add a customer or change one (as the registry's table has it)."""
        current = _customer_records(self.customers.set_index(self.customers["customer_id"].astype(str), drop=False)
                                    .loc[[r["customer_id"] for r in records if r["customer_id"] in self.registry.code_of]])
        known = {r["customer_id"]: r for r in current}
        return [r for r in records if known.get(r["customer_id"]) != r]

    def _customer_rows(self, records: list[dict[str, Any]]) -> pd.DataFrame:
        ids = [r["customer_id"] for r in records]
        return self.customers.set_index(self.customers["customer_id"].astype(str), drop=False).loc[ids].reset_index(drop=True)

    def _upsert(self, records: list[dict[str, Any]]) -> None:
        """Merge customer records into the table (changed rows in place, new ones at the end) and re-index."""
        merged = upsert_customer_table(self.customers, records)
        self._adopt_customers(merged, self.registry.customer_ids.tolist(), list(self.registry.peer_group_names))

    def _adopt_customers(self, table: pd.DataFrame, old_ids: list[str], old_groups: list[str],
                         restored: bool = False) -> None:
        """Take ``table`` as the customers and map the state's customer codes and peer-group numbers (those
        of ``old_ids`` and ``old_groups``) to the new registry's.

        ``restored``: ``table`` is a snapshot's; the customers given at start (the data folder's) win for the
        customers they have, and the snapshot's others (added while serving) are kept after them.
        """
        if restored:
            have = set(self.customers["customer_id"].astype(str))
            extra = table[~table["customer_id"].astype(str).isin(have)]
            if len(extra):
                table = pd.concat([self.customers, extra], ignore_index=True)
            else:
                table = self.customers
        self.customers = table
        self.registry = CustomerRegistry.from_customers(table, self.params.bank_utc_offset_hours)
        self._idcomp.adopt_registry(self.registry)
        self._remap(old_ids, old_groups)

    def _remap(self, old_ids: list[str], old_groups: list[str]) -> None:
        """Renumber the state from the customer codes of ``old_ids`` and the groups of ``old_groups`` to the
        registry's: per-customer windows, shared-identifier windows, peer-group days and the graph's nodes
        (customers first, then the outside accounts after them)."""
        reg = self.registry
        new_n, old_n = len(reg.customer_ids), len(old_ids)
        if old_ids == reg.customer_ids.tolist() and old_groups == list(reg.peer_group_names):
            self._n_customers = self._graph.n_customers = new_n
            return
        cmap = np.empty(old_n, dtype=np.int64)
        for c, cid in enumerate(old_ids):
            code = reg.code_of.get(cid)
            if code is None:
                raise UnknownCustomerError(f"customer {cid!r} is in the online state's history but not in the customers "
                                           "table: customers can be added or changed, not removed")
            cmap[c] = code
        self._customers = {int(cmap[c]): st for c, st in self._customers.items()}
        self._entities.remap(cmap)
        self._peers.remap(old_groups, list(reg.peer_group_names))
        self._graph.remap(cmap, new_n)  # customers by code, outside accounts shifted past the customers
        self._idcomp.remap(cmap, new_n)
        self._n_customers = new_n
        self.set_reports(self._reports)

    def seed_history(self, transactions: pd.DataFrame) -> int:
        """Set what the features remember from beyond their windows, from history that is not replayed.

        Every feature looks back at most 90 days but three facts per customer, which go back to its
        first transaction: the time of its previous transaction (days since it, reactivation), of its
        previous incoming one, and the counterparties it ever dealt with (``is_new_counterparty``). A
        state warmed up with the last days only would forget them, and call new a counterparty last
        paid 200 days ago where training (the offline path, over the whole history) did not. This sets
        them from ``transactions`` (a typed frame, all older than what is replayed next) on an empty
        state, and keeps the result as the snapshot at seq 0: a restart that rebuilds the state from the
        events starts from it too. Returns the number of customers seeded.
        """
        if self._seq or self._customers:
            raise RuntimeError("seed_history needs an empty state: it sets what precedes every event")
        if len(transactions) == 0:
            return 0
        reg = self.registry
        ids = transactions["customer_id"].astype(str)
        codes = ids.map(reg.code_of)
        if codes.isna().any():
            bad = ids[codes.isna()].iloc[0]
            raise UnknownCustomerError(f"customer_id {bad!r} of the history is not in the customers table")
        # microseconds, as a replayed record's ISO time gives them (amlscore.features.events.transaction_records)
        t_ns = pd.to_datetime(transactions["timestamp"], utc=True).astype("int64").to_numpy() // 1000 * 1000
        cp = None
        if "counterparty_id" in transactions:
            keys = counterparty_keys(transactions, reg.code_of)
            cp = pd.Series(np.append(keys.values, None)[keys.codes], dtype=object)
        frame = pd.DataFrame({"cust": codes.to_numpy(dtype=np.int64), "t": t_ns,
                              "incoming": (transactions["direction"].astype(str) == "in").to_numpy()})
        last = frame.groupby("cust")["t"].max()
        last_in = frame[frame["incoming"]].groupby("cust")["t"].max()
        counterparties: dict[int, set[str]] = {}
        if cp is not None:
            has = cp.notna().to_numpy() & (cp.astype(str) != "").to_numpy()
            for cust, group in pd.Series(cp.to_numpy()[has]).groupby(frame["cust"].to_numpy()[has]):
                counterparties[int(cust)] = set(map(str, group))
            # the payer -> payee pairs whose edges were stored (an in leg from a customer stores none)
            incoming = frame["incoming"].to_numpy()
            internal = cp.isin(reg.code_of.keys()).to_numpy()
            stored = has & ~(incoming & internal)
            cust_ids, keys = ids.to_numpy()[stored], cp.to_numpy()[stored]
            for inc, c_id, key in zip(incoming[stored].tolist(), cust_ids.tolist(), keys.tolist()):
                self._graph.pairs.add((key, c_id) if inc else (c_id, key))
        for cust, t in last.items():
            state = self._customers[int(cust)] = _CustomerState()
            state.prev_t = int(t)
            state.last_in_t = int(last_in.get(cust, -1))
            state.seen_cps = counterparties.get(int(cust), set())
        seed_latest = getattr(self.store, "seed_latest", None)
        if seed_latest is not None:  # the shared store refuses late transactions against these times too
            seed_latest({str(reg.customer_ids[int(c)]): int(t) for c, t in last.items()})
        self.store.save_snapshot(0, self._state_blob())
        return len(last)

    # -- the streaming computation ----------------------------------------------------------------
    def _apply(self, record: Mapping[str, Any], t_ns: int | None = None) -> np.ndarray:
        """Count one checked transaction into the state and return its feature row."""
        reg = self.registry
        if t_ns is None:
            t_ns = timestamp_ns(record["timestamp"])
        cust = reg.code_of.get(record["customer_id"])
        if cust is None:
            raise UnknownCustomerError(f"customer_id {record['customer_id']!r} of transaction "
                                       f"{record['txn_id']!r} is not in the customers table")
        raw = raw_row(record, t_ns, cust, reg, self._predicates)
        state = self._customers.get(cust)
        if state is None:
            state = self._customers[cust] = _CustomerState()
        onboard_ns = int(reg.onboard_ns[cust])
        prev_t = state.prev_t if state.prev_t is not None else onboard_ns
        cp = counterparty_key(record.get("counterparty_id"), record.get("counterparty_account"), reg.code_of)
        is_new_cp = cp is not None and cp not in state.seen_cps
        if cp is not None:
            state.seen_cps.add(cp)
        is_in = record["direction"] == "in"
        day = (t_ns + self._offset_ns) // DAY_NS
        group = int(reg.peer_group[cust])
        peer_cash, peer_cnt, _, _ = self._peers.before(group, day)
        prims = [int(is_new_cp), prev_t, state.last_in_t, onboard_ns, peer_cash, peer_cnt,
                 *self._peers.static_counts(reg, cust, day), int(reg.is_corporate[cust]),
                 # the distinct counts (DISTINCT_FEATURES): fan-in/out 7d and 30d, then customers per IP, device
                 # and operator; the transaction is counted into their windows
                 *self._entities.count(record, cust, t_ns, state.fan_counts(t_ns, is_in, cp))]

        # the history-free facts and what they add to the window sums: the offline definitions
        facts = np.empty((1, N_FACTS), dtype=np.int64)
        fact_rows(np.array([raw], dtype=np.int64), self._fact_consts, facts)
        is_react = bool(reactivation_flags(t_ns, prev_t, self.params))
        values = window_sum_values(facts, np.array([is_new_cp]), np.array([is_react]))[0]
        amount = float(record["amount"])
        sums, sqs, mx = state.step(t_ns, amount, is_in, values)
        ev = np.empty((1, N_FACTS + len(prims)), dtype=np.int64)
        ev[0, :N_FACTS] = facts[0]
        ev[0, N_FACTS:] = prims
        row = finalize_rows(ev, np.array([[amount, reg.income[cust]]]), sums, sqs, mx, self._consts)[0]
        row[_GRAPH_POS] = self._graph.features(reg, record, cust, cp, is_in, t_ns, amount, self._report_ns,
                                               self._first_report)
        row[_PAYER_PEER_POS] = self._payer_vs_peers(row[_PAYER_SHARE_POS], cust, is_in, day)
        row[_IDCOMP_POS] = self._idcomp.features(record, cust, t_ns, self._report_ns)
        state.n += 1
        state.prev_t = t_ns
        if is_in:
            state.last_in_t = t_ns
        out_fen = 0 if is_in else int(facts[0, _F_FEN])
        indiv_fen = out_fen if record["counterparty_type"] == "individual" else 0
        self._peers.count(group, day, int(facts[0, _F_FEN]) if facts[0, _F_IS_CASH] else 0, out_fen, indiv_fen)
        self._maybe_sweep(t_ns)
        if self.recent is not None:
            self.recent.add(record, t_ns, row)
        return row

    def set_reports(self, reports: pd.DataFrame | None) -> None:
        """Use these reports (contract columns) for the reported-neighbour features from now on."""
        self._reports = reports
        self._report_ns = report_times(reports, self.registry.code_of, self._n_customers,
                                       self.params.bank_utc_offset_hours)
        self._first_report = int(self._report_ns.min())

    def _payer_vs_peers(self, share: float, cust: int, is_in: bool, day: int) -> float:
        """The payer's share of outflow to individuals minus its peer group's (NaN when the payer is
        not a customer of the bank or either share is undefined); see :func:`payer_vs_peers`."""
        payer = self._graph.last_cp_node if is_in else cust
        if payer < 0 or payer >= self._n_customers:
            return math.nan
        _, _, out_fen, indiv_fen = self._peers.before(int(self.registry.peer_group[payer]), day)
        # payer_vs_peers for one row, in scalars: integers below 2**53 divide to the same float
        return share - indiv_fen / out_fen if out_fen > 0 else math.nan

    def _maybe_sweep(self, t: int) -> None:
        """Forget shared-identifier windows idle for longer than their window plus the longest window, so
        memory follows the active identifiers, not every IP ever seen.

        A forgotten window held only events that have left it for any transaction up to 90 days older
        than the newest one seen, so no count changes (later ones belong to the offline path anyway).
        One pass over every table takes about ``_SWEEP_EVERY`` transactions, a slice of it every
        ``_SWEEP_EVERY // _SWEEP_STEPS``: the whole pass at once paused the request path 45-75 ms.
        """
        if t > self._latest_t:
            self._latest_t = t
        self._since_sweep += 1
        if self._since_sweep < _SWEEP_EVERY // _SWEEP_STEPS:
            return
        self._since_sweep = 0
        if self._sweep is None:
            self._sweep = self._sweep_pass()
        if next(self._sweep, "done") == "done":
            self._sweep = None

    def _sweep_pass(self) -> Iterator[None]:
        """One pass over the identifier tables, yielding after each slice of ~1/_SWEEP_STEPS of their keys."""
        chunk = max(256, -(-self._entities.keys() // _SWEEP_STEPS))
        yield from self._entities.forget_idle(lambda: self._latest_t, chunk)
        # outside accounts of the graph idle for longer than the graph's longest window plus 90 days:
        # every edge still pointing at their id is older than any window, so the id can be reused.
        # Node ids in slices, their last edge times read at once.
        lo, hi = self._n_customers, self._graph.next_node
        for a in range(lo, hi, chunk):
            self._graph.forget_idle(np.arange(a, min(hi, a + chunk)), self._latest_t - _GRAPH_IDLE_NS)
            yield
        # shared identifiers of the components idle for longer than their window plus 90 days: every link
        # to them is out of any window, so their numbers can be reused (idcomp.py: a link out of the
        # window is a free slot whatever it names)
        idle_before = self._latest_t - self._idcomp.window - MAX_WINDOW_NS
        for a in range(0, self._idcomp.next_identifier, chunk):
            self._idcomp.forget_idle(a, a + chunk, idle_before)
            yield


_WARM_UP_KEY = "warm_up"  # the store's meta: "begun" from before the seed until the snapshot, then "done"


def _warm_up_mark(state: OnlineFeatureState) -> str | None:
    get = getattr(state.store, "get_meta", None)  # stores without meta (in memory) cannot outlive a crash anyway
    return get(_WARM_UP_KEY) if get is not None else None


def _mark_warm_up(state: OnlineFeatureState, value: str) -> None:
    put = getattr(state.store, "set_meta", None)
    if put is not None:
        put(_WARM_UP_KEY, value)


def warm_up(state: OnlineFeatureState, transactions: pd.DataFrame, days: int | None,
            progress: Callable[[int, int], None] | None = None) -> int:
    """Bring an empty state to where the history leaves it: replay the last ``days`` days of
    ``transactions`` (all when None), after seeding it (:meth:`OnlineFeatureState.seed_history`) with
    what the older ones leave behind, then snapshot it.

    A later transaction then gets the features the offline path computes over the whole history, as
    long as ``days`` covers the longest window (90 days). A warm-up cut off by a crash or a kill (the
    store marks it begun, and done once its snapshot is written) is finished by the next call: the
    transactions it counted are not counted again (their rows are stored), the rest are replayed in
    order. Returns the number of transactions counted now (0 when the state was already warmed up or
    holds transactions of its own, as a state from before the mark does).
    """
    if state.processed > 0 and _warm_up_mark(state) != "begun":
        return 0
    if days == 0 or transactions is None or len(transactions) == 0:
        return 0
    _mark_warm_up(state, "begun")  # before the seed: a kill from here on is finished by the next start
    before = state.processed
    txns = ordered_transactions(transactions)
    if days is not None:
        ts = pd.to_datetime(txns["timestamp"], utc=True)
        recent = (ts > ts.max() - pd.Timedelta(days=days)).to_numpy()
        if state.empty:  # a cut-off warm-up's seed is in its snapshot at seq 0 already
            state.seed_history(txns.loc[~recent])
        txns = txns.loc[recent]
    total = len(txns)
    for i, record in enumerate(transaction_records(txns), start=1):
        state.update_vector(record)
        if progress is not None and (i % 2000 == 0 or i == total):
            progress(i, total)
    state.reseat_buffers()
    state.snapshot()
    _mark_warm_up(state, "done")
    return state.processed - before


def replay(state: OnlineFeatureState, transactions: pd.DataFrame) -> np.ndarray:
    """Feed a typed transactions frame through the online state in time order; rows in frame order."""
    out = np.empty((len(transactions), len(FEATURE_NAMES)), dtype=np.float64)
    for i, record in enumerate(transaction_records(transactions)):
        out[i] = state.update_vector(record)
    return out
