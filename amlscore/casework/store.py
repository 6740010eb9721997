"""The casework store: alerts, cases, every action, filings (``<state>/casework.sqlite``, beside the audit log).

* ``alerts``: one row per alerted transaction (its txn_id), from the audit log (online decisions) or
  from batch scoring output; never re-scored: the score, risk level and explanation are the ones the
  decision recorded. Each alert belongs to one case.
* ``cases``: the current state of each case (status, assignee, decision, approval, deadline): a
  projection of its actions, rewritten by each action in the same transaction as the action's row.
* ``actions``: every action on a case, with who (``user:<name>`` and role) and when, in a hash chain
  (``chain_hash = sha256(previous | row)``) like the audit log's tables. Triggers refuse ``UPDATE``
  and any ``DELETE`` not covered by a signed retention cut (:mod:`amlscore.casework.retention`).
* ``filings``: the regulator-format XML of each approved suspicious case (and large-value reports),
  frozen once written.
* ``large_value``: transactions the large-value rules require reporting, with their deadline.
* ``cuts``: signed retention checkpoints (:mod:`amlscore.casework.retention`).

Statuses: ``open`` → ``in_review`` → ``decided`` → ``approved`` → ``filed`` (suspicious) or
``closed`` (not suspicious, closed at approval); a reviewer may send a decided case back to
``in_review``. The rules of each move are in :mod:`amlscore.casework.workflow`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlscore.core.audit import new_ulid, utc_now_iso
from amlscore.storage.private import private_database

STATUSES = ("open", "in_review", "decided", "approved", "filed", "closed")
ACTIVE = ("open", "in_review", "decided", "approved")  # not yet filed or closed: never purged
GENESIS = "0" * 64
ACTION_COLUMNS = ("case_id", "action", "person", "role", "at", "detail_json")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    alert_id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    request_id TEXT,
    customer_id TEXT NOT NULL,
    txn_time TEXT NOT NULL,
    score REAL NOT NULL,
    model_version TEXT,
    risk_level TEXT,
    explanation_json TEXT,
    txn_json TEXT NOT NULL,
    ingested_at TEXT NOT NULL,
    case_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_case ON alerts(case_id);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    first_txn_time TEXT NOT NULL,
    last_txn_time TEXT NOT NULL,
    window_end TEXT NOT NULL,
    status TEXT NOT NULL,
    assignee TEXT,
    decision TEXT,
    reason TEXT,
    typology TEXT,
    narrative TEXT,
    measures TEXT,
    decided_by TEXT,
    decided_at TEXT,
    approved_by TEXT,
    approved_at TEXT,
    filed_at TEXT,
    closed_at TEXT,
    due_date TEXT,
    due_kind TEXT,
    max_score REAL NOT NULL,
    n_alerts INTEGER NOT NULL,
    risk_level TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cases_queue ON cases(status, due_date, max_score);
CREATE INDEX IF NOT EXISTS cases_by_due ON cases(due_date, max_score DESC, case_id, status);
CREATE INDEX IF NOT EXISTS cases_by_score ON cases(max_score DESC, due_date, case_id, status);
CREATE INDEX IF NOT EXISTS cases_customer ON cases(customer_id, status);
CREATE TABLE IF NOT EXISTS actions (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    case_id TEXT NOT NULL,
    action TEXT NOT NULL,
    person TEXT NOT NULL,
    role TEXT NOT NULL,
    at TEXT NOT NULL,
    detail_json TEXT NOT NULL,
    chain_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_case ON actions(case_id, seq);
CREATE TABLE IF NOT EXISTS filings (
    filing_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    case_id TEXT,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    xml BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS filings_case ON filings(case_id);
CREATE TABLE IF NOT EXISTS large_value (
    txn_id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    txn_time TEXT NOT NULL,
    local_date TEXT NOT NULL,
    due_date TEXT NOT NULL,
    txn_json TEXT NOT NULL,
    filing_id TEXT
);
CREATE INDEX IF NOT EXISTS large_value_due ON large_value(filing_id, due_date);
CREATE TABLE IF NOT EXISTS customers (
    customer_id TEXT PRIMARY KEY,
    facts_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest_positions (
    source TEXT PRIMARY KEY,
    position TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cuts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    store TEXT NOT NULL,
    tbl TEXT NOT NULL,
    upto_seq INTEGER NOT NULL,
    rows_removed INTEGER NOT NULL,
    head_at_cut TEXT NOT NULL,
    cutoff TEXT NOT NULL,
    made_at TEXT NOT NULL,
    made_by TEXT NOT NULL,
    signature TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS actions_no_update BEFORE UPDATE ON actions
BEGIN SELECT RAISE(ABORT, 'case actions are append-only: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS actions_no_delete BEFORE DELETE ON actions
WHEN NOT EXISTS (SELECT 1 FROM cuts WHERE store = 'casework' AND tbl = 'actions' AND OLD.seq <= upto_seq)
BEGIN SELECT RAISE(ABORT, 'case actions are append-only: DELETE refused outside a signed retention cut'); END;
CREATE TRIGGER IF NOT EXISTS filings_no_update BEFORE UPDATE ON filings
BEGIN SELECT RAISE(ABORT, 'filings are frozen: UPDATE refused'); END;
CREATE TRIGGER IF NOT EXISTS cuts_no_change BEFORE UPDATE ON cuts
BEGIN SELECT RAISE(ABORT, 'retention cuts are append-only'); END;
CREATE TRIGGER IF NOT EXISTS cuts_no_delete BEFORE DELETE ON cuts
BEGIN SELECT RAISE(ABORT, 'retention cuts are append-only'); END;
"""


def action_digest(prev: str, values: tuple[Any, ...]) -> str:
    """The chain hash of one action row after ``prev`` (same layout as the audit log's rows)."""
    h = hashlib.sha256(prev.encode("ascii"))
    for v in values:
        h.update(b"\x1f")
        h.update(str(v).encode("utf-8"))
    return h.hexdigest()


@dataclass(frozen=True)
class Action:
    """One action on a case, as the history shows it."""

    seq: int
    case_id: str
    action: str
    person: str
    role: str
    at: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class QueueFilter:
    """What the queue shows: statuses, one customer, only overdue, one assignee; sort and page."""

    statuses: tuple[str, ...] = ("open", "in_review", "decided", "approved")
    customer_id: str | None = None
    assignee: str | None = None
    overdue_only: bool = False
    sort: str = "deadline"  # deadline (then score) | score (then deadline)
    limit: int = 50
    offset: int = 0


class CaseStore:
    """The casework database (thread-safe: one connection behind a lock; WAL, ``synchronous=FULL``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = private_database(path)
        self._lock = threading.RLock()
        self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self.db.executescript(_SCHEMA)

    @classmethod
    def in_state(cls, state_dir: str | Path) -> "CaseStore":
        return cls(Path(state_dir) / "casework.sqlite")

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), rolled back on any error."""
        with self._lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    # -- actions (the chain) -------------------------------------------------------------------
    def _head(self, db: sqlite3.Connection) -> str:
        row = db.execute("SELECT chain_hash FROM actions ORDER BY seq DESC LIMIT 1").fetchone()
        if row is not None:
            return str(row[0])
        cut = db.execute("SELECT head_at_cut FROM cuts WHERE store='casework' AND tbl='actions' "
                         "ORDER BY seq DESC LIMIT 1").fetchone()
        return str(cut[0]) if cut else GENESIS

    def append_action(self, db: sqlite3.Connection, case_id: str, action: str, person: str, role: str,
                      detail: dict[str, Any] | None = None, at: str | None = None) -> int:
        """Append one chained action row (inside the caller's transaction); returns its seq."""
        values = (case_id, action, person, role, at or utc_now_iso(),
                  json.dumps(detail or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
        digest = action_digest(self._head(db), values)
        cur = db.execute(f"INSERT INTO actions({','.join(ACTION_COLUMNS)}, chain_hash) VALUES (?,?,?,?,?,?,?)",
                         values + (digest,))
        return int(cur.lastrowid)

    def history(self, case_id: str) -> list[Action]:
        with self._lock:
            rows = self.db.execute("SELECT seq, case_id, action, person, role, at, detail_json FROM actions "
                                   "WHERE case_id = ? ORDER BY seq", (case_id,)).fetchall()
        return [Action(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6])) for r in rows]

    # -- reading ---------------------------------------------------------------------------------
    def case(self, case_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        return dict(row) if row else None

    def alerts_of(self, case_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return case_alerts(self.db, case_id)

    def customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's facts as the data folder held them at ingest (None when not known)."""
        with self._lock:
            row = self.db.execute("SELECT facts_json FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def filing(self, case_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self.db.execute("SELECT * FROM filings WHERE case_id = ? ORDER BY created_at DESC LIMIT 1",
                                  (case_id,)).fetchone()
        return dict(row) if row else None

    def queue(self, f: QueueFilter, today: dt.date) -> tuple[list[dict[str, Any]], int]:
        """One page of cases and how many match; ordered by deadline then score (or score then deadline)."""
        where, args = [], []
        if f.statuses:
            where.append(f"status IN ({','.join('?' * len(f.statuses))})")
            args.extend(f.statuses)
        if f.customer_id:
            where.append("customer_id = ?")
            args.append(f.customer_id)
        if f.assignee:
            where.append("assignee = ?")
            args.append(f.assignee)
        if f.overdue_only:
            where.append("due_date < ?")
            args.append(today.isoformat())
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        # Active cases always have a deadline, so the queue's usual views walk an index in order and stop
        # at the page (no sort of every active case); finished cases (no deadline) go last when shown.
        undated = not set(f.statuses) <= set(ACTIVE)
        if not undated:
            where.append("due_date IS NOT NULL")  # lets the walk start past the finished cases
        if f.sort == "deadline":
            order = ("due_date IS NULL, " if undated else "") + "due_date, max_score DESC"
        else:
            order = "max_score DESC, " + ("due_date IS NULL, " if undated else "") + "due_date"
        columns = ("case_id, customer_id, status, assignee, decision, due_date, due_kind, max_score, n_alerts, "
                   "risk_level, first_txn_time, last_txn_time, decided_by, updated_at")
        # Without a customer or assignee, walk the index in the page's order and stop at the page: SQLite's
        # planner (without ANALYZE statistics) would rather filter by status and sort every active case.
        hint = ""
        if not f.customer_id and not f.assignee and not undated:
            hint = "INDEXED BY cases_by_due" if f.sort == "deadline" else "INDEXED BY cases_by_score"
        with self._lock:
            rows = self.db.execute(f"SELECT {columns} FROM cases {hint} {clause} ORDER BY {order}, case_id "
                                   "LIMIT ? OFFSET ?", (*args, f.limit, f.offset)).fetchall()
            total = int(self.db.execute(f"SELECT COUNT(*) FROM cases {clause}", args).fetchone()[0])
        return [dict(r) for r in rows], total

    def counts(self, today: dt.date) -> dict[str, int]:
        """Cases per status, and how many active cases are overdue."""
        with self._lock:
            out = {s: 0 for s in STATUSES}
            for status, n in self.db.execute("SELECT status, COUNT(*) FROM cases GROUP BY status"):
                out[status] = int(n)
            out["overdue"] = int(self.db.execute(
                f"SELECT COUNT(*) FROM cases WHERE status IN ({','.join('?' * len(ACTIVE))}) AND due_date < ?",
                (*ACTIVE, today.isoformat())).fetchone()[0])
        return out

    def large_value_due(self, limit: int = 50) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute("SELECT txn_id, customer_id, txn_time, local_date, due_date, filing_id "
                                   "FROM large_value WHERE filing_id IS NULL ORDER BY due_date, txn_id LIMIT ?",
                                   (limit,)).fetchall()
        return [dict(r) for r in rows]

    def position(self, source: str) -> str | None:
        with self._lock:
            row = self.db.execute("SELECT position FROM ingest_positions WHERE source = ?", (source,)).fetchone()
        return str(row[0]) if row else None


def case_alerts(db: sqlite3.Connection, case_id: str) -> list[dict[str, Any]]:
    """A case's alerts in transaction time order, each with its transaction and explanation decoded."""
    rows = db.execute("SELECT * FROM alerts WHERE case_id = ? ORDER BY txn_time, alert_id", (case_id,)).fetchall()
    out = []
    for r in rows:
        d = dict(r)
        d["txn"] = json.loads(d.pop("txn_json"))
        d["explanation"] = json.loads(d.pop("explanation_json")) if d["explanation_json"] else None
        out.append(d)
    return out


def new_case_id() -> str:
    return "C" + new_ulid()
