"""Retention: remove what is past the configured retention, keep the chains verifiable.

The cutoff is ``as_of`` minus ``retention_years`` (default five years, PBoC Order 2016 No. 3 art.
25 and the bank's rules). A case is past retention when it is filed or closed and both its last
transaction and its closing are before the cutoff. The purge:

1. **refuses** (nothing is removed) when a case still open, in review, decided or approved has an
   alert before the cutoff: such a case must be finished first;
2. removes from ``actions`` the longest first run (by ``seq``) of actions of cases past retention,
   behind a signed cut (:mod:`amlscore.core.retention`); a case is removed (its row, alerts,
   filings) only when all its actions are in that run, otherwise it is kept whole until a later purge;
3. removes the large-value rows reported before the cutoff, and customers no alert names any more;
4. purges the audit log (:func:`amlscore.core.audit.purge_before`) before the cutoff, keeping every
   decision of a case that is kept.

The chains stay verifiable: :func:`verify_actions` and ``amlscore audit verify`` start at the signed cuts.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from amlscore.casework.store import ACTION_COLUMNS, ACTIVE, GENESIS, CaseStore, action_digest
from amlscore.contract.errors import AmlError
from amlscore.core.audit import PurgeResult, purge_before, utc_now_iso
from amlscore.core.retention import Cut, load_key, sign, signature_ok


class RetentionRefused(AmlError):
    """The purge would remove records of a case that is still open (nothing was removed)."""

    exit_code = 1


@dataclass(frozen=True)
class PurgeReport:
    cutoff: str
    cases: int
    alerts: int
    actions: int
    large_value: int
    audit: PurgeResult | None


def cutoff_for(as_of: dt.date, years: int) -> str:
    """The first instant kept: ``as_of`` minus ``years`` years (29 February becomes 28 February)."""
    try:
        day = as_of.replace(year=as_of.year - years)
    except ValueError:
        day = as_of.replace(year=as_of.year - years, day=28)
    return f"{day.isoformat()}T00:00:00.000000Z"


def _latest_cut(db: sqlite3.Connection) -> Cut | None:
    row = db.execute("SELECT tbl, upto_seq, rows_removed, head_at_cut, cutoff, made_at, made_by, signature FROM cuts "
                     "WHERE store='casework' AND tbl='actions' ORDER BY seq DESC LIMIT 1").fetchone()
    return Cut(row[0], int(row[1]), int(row[2]), row[3], row[4], row[5], row[6], row[7]) if row else None


def purge(store: CaseStore, *, retention_years: int, as_of: dt.date, key: bytes, made_by: str,
          audit_db: str | Path | None = None) -> PurgeReport:
    """Remove the records past retention (see the module docstring); :class:`RetentionRefused` when a
    case with alerts before the cutoff is still active."""
    cutoff = cutoff_for(as_of, retention_years)
    db = store.db
    with store._lock:
        open_old = [r[0] for r in db.execute(
            f"SELECT case_id FROM cases WHERE status IN ({','.join('?' * len(ACTIVE))}) AND first_txn_time < ? "
            "ORDER BY case_id", (*ACTIVE, cutoff))]
        if open_old:
            raise RetentionRefused(
                f"{len(open_old)} case(s) with transactions before the cutoff {cutoff[:10]} are still open "
                f"({', '.join(open_old[:10])}{', ...' if len(open_old) > 10 else ''}): finish them before purging. "
                "Nothing was removed.")
        eligible = {r[0] for r in db.execute(
            "SELECT case_id FROM cases WHERE status IN ('filed', 'closed') AND last_txn_time < ? "
            "AND COALESCE(filed_at, closed_at, updated_at) < ?", (cutoff, cutoff))}
        upto, head, count = None, None, 0
        for seq, case_id, chain in db.execute("SELECT seq, case_id, chain_hash FROM actions ORDER BY seq"):
            if case_id not in eligible:
                break
            upto, head, count = int(seq), chain, count + 1
        removable: set[str] = set()
        if upto is not None:
            later = {r[0] for r in db.execute("SELECT DISTINCT case_id FROM actions WHERE seq > ?", (upto,))}
            removable = eligible - later
        # the decisions of every case kept stay in the audit log, however old
        kept_txns = frozenset(r[0] for r in db.execute("SELECT alert_id FROM alerts")) - _alerts_of(db, removable)
    n_alerts = n_lv = 0
    with store.transaction() as w:
        if upto is not None:
            before = _latest_cut(w)
            unsigned = Cut("actions", upto, (before.rows_removed if before else 0) + count, str(head), cutoff,
                           utc_now_iso(), made_by, "")
            cut = Cut(**{**unsigned.__dict__, "signature": sign(key, "casework", unsigned)})
            w.execute("INSERT INTO cuts(store, tbl, upto_seq, rows_removed, head_at_cut, cutoff, made_at, made_by, "
                      "signature) VALUES ('casework',?,?,?,?,?,?,?,?)",
                      (cut.table, cut.upto_seq, cut.rows_removed, cut.head_at_cut, cut.cutoff, cut.made_at,
                       cut.made_by, cut.signature))
            w.execute("DELETE FROM actions WHERE seq <= ?", (upto,))
        ids = sorted(removable)
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            marks = ",".join("?" * len(part))
            n_alerts += w.execute(f"DELETE FROM alerts WHERE case_id IN ({marks})", part).rowcount
            w.execute(f"DELETE FROM filings WHERE case_id IN ({marks})", part)
            w.execute(f"DELETE FROM cases WHERE case_id IN ({marks})", part)
        n_lv = w.execute("DELETE FROM large_value WHERE filing_id IS NOT NULL AND txn_time < ?", (cutoff,)).rowcount
        w.execute("DELETE FROM filings WHERE kind='lvr' AND created_at < ? AND filing_id NOT IN "
                  "(SELECT filing_id FROM large_value WHERE filing_id IS NOT NULL)", (cutoff,))
        w.execute("DELETE FROM customers WHERE customer_id NOT IN (SELECT customer_id FROM alerts) AND customer_id "
                  "NOT IN (SELECT customer_id FROM large_value)")
    with store._lock:
        db.execute("VACUUM")  # removed rows must not linger in free pages
    audit = None
    if audit_db is not None and Path(audit_db).is_file():
        audit = purge_before(audit_db, cutoff, key, made_by, protected_txn_ids=kept_txns)
    return PurgeReport(cutoff, len(removable), n_alerts, count if upto is not None else 0, n_lv, audit)


def _alerts_of(db: sqlite3.Connection, cases: set[str]) -> frozenset[str]:
    out: set[str] = set()
    ids = sorted(cases)
    for start in range(0, len(ids), 500):
        part = ids[start:start + 500]
        out.update(r[0] for r in db.execute(
            f"SELECT alert_id FROM alerts WHERE case_id IN ({','.join('?' * len(part))})", part))
    return frozenset(out)


@dataclass(frozen=True)
class ActionsReport:
    rows: int
    removed: int
    broken: str | None

    @property
    def intact(self) -> bool:
        return self.broken is None


def verify_actions(store: CaseStore, key_file: str | Path) -> ActionsReport:
    """Recompute the chain of case actions from the newest signed cut (or the first row)."""
    with store._lock:
        db = store.db
        cuts = [Cut(r[0], int(r[1]), int(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in db.execute(
            "SELECT tbl, upto_seq, rows_removed, head_at_cut, cutoff, made_at, made_by, signature FROM cuts "
            "WHERE store='casework' AND tbl='actions' ORDER BY seq")]
        prev, removed = GENESIS, 0
        if cuts:
            secret = load_key(key_file)
            if secret is None:
                return ActionsReport(0, cuts[-1].rows_removed, f"the actions were purged but the retention key "
                                                               f"{key_file} is missing")
            for c in cuts:
                if not signature_ok(secret, "casework", c):
                    return ActionsReport(0, c.rows_removed, f"the retention cut at seq {c.upto_seq} is not "
                                                            "validly signed")
            prev, removed = cuts[-1].head_at_cut, cuts[-1].rows_removed
            early = db.execute("SELECT MIN(seq) FROM actions WHERE seq <= ?", (cuts[-1].upto_seq,)).fetchone()[0]
            if early is not None:
                return ActionsReport(0, removed, f"action seq {early} is covered by a retention cut yet present")
        n = 0
        for row in db.execute(f"SELECT seq, {','.join(ACTION_COLUMNS)}, chain_hash FROM actions ORDER BY seq"):
            prev = action_digest(prev, tuple(row[1:-1]))
            if prev != row[-1]:
                return ActionsReport(n, removed, f"action seq {row[0]}: its content or its predecessor changed")
            n += 1
    return ActionsReport(n, removed, None)
