"""Analysts' dispositions of alerts, kept durably and exported in the contract's reports format.

Each disposition is one row in an append-only SQLite table (``<state>/feedback.sqlite``). After each
one the export files are rewritten atomically:

* ``<state>/feedback/feedback_reports.csv``: the contract's ``reports`` columns (report_id,
  customer_id, txn_id, period_start, period_end, report_date, label, typology), the latest
  disposition per transaction (an analyst may revise one; the history stays in the database);
  ``amlscore train --feedback FILE`` reads it;
* ``<state>/feedback/feedback_transactions.csv``: the reported transactions in the contract's
  ``transactions`` columns, as they were scored: transactions that arrived through the service are
  not in the data folder, and a report's txn_id must name a transaction of the training data.

A report's period is the transaction's day on the bank clock; its report date is the day it was
recorded (or the one given), never before that day.

The same database keeps the customers' **rating changes** (``rating_changes``, append-only too):
each customer added or changed while serving, with its rating before and after and who sent the
change, so a customer's rating history outlives a restart (the ratings themselves are computed
again at each start from the data folder).
"""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from amlscore.contract.schema import REPORTS, TRANSACTIONS
from amlscore.core.audit import new_ulid, utc_now_iso
from amlscore.storage.append_only import append_only_triggers
from amlscore.storage.private import open_private, private_database, private_dir

REPORT_COLUMNS: tuple[str, ...] = REPORTS.column_names
TRANSACTION_COLUMNS: tuple[str, ...] = TRANSACTIONS.column_names
EXPORT_NAME = "feedback_reports.csv"
TRANSACTIONS_EXPORT_NAME = "feedback_transactions.csv"


def feedback_ddl(serial_key: str, real: str) -> str:
    """The ``feedback`` table in a dialect: its auto-numbered key column's definition and floating-point type."""
    return f"""
CREATE TABLE IF NOT EXISTS feedback (
    seq {serial_key},
    report_id TEXT NOT NULL UNIQUE,
    request_id TEXT NOT NULL,
    txn_id TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end TEXT NOT NULL,
    report_date TEXT NOT NULL,
    label TEXT NOT NULL,
    typology TEXT,
    analyst TEXT,
    note TEXT,
    caller_key_id TEXT NOT NULL,
    caller_role TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    decision_model_version TEXT NOT NULL,
    decision_alert INTEGER NOT NULL,
    decision_score {real} NOT NULL,
    transaction_json TEXT NOT NULL
);
"""


def rating_changes_ddl(serial: str) -> str:
    """The ``rating_changes`` table in a dialect: ``serial`` is its auto-numbered key column's type."""
    return f"""
CREATE TABLE IF NOT EXISTS rating_changes (
    seq {serial} PRIMARY KEY,
    customer_id TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    caller_key_id TEXT NOT NULL,
    caller_role TEXT NOT NULL,
    before_json TEXT,
    after_json TEXT
);
CREATE INDEX IF NOT EXISTS rating_changes_customer ON rating_changes(customer_id, seq);
"""


RATING_CHANGE_COLUMNS = ("customer_id", "recorded_at", "caller_key_id", "caller_role", "before_json", "after_json")


@dataclass(frozen=True)
class FeedbackEntry:
    """One disposition, as stored."""

    report_id: str
    request_id: str
    txn_id: str
    customer_id: str
    period_start: str
    period_end: str
    report_date: str
    label: str
    typology: str | None
    analyst: str | None
    note: str | None
    caller_key_id: str
    caller_role: str
    recorded_at: str
    decision_model_version: str
    decision_alert: bool
    decision_score: float
    transaction_json: str


@dataclass(frozen=True)
class RatingChange:
    """A customer added or changed while serving: its rating summary before (None: new or unrated) and
    after (None: not rated, e.g. onboarded after the rating date), and who sent the change."""

    customer_id: str
    recorded_at: str
    caller_key_id: str
    caller_role: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    def row(self) -> tuple[Any, ...]:
        return (self.customer_id, self.recorded_at, self.caller_key_id, self.caller_role, _dump(self.before),
                _dump(self.after))

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> "RatingChange":
        cid, at, key, role, before, after = row
        return cls(str(cid), str(at), str(key), str(role), _load(before), _load(after))


def _dump(value: dict[str, Any] | None) -> str | None:
    """Strict JSON (a NaN raises ValueError), so every stored summary reads back."""
    return None if value is None else json.dumps(value, ensure_ascii=False, sort_keys=True, allow_nan=False)


def _load(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


class FeedbackStore:
    """Durable dispositions plus their export in the reports format, and the customers' rating changes."""

    _PLACEHOLDER = "?"

    def __init__(self, db_path: str | Path, export_dir: str | Path) -> None:
        self.db_path = private_database(db_path)  # owner-only, as its -wal and -shm files
        self.export_dir = private_dir(export_dir)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.db_path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(feedback_ddl("INTEGER PRIMARY KEY AUTOINCREMENT", "REAL") + rating_changes_ddl("INTEGER")
                               + append_only_triggers("feedback") + append_only_triggers("rating_changes"))

    @property
    def export_file(self) -> Path:
        return self.export_dir / EXPORT_NAME

    @staticmethod
    def new_report_id() -> str:
        return f"FB{new_ulid()}"

    def record(self, entry: FeedbackEntry) -> None:
        """Store one disposition (committed) and rewrite the export files."""
        cols = list(FeedbackEntry.__dataclass_fields__)
        values = [getattr(entry, c) for c in cols]
        values[cols.index("decision_alert")] = int(entry.decision_alert)
        with self._lock:
            marks = ",".join([self._PLACEHOLDER] * len(cols))
            self._db.execute(f"INSERT INTO feedback({','.join(cols)}) VALUES ({marks})", values)
            self._export_locked()

    def latest_frame(self) -> pd.DataFrame:
        """The latest disposition per transaction, every stored column."""
        with self._lock:
            return self._latest_locked()

    def _latest_locked(self) -> pd.DataFrame:
        cols = list(FeedbackEntry.__dataclass_fields__)
        rows = self._db.execute(
            f"SELECT {','.join(cols)} FROM feedback WHERE seq IN (SELECT MAX(seq) FROM feedback GROUP BY txn_id) ORDER BY seq"
        ).fetchall()
        return pd.DataFrame(rows, columns=cols)

    def reports_frame(self) -> pd.DataFrame:
        """The latest dispositions in the contract's reports columns (typed like the loader's frames)."""
        latest = self.latest_frame()
        out = latest.reindex(columns=list(REPORT_COLUMNS))
        for c in ("period_start", "period_end", "report_date"):
            out[c] = pd.to_datetime(out[c], format="%Y-%m-%d")
        return out

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0])

    def record_rating_changes(self, changes: list[RatingChange]) -> None:
        """Store rating changes, committed together (one upsert's customers)."""
        if not changes:
            return
        marks = ",".join([self._PLACEHOLDER] * len(RATING_CHANGE_COLUMNS))
        sql = f"INSERT INTO rating_changes({','.join(RATING_CHANGE_COLUMNS)}) VALUES ({marks})"
        with self._lock, self._transaction():
            for change in changes:
                self._db.execute(sql, change.row())

    def rating_changes(self, customer_id: str) -> list[RatingChange]:
        """A customer's rating changes, oldest first."""
        sql = (f"SELECT {','.join(RATING_CHANGE_COLUMNS)} FROM rating_changes WHERE customer_id = {self._PLACEHOLDER} "
               "ORDER BY seq")
        with self._lock:
            return [RatingChange.from_row(tuple(r)) for r in self._db.execute(sql, (customer_id,)).fetchall()]

    def _transaction(self) -> Any:
        return _SQLiteTransaction(self._db)

    def _export_locked(self) -> None:
        latest = self._latest_locked()
        reports = io.StringIO()
        w = csv.writer(reports, lineterminator="\n")
        w.writerow(REPORT_COLUMNS)
        for r in latest.itertuples(index=False):
            w.writerow([r.report_id, r.customer_id, r.txn_id, r.period_start, r.period_end, r.report_date, r.label,
                        r.typology or ""])
        txns = io.StringIO()
        w = csv.writer(txns, lineterminator="\n")
        w.writerow(TRANSACTION_COLUMNS)
        for raw in latest["transaction_json"].tolist():
            rec: dict[str, Any] = json.loads(raw)
            w.writerow(["" if rec.get(c) is None else rec.get(c) for c in TRANSACTION_COLUMNS])
        _atomic_write(self.export_dir / EXPORT_NAME, reports.getvalue())
        _atomic_write(self.export_dir / TRANSACTIONS_EXPORT_NAME, txns.getvalue())

    def close(self) -> None:
        with self._lock:
            self._db.close()


class _SQLiteTransaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (or ``ROLLBACK``) on an autocommit connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: Any, *_: Any) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with os.fdopen(open_private(tmp), "w", encoding="utf-8", newline="") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def make_entry(*, request_id: str, txn_id: str, customer_id: str, txn_day: str, label: str, typology: str | None,
               analyst: str | None, note: str | None, report_date: str, caller_key_id: str, caller_role: str,
               model_version: str, alert: bool, score: float, transaction_json: str) -> FeedbackEntry:
    """A :class:`FeedbackEntry` with a new report id; the report date is never before the transaction's day."""
    return FeedbackEntry(
        report_id=FeedbackStore.new_report_id(), request_id=request_id, txn_id=txn_id, customer_id=customer_id,
        period_start=txn_day, period_end=txn_day, report_date=max(report_date, txn_day), label=label,
        typology=typology, analyst=analyst, note=note, caller_key_id=caller_key_id, caller_role=caller_role,
        recorded_at=utc_now_iso(), decision_model_version=model_version, decision_alert=alert, decision_score=score,
        transaction_json=transaction_json,
    )
