"""The audit log: every decision, written and committed before the response leaves.

An append-only SQLite database (WAL; ``synchronous=FULL`` by default, so a committed decision
survives a power cut, not only a crash). Triggers refuse every ``UPDATE`` and ``DELETE``, and the
code has no path that issues one. Each decision row carries a hash chained to the previous row
(``chain_hash = sha256(previous chain_hash | row content)``), and so does each row of ``explanations``
and ``replays`` (one chain per table), so :func:`verify_chain` detects a row changed or removed behind
the service's back. After each commit the number of rows and the head hash of each table are
written to a checkpoint file apart from the database (``<database stem>.head``, e.g.
``audit.head``), so a tail cut off the database (rows removed from the end, which leaves a valid
chain) shows as well. WAL checkpoints run in a thread of their own
(:class:`amlscore.storage.wal.WalCheckpointer`), never inside the commit that a response waits for.

Tables (see docs/serving.md for every column):

* ``decisions``: one row per scored transaction: request id, txn id, customer, time, caller (key id
  and role), endpoint, the input as received and its hash, the feature row, the full decision
  (scores, components, risk level, rules fired, explanation when computed), model name/version,
  feature-set and configuration hashes;
* ``explanations``: explanations computed after the decision (``/v1/explain`` of a decision scored
  without one), with the model version that made the decision; one per request id and language,
  frozen once written;
* ``replays``: every time a txn_id already decided was sent again, and by whom;
* ``shadow_scores``: the shadow (challenger) model set's score of a decision's feature row, when the
  service runs one (``AML_SHADOW``): request id, txn id, the shadow's model name and version, its
  suspicion score, alert and components, and when it was scored. Never part of any response; read by
  ``amlscore compare``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from amlscore.core.retention import KEY_FILE, Cut, load_key, sign, signature_ok
from amlscore.storage.append_only import append_only_triggers
from amlscore.storage.private import open_private, private_database
from amlscore.storage.wal import WalCheckpointer

log = logging.getLogger(__name__)


def audit_tables_ddl(serial_key: str, blob: str, real: str) -> str:
    """The audit log's tables in a dialect: the auto-numbered key column's definition, the binary and the
    floating-point types (SQLite here, PostgreSQL in :mod:`amlscore.core.audit_pg`)."""
    return f"""
CREATE TABLE IF NOT EXISTS decisions (
    seq {serial_key},
    request_id TEXT NOT NULL UNIQUE,
    txn_id TEXT NOT NULL UNIQUE,
    customer_id TEXT NOT NULL,
    decided_at TEXT NOT NULL,
    caller_key_id TEXT NOT NULL,
    caller_role TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    batch_id TEXT,
    input_hash TEXT NOT NULL,
    input_json TEXT NOT NULL,
    features {blob} NOT NULL,
    suspicion_score {real} NOT NULL,
    alert INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    feature_set_version TEXT,
    feature_params_hash TEXT,
    rules_config_hash TEXT,
    decision_json TEXT NOT NULL,
    chain_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_customer ON decisions(customer_id, decided_at);
CREATE TABLE IF NOT EXISTS explanations (
    seq {serial_key},
    request_id TEXT NOT NULL REFERENCES decisions(request_id),
    lang TEXT NOT NULL,
    computed_at TEXT NOT NULL,
    model_version TEXT NOT NULL,
    explanation_json TEXT NOT NULL,
    chain_hash TEXT,
    UNIQUE(request_id, lang)
);
CREATE TABLE IF NOT EXISTS replays (
    seq {serial_key},
    request_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    at TEXT NOT NULL,
    caller_key_id TEXT NOT NULL,
    caller_role TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    chain_hash TEXT
);
CREATE TABLE IF NOT EXISTS shadow_scores (
    seq {serial_key},
    request_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    suspicion_score {real},
    alert INTEGER NOT NULL,
    components_json TEXT NOT NULL,
    scored_at TEXT NOT NULL,
    chain_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS shadow_scores_request ON shadow_scores(request_id);
"""


_SCHEMA = audit_tables_ddl("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "REAL")
# The chained tables, and the columns each row's hash covers (in order; ``chain_hash`` is the hash itself).
CHAINED: dict[str, tuple[str, ...]] = {
    "decisions": ("request_id", "txn_id", "customer_id", "decided_at", "caller_key_id", "caller_role", "endpoint",
                  "batch_id", "input_hash", "input_json", "features", "suspicion_score", "alert", "model_name",
                  "model_version", "feature_set_version", "feature_params_hash", "rules_config_hash", "decision_json"),
    "explanations": ("request_id", "lang", "computed_at", "model_version", "explanation_json"),
    "replays": ("request_id", "txn_id", "at", "caller_key_id", "caller_role", "endpoint"),
    "shadow_scores": ("request_id", "txn_id", "model_name", "model_version", "suspicion_score", "alert",
                      "components_json", "scored_at"),
}
_KIND_TABLE = {"decisions": "decisions", "explanation": "explanations", "replay": "replays", "shadow": "shadow_scores"}
_RETENTION = """
CREATE TABLE IF NOT EXISTS retention_cuts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl TEXT NOT NULL,
    upto_seq INTEGER NOT NULL,
    rows_removed INTEGER NOT NULL,
    head_at_cut TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    made_at TEXT NOT NULL,
    made_by TEXT NOT NULL,
    signature TEXT NOT NULL
);
""" + append_only_triggers("retention_cuts")
_TABLES = ("decisions", "explanations", "replays", "shadow_scores")
# UPDATE is always refused; DELETE only of rows a signed retention cut covers (amlscore.core.retention).
_APPEND_ONLY = "".join(
    f"CREATE TRIGGER IF NOT EXISTS {t}_no_update BEFORE UPDATE ON {t} "
    f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE on {t} refused'); END;\n"
    for t in _TABLES
) + "".join(
    f"DROP TRIGGER IF EXISTS {t}_no_delete;\n"  # logs from before retention cuts refused every DELETE
    f"CREATE TRIGGER {t}_no_delete BEFORE DELETE ON {t} "
    f"WHEN NOT EXISTS (SELECT 1 FROM retention_cuts WHERE tbl = '{t}' AND OLD.seq <= upto_seq) "
    f"BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE on {t} refused outside a signed "
    f"retention cut'); END;\n"
    for t in _TABLES
)
# The time column of each chained table: what the retention cutoff is compared with.
TIME_COLUMN = {"decisions": "decided_at", "explanations": "computed_at", "replays": "at", "shadow_scores": "scored_at"}
_GENESIS = "0" * 64
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid() -> str:
    """A ULID: 48-bit millisecond time + 80 random bits, 26 Crockford base-32 characters (sorts by time)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def utc_now_iso() -> str:
    """Current UTC time, ISO 8601 with microseconds and ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no spaces (what hashes are computed over); NaN is refused."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_ORJSON_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY  # numpy scalars as json.dumps took them


def stored_json(value: Any) -> str:
    """The JSON text a row keeps (sorted keys, no spaces): :func:`canonical_json`'s layout, written by orjson.

    About ten times cheaper than ``json.dumps`` for a decision (~5 KB). A value JSON cannot hold (a
    set, an object) raises ``TypeError`` at once; NaN and infinity, which the engine never puts
    in a decision (:func:`amlscore.core.decision.json_safe`), would be written as ``null``. The hash chain is
    computed over the text as stored, so rows written by ``json.dumps`` earlier verify as before.
    """
    return orjson.dumps(value, option=_ORJSON_OPTIONS).decode("utf-8")


def input_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a transaction record's canonical JSON: tells a replay from a reused txn_id.

    Stays on ``json.dumps`` (:func:`canonical_json`): a txn_id sent again after an upgrade must hash
    as it did when it was first decided.
    """
    return hashlib.sha256(canonical_json(record).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One decision as the audit log holds it."""

    request_id: str
    txn_id: str
    customer_id: str
    decided_at: str
    caller_key_id: str
    caller_role: str
    endpoint: str
    batch_id: str | None
    input_hash: str
    input: dict[str, Any]
    features: np.ndarray
    suspicion_score: float
    alert: bool
    model_name: str
    model_version: str
    feature_set_version: str | None
    feature_params_hash: str | None
    rules_config_hash: str | None
    decision: dict[str, Any]
    seq: int | None = None
    chain_hash: str | None = None


@dataclass(frozen=True)
class ShadowScore:
    """The shadow model set's score of one decision's feature row (the ``shadow_scores`` table)."""

    request_id: str
    txn_id: str
    model_name: str
    model_version: str
    suspicion_score: float | None
    alert: bool
    components: dict[str, Any]
    scored_at: str


_COLUMNS = ("request_id", "txn_id", "customer_id", "decided_at", "caller_key_id", "caller_role", "endpoint", "batch_id",
            "input_hash", "input_json", "features", "suspicion_score", "alert", "model_name", "model_version",
            "feature_set_version", "feature_params_hash", "rules_config_hash", "decision_json", "chain_hash")


def _row_digest(prev: str, values: tuple[Any, ...]) -> str:
    """A row's chain hash: SHA-256 of its predecessor's hash and of its values (:func:`_row_tail`)."""
    return _chain_digest(prev, _row_tail(values))


def _row_tail(values: tuple[Any, ...]) -> bytes:
    """What a row adds to its predecessor's hash in :func:`_row_digest`: each value after a 0x1f byte."""
    return b"".join(b"\x1f" + (v if isinstance(v, bytes) else str(v).encode("utf-8")) for v in values)


def _chain_digest(prev: str, tail: bytes) -> str:
    return hashlib.sha256(prev.encode("ascii") + tail).hexdigest()


class _Write:
    """One queued write: what to insert, and the future its caller waits on."""

    __slots__ = ("kind", "rows", "records", "future")

    def __init__(self, kind: str, rows: list[tuple[Any, ...]], records: list[AuditRecord] | None = None) -> None:
        self.kind = kind
        self.rows = rows
        self.records = records or []
        self.future: Future = Future()


class GroupCommitLog:
    """What the audit logs (:class:`AuditLog` on SQLite, ``amlscore.core.audit_pg.PostgresAuditLog``)
    share: the write API over queued writes, and one writer thread that commits every write queued
    since its last commit in one transaction, then completes each write's future.

    A subclass opens its store (a reading connection ``_read`` used under ``_lock``), calls
    :meth:`_init_writes`, and implements ``_commit(group)`` (write the group's rows in one transaction,
    completing each with :meth:`_finish`) and ``count``; ``_P`` is its driver's placeholder, and
    :meth:`_txn_ids_clause` its way of matching a list of txn_ids.
    """

    _WRITER_NAME = "audit-writer"
    _P = "?"

    def _init_writes(self) -> None:
        self._queue: list[_Write] = []
        self._cond = threading.Condition(threading.Lock())
        self._pending: dict[str, tuple[AuditRecord, Future]] = {}  # txn_id -> submitted, not yet committed
        self._pending_requests: dict[str, AuditRecord] = {}
        self._writer: threading.Thread | None = None
        self._closing = False
        self._failed: BaseException | None = None
        self.commits = 0  # transactions committed (decisions per commit = decisions / commits)
        # called by the writer thread after each commit with its duration in seconds (the fsync
        # included) and the writes it held: the service exports them, so a slow disk shows as slow commits
        self.on_commit: Callable[[float, int], None] | None = None

    def _commit(self, group: list[_Write]) -> None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def _retry_one_by_one(self, group: list[_Write], exc: BaseException) -> None:
        """After a group's commit failed: each write alone, so one bad write (a txn_id recorded before)
        fails only its own future."""
        if len(group) > 1:
            for write in group:
                self._commit([write])
        else:
            self._finish(group[0], None, exc)

    def _stop_writer(self) -> None:
        """Let the writer commit what is queued, then wait for it to end."""
        with self._cond:
            self._closing = True
            writer = self._writer
            self._cond.notify_all()
        if writer is not None:
            writer.join()

    # -- reading --------------------------------------------------------------------------------
    def _rows(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._read.execute(sql, params).fetchall()

    def _txn_ids_clause(self, ids: list[str]) -> tuple[str, Sequence[Any]]:
        """``(WHERE clause, parameters)`` matching any of ``ids``."""
        return f"txn_id IN ({','.join(self._P * len(ids))})", ids

    def _one(self, where: str, value: str) -> AuditRecord | None:
        rows = self._rows(f"SELECT seq, {','.join(_COLUMNS)} FROM decisions WHERE {where} = {self._P}", (value,))
        return record_from_row(rows[0] if rows else None)

    def by_txn(self, txn_id: str) -> AuditRecord | None:
        """The decision recorded (or being committed) for a txn_id, or None."""
        with self._cond:
            item = self._pending.get(txn_id)
        if item is not None:
            return item[0]
        if self._surely_absent(txn_id):
            return None
        return self._one("txn_id", txn_id)

    def _surely_absent(self, txn_id: str) -> bool:
        """True when a cheaper query than :meth:`_one` tells that ``txn_id`` has no decision (every new
        transaction asks); False when it has one or that query could not answer (then :meth:`_one` does)."""
        return False

    def by_txns(self, txn_ids: list[str]) -> dict[str, AuditRecord]:
        """The decisions recorded (or being committed) for any of ``txn_ids`` (one query per 500 ids), by txn_id."""
        out: dict[str, AuditRecord] = {}
        with self._cond:
            for t in txn_ids:
                if t in self._pending:
                    out[t] = self._pending[t][0]
        ids = [t for t in dict.fromkeys(txn_ids) if t not in out]
        for start in range(0, len(ids), 500):
            where, params = self._txn_ids_clause(ids[start:start + 500])
            for row in self._rows(f"SELECT seq, {','.join(_COLUMNS)} FROM decisions WHERE {where}", params):
                rec = record_from_row(row)
                assert rec is not None
                out.setdefault(rec.txn_id, rec)
        return out

    def by_request(self, request_id: str) -> AuditRecord | None:
        """The decision recorded (or being committed) under a request id, or None."""
        with self._cond:
            rec = self._pending_requests.get(request_id)
        return rec if rec is not None else self._one("request_id", request_id)

    def explanation(self, request_id: str, lang: str) -> dict[str, Any] | None:
        """A frozen deferred explanation: ``{computed_at, model_version, explanation}``, or None."""
        rows = self._rows("SELECT computed_at, model_version, explanation_json FROM explanations "
                          f"WHERE request_id = {self._P} AND lang = {self._P}", (request_id, lang))
        if not rows:
            return None
        return {"computed_at": rows[0][0], "model_version": rows[0][1], "explanation": orjson.loads(rows[0][2])}

    def replay_count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM replays", ())[0][0])

    def shadow_count(self) -> int:
        """Shadow scores in the log."""
        return int(self._rows("SELECT COUNT(*) FROM shadow_scores", ())[0][0])

    def iter_records(self, after_seq: int = 0) -> Iterator[AuditRecord]:
        """Every decision after ``after_seq``, in order (for reports and checks)."""
        last = after_seq
        while True:
            rows = self._rows(f"SELECT seq, {','.join(_COLUMNS)} FROM decisions WHERE seq > {self._P} ORDER BY seq "
                              "LIMIT 1000", (last,))
            if not rows:
                return
            for row in rows:
                rec = record_from_row(row)
                assert rec is not None and rec.seq is not None
                last = rec.seq
                yield rec

    # -- writing --------------------------------------------------------------------------------
    def submit(self, records: Iterable[AuditRecord]) -> Future:
        """Queue decisions for the next commit; returns a future done (with their number) once they are durable.

        The decisions are serialised here (a value JSON cannot hold raises at once) and readable at
        once; the future raises what the commit raised (e.g. ``sqlite3.IntegrityError`` for a txn_id
        or request id already recorded), and the decisions are then not in the log.
        """
        records = list(records)
        rows = [(r.request_id, r.txn_id, r.customer_id, r.decided_at, r.caller_key_id, r.caller_role, r.endpoint,
                 r.batch_id, r.input_hash, stored_json(r.input),
                 np.ascontiguousarray(r.features, dtype=np.float64).tobytes(), float(r.suspicion_score),
                 int(bool(r.alert)), r.model_name, r.model_version, r.feature_set_version,
                 r.feature_params_hash, r.rules_config_hash, stored_json(r.decision)) for r in records]
        if not rows:
            done: Future = Future()
            done.set_result(0)
            return done
        return self._enqueue(_Write("decisions", rows, records))

    def append(self, records: Iterable[AuditRecord]) -> int:
        """Write decisions in one transaction and commit (durably) before returning; returns how many."""
        return int(self.submit(records).result())

    def durable(self, txn_id: str) -> Future | None:
        """The future of the commit that will hold ``txn_id``'s decision, or None when it is committed (or unknown)."""
        with self._cond:
            item = self._pending.get(txn_id)
        return item[1] if item is not None else None

    def append_explanation(self, request_id: str, lang: str, model_version: str, explanation: dict[str, Any]) -> dict[str, Any]:
        """Freeze an explanation computed after the decision; the first one written for (request id, lang) wins."""
        row = (request_id, lang, utc_now_iso(), model_version, stored_json(explanation))
        self._enqueue(_Write("explanation", [row])).result()
        stored = self.explanation(request_id, lang)
        assert stored is not None
        return stored

    def submit_replay(self, request_id: str, txn_id: str, caller_key_id: str, caller_role: str, endpoint: str) -> Future:
        """Queue the note that a decided txn_id was sent again (the original decision was returned)."""
        row = (request_id, txn_id, utc_now_iso(), caller_key_id, caller_role, endpoint)
        return self._enqueue(_Write("replay", [row]))

    def append_replay(self, request_id: str, txn_id: str, caller_key_id: str, caller_role: str, endpoint: str) -> None:
        """Note that a decided txn_id was sent again, durably before returning."""
        self.submit_replay(request_id, txn_id, caller_key_id, caller_role, endpoint).result()

    def submit_shadow(self, scores: Iterable[ShadowScore]) -> Future:
        """Queue shadow scores for the next commit (their own chained table); the future is done once they are durable.

        Nobody waits on it on the response path: the shadow worker submits these after the champion's
        decisions are answered.
        """
        rows = [(s.request_id, s.txn_id, s.model_name, s.model_version, s.suspicion_score, int(bool(s.alert)),
                 stored_json(s.components), s.scored_at) for s in scores]
        if not rows:
            done: Future = Future()
            done.set_result(0)
            return done
        return self._enqueue(_Write("shadow", rows))

    def _enqueue(self, write: _Write) -> Future:
        with self._cond:
            if self._failed is not None:
                raise RuntimeError(f"the audit log writer stopped: {self._failed!r}")
            if self._closing:
                raise RuntimeError("the audit log is closed")
            for rec in write.records:
                self._pending[rec.txn_id] = (rec, write.future)
                self._pending_requests[rec.request_id] = rec
            self._queue.append(write)
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name=self._WRITER_NAME, daemon=True)
                self._writer.start()
            self._cond.notify()
        return write.future

    def _write_loop(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if not self._queue:
                        return
                    group, self._queue = self._queue, []
                self._commit(group)
        except BaseException as exc:  # pragma: no cover - a bug: fail every waiting caller rather than hang them
            with self._cond:
                self._failed = exc
                group, self._queue = self._queue, []
            for write in group:
                self._finish(write, None, exc)
            raise

    def _finish(self, write: _Write, result: Any, exc: BaseException | None) -> None:
        with self._cond:
            for rec in write.records:
                if self._pending.get(rec.txn_id, (None, None))[1] is write.future:
                    del self._pending[rec.txn_id]
                    self._pending_requests.pop(rec.request_id, None)
        if exc is not None:
            write.future.set_exception(exc)
        else:
            write.future.set_result(result)



def record_from_row(row: tuple[Any, ...] | None) -> AuditRecord | None:
    """An :class:`AuditRecord` from a ``decisions`` row (``seq``, the columns, ``chain_hash``), as both stores read it."""
    if row is None:
        return None
    (seq, request_id, txn_id, customer_id, decided_at, key_id, role, endpoint, batch_id, ihash, input_json, feats,
     score, alert, model_name, model_version, fset, fparams, rules_hash, decision_json, chain) = row
    return AuditRecord(request_id=request_id, txn_id=txn_id, customer_id=customer_id, decided_at=decided_at,
                       caller_key_id=key_id, caller_role=role, endpoint=endpoint, batch_id=batch_id,
                       input_hash=ihash, input=orjson.loads(input_json),
                       features=np.frombuffer(bytes(feats), dtype=np.float64).copy(), suspicion_score=float(score),
                       alert=bool(alert), model_name=model_name, model_version=model_version,
                       feature_set_version=fset, feature_params_hash=fparams, rules_config_hash=rules_hash,
                       decision=orjson.loads(decision_json), seq=int(seq), chain_hash=chain)


class AuditLog(GroupCommitLog):
    """Append-only decision log in SQLite (thread-safe), with group commit.

    Every write goes through one writer thread that owns the writing connection: it takes all the
    writes queued since its last commit, inserts them in one transaction and commits (with an fsync
    under ``sync="full"``), then completes each write's future. :meth:`submit` returns that future
    at once (the service's event loop awaits it and scores the next request meanwhile);
    :meth:`append` waits for it. **A write's future completes only once its rows are committed**,
    so a response sent after it never names a decision a crash could lose. Queued decisions are
    visible to the readers (:meth:`by_txn`, :meth:`by_txns`, :meth:`by_request`) from the moment they
    are submitted, so a replay of a transaction whose decision is still being committed finds it
    (and waits for the same commit, :meth:`durable`). Reads use their own connection (WAL: readers
    never wait for a commit). The writer thread starts at the first write; a log opened only to
    read (reports) has none.

    Parameters
    ----------
    path : path of the database file (created with its folder).
    sync : ``"full"`` (fsync at every commit, survives a power cut) or ``"normal"`` (survives a crash
        of the process, not of the machine).
    """

    def __init__(self, path: str | Path, sync: str = "full") -> None:
        if sync not in ("full", "normal"):
            raise ValueError(f"The 'sync' parameter of AuditLog must be one of full, normal. Got {sync!r} instead.")
        self.path = private_database(path)  # owner-only, as its -wal and -shm files
        self._lock = threading.Lock()  # the reading connection
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        # No checkpoint inside a commit: responses wait for their commit, so a checkpoint there (copying
        # the WAL into the database, with fsyncs) would hold up every response queued behind it.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(_SCHEMA + _RETENTION + _APPEND_ONLY)
        _add_chain_columns(self._db)
        self.head_path = head_path_of(self.path)
        self._heads = {table: _table_head(self._db, table) for table in CHAINED}  # table -> (rows, head hash)
        self._read = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._init_writes()
        self._write_lock = threading.Lock()  # held by the writer thread while it commits
        # small, frequent checkpoints: a large one's fsync held up the commits (and so the responses) behind it
        self._wal = WalCheckpointer(self.path, sync.upper(), self._write_lock, every=100, max_pages=2000)
        try:
            os.chmod(self.path, 0o600)
        except OSError:  # pragma: no cover - e.g. a read-only mount; the database still works
            pass

    _INSERT = {
        "decisions": f"INSERT INTO decisions({','.join(_COLUMNS)}) VALUES ({','.join('?' * len(_COLUMNS))})",
        "explanation": "INSERT OR IGNORE INTO explanations(request_id, lang, computed_at, model_version, explanation_json, "
                       "chain_hash) VALUES (?, ?, ?, ?, ?, ?)",
        "replay": "INSERT INTO replays(request_id, txn_id, at, caller_key_id, caller_role, endpoint, chain_hash) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?)",
        "shadow": "INSERT INTO shadow_scores(request_id, txn_id, model_name, model_version, suspicion_score, alert, "
                  "components_json, scored_at, chain_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    }

    def _insert_chained(self, write: _Write, heads: dict[str, tuple[int, str]]) -> None:
        """Insert one write's rows, each with its chain hash, and move that table's head in ``heads``."""
        table = _KIND_TABLE[write.kind]
        count, prev = heads[table]
        if write.kind == "explanation":  # INSERT OR IGNORE: only a row actually written moves the chain
            for values in write.rows:
                digest = _row_digest(prev, values)
                if self._db.execute(self._INSERT[write.kind], values + (digest,)).rowcount == 1:
                    count, prev = count + 1, digest
        else:
            chained = []
            for values in write.rows:
                prev = _row_digest(prev, values)
                chained.append(values + (prev,))
            self._db.executemany(self._INSERT[write.kind], chained)
            count += len(chained)
        heads[table] = (count, prev)

    def _write_head(self) -> None:
        """Write the checkpoint file (rows and head hash of each table), replacing it atomically."""
        doc = {"written_at": utc_now_iso(), "database": self.path.name,
               "tables": {t: {"rows": n, "head": h} for t, (n, h) in self._heads.items()}}
        tmp = self.head_path.with_name(self.head_path.name + ".tmp")
        try:
            with os.fdopen(open_private(tmp), "w", encoding="utf-8") as fh:
                fh.write(json.dumps(doc, sort_keys=True) + "\n")
            os.replace(tmp, self.head_path)
        except OSError as exc:  # the decisions are committed; only the tail check is behind until the next commit
            log.error("cannot write the audit checkpoint %s: %s", self.head_path, exc)

    def _commit(self, group: list[_Write]) -> None:
        """Insert a group of writes in one transaction; if it fails, each write alone (only the bad one fails)."""
        heads = dict(self._heads)
        started = time.perf_counter()
        try:
            with self._write_lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    for write in group:
                        self._insert_chained(write, heads)
                    self._db.execute("COMMIT")
                except BaseException:
                    if self._db.in_transaction:
                        self._db.execute("ROLLBACK")
                    raise
            self._wal.wrote(len(group))
        except Exception as exc:
            self._retry_one_by_one(group, exc)
            return
        self._heads = heads
        self._write_head()
        self.commits += 1
        if self.on_commit is not None:
            try:
                self.on_commit(time.perf_counter() - started, len(group))
            except Exception:  # pragma: no cover - a broken exporter must not fail decisions already durable
                log.exception("the audit log's commit observer failed")
        for write in group:
            self._finish(write, len(write.rows) if write.kind in ("decisions", "shadow") else None, None)

    # -- reading --------------------------------------------------------------------------------
    def count(self) -> int:
        """Decisions in the log (the highest seq: rows are never deleted, so no table scan is needed)."""
        with self._lock:
            return int(self._read.execute("SELECT COALESCE(MAX(seq), 0) FROM decisions").fetchone()[0])

    def verify(self) -> tuple[bool, int, int | None]:
        """Recompute the hash chain: ``(intact, rows checked, seq of the first bad row or None)``."""
        prev = _GENESIS
        n = 0
        last = 0
        while True:
            with self._lock:
                rows = self._read.execute(f"SELECT seq, {','.join(_COLUMNS)} FROM decisions WHERE seq > ? ORDER BY seq "
                                        "LIMIT 1000", (last,)).fetchall()
            if not rows:
                return True, n, None
            for row in rows:
                seq, values, chain = row[0], tuple(row[1:-1]), row[-1]
                values = values[:12] + (int(values[12]),) + values[13:]
                prev = _row_digest(prev, values)
                if prev != chain:
                    return False, n, int(seq)
                n += 1
                last = seq

    def verify_all(self) -> "ChainReport":
        """:func:`verify_chain` of this log and its checkpoint file (every chained table, the cut tail)."""
        return verify_chain(self.path, self.head_path)

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the connections."""
        self._stop_writer()
        self._wal.stop()
        with self._lock:
            self._read.close()
            if self._wal.thread is not None:  # a log that was written: copy the WAL in and truncate it
                try:
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                except sqlite3.Error as exc:  # closing is what matters; the WAL is replayed at the next open
                    log.warning("final WAL checkpoint of %s failed: %s", self.path, exc)
            self._db.close()


# -- the chain of every table, and the checkpoint file --------------------------------------------------
def head_path_of(database: str | Path) -> Path:
    """The checkpoint file kept beside a log's database: ``<state>/audit.head`` for ``<state>/audit.sqlite``."""
    database = Path(database)
    return database.with_name(database.stem + ".head")


def _add_chain_columns(db: sqlite3.Connection) -> None:
    """Give ``explanations`` and ``replays`` of a log written before they were chained their ``chain_hash``
    column (rows written before stay without one: :func:`verify_chain` counts them as unchained)."""
    for table in ("explanations", "replays"):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if "chain_hash" not in columns:
            db.execute(f"ALTER TABLE {table} ADD COLUMN chain_hash TEXT")


def _table_head(db: sqlite3.Connection, table: str) -> tuple[int, str]:
    """(rows ever written, hash of the last chained row) of a table, as the chain goes on from it.

    Rows removed by a retention cut count as written (the checkpoint file's count never goes back),
    and an emptied table's chain goes on from the cut's head.
    """
    cut = latest_cuts(db).get(table)
    rows = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]) + (cut.rows_removed if cut else 0)
    last = db.execute(f"SELECT chain_hash FROM {table} WHERE chain_hash IS NOT NULL ORDER BY seq DESC LIMIT 1").fetchone()
    return rows, (last[0] if last else (cut.head_at_cut if cut else _GENESIS))


def latest_cuts(db: sqlite3.Connection) -> dict[str, Cut]:
    """The newest retention cut of each table of an audit database (none before any purge)."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='retention_cuts'").fetchone():
        return {}
    out: dict[str, Cut] = {}
    for row in db.execute("SELECT tbl, upto_seq, rows_removed, head_at_cut, cutoff, made_at, made_by, signature "
                          "FROM retention_cuts ORDER BY seq"):
        out[row[0]] = Cut(row[0], int(row[1]), int(row[2]), row[3], row[4], row[5], row[6], row[7])
    return out


def all_cuts(db: sqlite3.Connection) -> list[Cut]:
    if not db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='retention_cuts'").fetchone():
        return []
    return [Cut(r[0], int(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in db.execute(
        "SELECT tbl, upto_seq, rows_removed, head_at_cut, cutoff, made_at, made_by, signature FROM retention_cuts "
        "ORDER BY seq")]


@dataclass(frozen=True)
class ChainBreak:
    """The first broken link: the table, the row's ``seq`` (None for a missing tail) and what is wrong."""

    table: str
    seq: int | None
    reason: str


@dataclass(frozen=True)
class ChainReport:
    """What :func:`verify_chain` found: rows checked per table, rows written before chaining, the break."""

    rows: dict[str, int]
    unchained: dict[str, int]
    checkpoint: Path | None
    broken: ChainBreak | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def _chain_rows(db: sqlite3.Connection, table: str) -> Iterator[tuple[int, tuple[Any, ...], str | None]]:
    columns = CHAINED[table]
    last = 0
    while True:
        rows = db.execute(f"SELECT seq, {','.join(columns)}, chain_hash FROM {table} WHERE seq > ? ORDER BY seq "
                          "LIMIT 1000", (last,)).fetchall()
        if not rows:
            return
        for row in rows:
            last = int(row[0])
            yield last, tuple(row[1:-1]), row[-1]


def _verify_table(db: sqlite3.Connection, table: str,
                  head: tuple[int, str] | None, cut: Cut | None = None) -> tuple[int, int, ChainBreak | None]:
    """(rows, unchained rows, first break) of one table, checked against its checkpoint ``(rows, head)``.

    After a retention cut the chain starts at the cut's head, and the rows it removed count as checked.
    """
    prev, n, unchained, base = _GENESIS, 0, 0, 0
    if cut is not None:
        prev, n, base = cut.head_at_cut, cut.rows_removed, cut.rows_removed
        early = db.execute(f"SELECT MIN(seq) FROM {table} WHERE seq <= ?", (cut.upto_seq,)).fetchone()[0]
        if early is not None:
            return n, unchained, ChainBreak(table, int(early), "a row the retention cut removed is present again")
    for seq, values, chain in _chain_rows(db, table):
        if chain is None:
            if n - base > unchained:  # only rows from before chaining, at the start, may lack a hash
                return n, unchained, ChainBreak(table, seq, "the row has no chain hash after chained rows")
            unchained += 1
        else:
            prev = _row_digest(prev, values)
            if prev != chain:
                return n, unchained, ChainBreak(table, seq, "the row's content or its predecessor changed "
                                                            "(the chain hash does not match)")
        n += 1
        if head is not None and n == head[0] and prev != head[1] and chain is not None:
            return n, unchained, ChainBreak(table, seq, "the row the checkpoint ends at does not carry the "
                                                        "checkpoint's head hash")
    if head is not None and n < head[0]:
        return n, unchained, ChainBreak(table, None, f"the table has {n} rows but the checkpoint recorded {head[0]}: "
                                                     f"rows {n + 1} to {head[0]} were removed from its end")
    return n, unchained, None


def _read_checkpoint(path: Path) -> dict[str, tuple[int, str]]:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return {t: (int(v["rows"]), str(v["head"])) for t, v in doc["tables"].items()}


def verify_chain(database: str | Path, checkpoint: str | Path | None = None,
                 key: str | Path | None = None) -> ChainReport:
    """Check the hash chain of every table of an audit database, end to end, without writing anything.

    ``checkpoint`` (default :func:`head_path_of` the database, when it exists) is the file the log
    writes after each commit; a table with fewer rows than it recorded, or whose row at that count
    does not carry its head hash, is broken (a cut tail). Rows committed after the checkpoint was
    written (a crash in between) are accepted when their chain holds. After a retention purge each
    table's chain starts at its newest signed cut, whose signature is checked with ``key`` (default
    ``retention.key`` beside the database; :mod:`amlscore.core.retention`).

    Raises
    ------
    FileNotFoundError
        When the database does not exist.
    """
    database = Path(database)
    if not database.is_file():
        raise FileNotFoundError(f"no audit database at {database}")
    head_file = Path(checkpoint) if checkpoint is not None else head_path_of(database)
    rows: dict[str, int] = {}
    unchained: dict[str, int] = {}
    heads: dict[str, tuple[int, str]] = {}
    broken: ChainBreak | None = None
    if head_file.exists():
        try:
            heads = _read_checkpoint(head_file)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            broken = ChainBreak("checkpoint", None, f"the checkpoint file {head_file} is unreadable ({exc})")
    db = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        cuts = latest_cuts(db)
        if cuts and broken is None:
            key_file = Path(key) if key is not None else database.with_name(KEY_FILE)
            secret = load_key(key_file)
            for c in all_cuts(db):
                if secret is None:
                    broken = ChainBreak(c.table, None, f"the log was purged but the retention key {key_file} is "
                                                       "missing: the cut's signature cannot be checked")
                    break
                if not signature_ok(secret, "audit", c):
                    broken = ChainBreak(c.table, None, f"the retention cut at seq {c.upto_seq} (made {c.made_at} by "
                                                       f"{c.made_by}) does not carry a valid signature")
                    break
        for table in CHAINED:
            if table not in tables:
                rows[table] = unchained[table] = 0
                continue
            columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
            if "chain_hash" not in columns:  # a log from before this table was chained: nothing to check
                count = int(db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])
                rows[table] = unchained[table] = count
                continue
            n, legacy, found = _verify_table(db, table, heads.get(table), cuts.get(table))
            rows[table], unchained[table] = n, legacy
            if broken is None and found is not None:
                broken = found
    finally:
        db.close()
    return ChainReport(rows=rows, unchained=unchained, checkpoint=head_file if head_file.exists() else None,
                       broken=broken)


# -- retention ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PurgeResult:
    """Rows removed per table by one purge, and the cuts written."""

    removed: dict[str, int]
    cuts: list[Cut]


def purge_before(database: str | Path, cutoff: str, key: bytes, made_by: str,
                 protected_txn_ids: frozenset[str] = frozenset()) -> PurgeResult:
    """Remove, from each chained table, the oldest rows dated before ``cutoff`` behind a signed cut.

    Only a prefix of each table (by ``seq``) is removed: the rows from the first one up to, not
    including, the first row dated at or after ``cutoff`` or naming a transaction in
    ``protected_txn_ids`` (a case still kept). The cut (table, last removed seq, rows removed so far,
    chain hash at the cut, cutoff, who, when) is signed with ``key`` and written in the same
    transaction as the deletion, so :func:`verify_chain` goes on verifying from it.
    """
    database = Path(database)
    db = sqlite3.connect(str(database), isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=10000")
        db.executescript(_SCHEMA + _RETENTION + _APPEND_ONLY)
        _add_chain_columns(db)
        db.execute("BEGIN IMMEDIATE")
        removed: dict[str, int] = {}
        cuts: list[Cut] = []
        try:
            previous = latest_cuts(db)
            protected_requests: set[str] = set()
            if protected_txn_ids:
                ids = list(protected_txn_ids)
                for start in range(0, len(ids), 500):
                    part = ids[start:start + 500]
                    protected_requests.update(r[0] for r in db.execute(
                        f"SELECT request_id FROM decisions WHERE txn_id IN ({','.join('?' * len(part))})", part))
            for table in _TABLES:
                time_col = TIME_COLUMN[table]
                key_col = "request_id" if table == "explanations" else "txn_id"
                guard = protected_requests if table == "explanations" else protected_txn_ids
                last_seq, last_head, count = None, None, 0
                for seq, when, ident, chain in db.execute(
                        f"SELECT seq, {time_col}, {key_col}, chain_hash FROM {table} ORDER BY seq"):
                    if str(when) >= cutoff or ident in guard:
                        break
                    last_seq, count = int(seq), count + 1
                    if chain is not None:
                        last_head = chain
                if last_seq is None:
                    continue
                before = previous.get(table)
                head = last_head or (before.head_at_cut if before else _GENESIS)
                made_at = utc_now_iso()
                unsigned = Cut(table, last_seq, (before.rows_removed if before else 0) + count, head, cutoff,
                               made_at, made_by, "")
                cut = Cut(**{**unsigned.__dict__, "signature": sign(key, "audit", unsigned)})
                db.execute("INSERT INTO retention_cuts(tbl, upto_seq, rows_removed, head_at_cut, cutoff, made_at, "
                           "made_by, signature) VALUES (?,?,?,?,?,?,?,?)",
                           (cut.table, cut.upto_seq, cut.rows_removed, cut.head_at_cut, cut.cutoff, cut.made_at,
                            cut.made_by, cut.signature))
                db.execute(f"DELETE FROM {table} WHERE seq <= ?", (last_seq,))
                removed[table] = count
                cuts.append(cut)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")  # removed rows must not linger in free pages
    finally:
        db.close()
    return PurgeResult(removed, cuts)
