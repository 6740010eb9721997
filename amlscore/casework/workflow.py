"""The moves of a case, who may make them, and the four-eyes rule.

Every move is one transaction: the action's chained row (who, role, when, what) and the case's new
state are written together, or neither is. A move that is not allowed raises, naming why:

* :class:`CaseRefused` (HTTP 409): the case is not in a status that allows the move;
* :class:`NotAllowed` (HTTP 403): the person's role may not make it, or **four eyes**: the person who
  decided a case can never approve it, whatever their role.

=============  =======================  ==============================  =====================
move           from                     to                              who
=============  =======================  ==============================  =====================
triage         open                     in_review (assigned to self)    analyst, reviewer, admin
assign         open, in_review          (unchanged; assignee set)       analyst, reviewer, admin
comment        any                      (unchanged)                     analyst, reviewer, admin
decide         in_review                decided (+ deadline)            analyst, reviewer, admin
send_back      decided                  in_review                       reviewer, admin (not the decider)
approve        decided                  approved / closed               reviewer, admin (not the decider)
file           approved (suspicious)    filed                           reviewer, admin
=============  =======================  ==============================  =====================

A suspicious decision's report is due ``str_due_working_days`` working days after the decision;
before a decision the case is due ``analysis_due_working_days`` after its first alert
(:mod:`amlscore.casework.deadlines`).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from amlscore.casework.config import CaseworkConfig
from amlscore.casework.deadlines import bank_day, str_due, working_days_after
from amlscore.casework.store import CaseStore, case_alerts, new_case_id
from amlscore.contract.errors import AmlError
from amlscore.core.audit import utc_now_iso
from amlscore.core.identity import APPROVER_ROLES, CASE_ROLES, Person

DECISIONS = ("suspicious", "not_suspicious")
# Measures taken (the report's 采取措施 element): codes, worded in docs/casework.md and on the page.
MEASURES = ("continued_monitoring", "enhanced_due_diligence", "limited_services", "account_frozen",
            "relationship_ended", "reported_to_police")


class CaseworkError(AmlError):
    """A casework request that cannot be carried out (the subclasses say whether it is a conflict or a refusal)."""

    status = 400


class CaseNotFound(CaseworkError):
    status = 404


class CaseRefused(CaseworkError):
    """The case's status does not allow the move."""

    status = 409


class NotAllowed(CaseworkError):
    """The person may not make the move (role, or the four-eyes rule)."""

    status = 403


@dataclass(frozen=True)
class AlertIn:
    """An alerted decision to put in the queue (from the audit log or batch scoring)."""

    alert_id: str  # the txn_id
    source: str  # online | batch
    customer_id: str
    txn_time: str  # ISO 8601, UTC
    score: float
    txn: dict[str, Any]
    request_id: str | None = None
    model_version: str | None = None
    risk_level: str | None = None
    explanation: dict[str, Any] | None = None


def _iso(ts: str | pd.Timestamp) -> str:
    """One fixed layout (UTC, microseconds, ``Z``) so that times compare as text in SQL."""
    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Casework:
    """The casework store with its rules: ingest alerts into cases, and the moves of a case."""

    def __init__(self, store: CaseStore, config: CaseworkConfig) -> None:
        self.store = store
        self.config = config

    # -- alerts into cases ------------------------------------------------------------------------
    def add_alerts(self, alerts: list[AlertIn], by: str = "system:ingest") -> tuple[int, int]:
        """Queue new alerts (an alert already queued is skipped); returns (alerts added, cases opened).

        An alert joins its customer's case that is still ``open`` or ``in_review`` when the alert's
        transaction falls within the case's window (first alert + ``grouping_days``); otherwise it
        opens a new case.
        """
        added = opened = 0
        window = pd.Timedelta(days=self.config.grouping_days)
        with self.store.transaction() as db:
            for a in sorted(alerts, key=lambda x: (x.txn_time, x.alert_id)):
                if db.execute("SELECT 1 FROM alerts WHERE alert_id = ?", (a.alert_id,)).fetchone():
                    continue
                t = _iso(a.txn_time)
                row = db.execute("SELECT case_id, max_score, risk_level FROM cases WHERE customer_id = ? AND status IN "
                                 "('open', 'in_review') AND first_txn_time <= ? AND window_end >= ? "
                                 "ORDER BY opened_at DESC LIMIT 1", (a.customer_id, t, t)).fetchone()
                now = utc_now_iso()
                if row is None:
                    case_id = new_case_id()
                    due = working_days_after(bank_day(t), self.config.analysis_due_working_days)
                    db.execute("INSERT INTO cases(case_id, customer_id, opened_at, first_txn_time, last_txn_time, "
                               "window_end, status, due_date, due_kind, max_score, n_alerts, risk_level, updated_at) "
                               "VALUES (?, ?, ?, ?, ?, ?, 'open', ?, 'analysis', ?, 0, ?, ?)",
                               (case_id, a.customer_id, now, t, t, _iso(pd.Timestamp(t) + window),
                                due.isoformat(), a.score, a.risk_level, now))
                    self.store.append_action(db, case_id, "opened", by, "system",
                                             {"customer_id": a.customer_id, "analysis_due": due.isoformat()})
                    opened += 1
                else:
                    case_id = row["case_id"]
                db.execute("INSERT INTO alerts(alert_id, source, request_id, customer_id, txn_time, score, "
                           "model_version, risk_level, explanation_json, txn_json, ingested_at, case_id) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                           (a.alert_id, a.source, a.request_id, a.customer_id, t, float(a.score), a.model_version,
                            a.risk_level, json.dumps(a.explanation, ensure_ascii=False) if a.explanation else None,
                            json.dumps(a.txn, ensure_ascii=False, default=str), now, case_id))
                db.execute("UPDATE cases SET n_alerts = n_alerts + 1, max_score = MAX(max_score, ?), "
                           "last_txn_time = MAX(last_txn_time, ?), risk_level = COALESCE(?, risk_level), "
                           "updated_at = ? WHERE case_id = ?", (float(a.score), t, a.risk_level, now, case_id))
                self.store.append_action(db, case_id, "alert_added", by, "system",
                                         {"alert_id": a.alert_id, "source": a.source, "score": round(float(a.score), 4)})
                added += 1
        return added, opened

    # -- moves ------------------------------------------------------------------------------------
    def _load(self, db: Any, case_id: str) -> dict[str, Any]:
        row = db.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row is None:
            raise CaseNotFound(f"There is no case {case_id!r}.")
        return dict(row)

    @staticmethod
    def _need(person: Person, roles: frozenset[str], move: str) -> None:
        if person.role not in roles:
            raise NotAllowed(f"The {person.role} role may not {move}; it needs one of {', '.join(sorted(roles))}.")

    @staticmethod
    def _status(case: dict[str, Any], allowed: tuple[str, ...], move: str) -> None:
        if case["status"] not in allowed:
            raise CaseRefused(f"Case {case['case_id']} is {case['status']}: only a case that is "
                              f"{' or '.join(allowed)} can be {move}.")

    def triage(self, case_id: str, person: Person) -> None:
        """Take an open case into review, assigned to oneself."""
        self._need(person, CASE_ROLES, "triage a case")
        with self.store.transaction() as db:
            case = self._load(db, case_id)
            self._status(case, ("open",), "triaged")
            db.execute("UPDATE cases SET status='in_review', assignee=?, updated_at=? WHERE case_id=?",
                       (person.name, utc_now_iso(), case_id))
            self.store.append_action(db, case_id, "triage", person.key_id, person.role, {"assignee": person.name})

    def assign(self, case_id: str, person: Person, assignee: Person) -> None:
        """Assign an open or in-review case to an analyst, reviewer or admin."""
        self._need(person, CASE_ROLES, "assign a case")
        if not assignee.sees_cases:
            raise NotAllowed(f"A case cannot be assigned to {assignee.name} (role {assignee.role}).")
        with self.store.transaction() as db:
            case = self._load(db, case_id)
            self._status(case, ("open", "in_review"), "assigned")
            db.execute("UPDATE cases SET assignee=?, updated_at=? WHERE case_id=?",
                       (assignee.name, utc_now_iso(), case_id))
            self.store.append_action(db, case_id, "assign", person.key_id, person.role, {"assignee": assignee.name})

    def comment(self, case_id: str, person: Person, text: str) -> None:
        self._need(person, CASE_ROLES, "comment on a case")
        text = (text or "").strip()
        if not text:
            raise CaseworkError("A comment must not be empty.")
        with self.store.transaction() as db:
            self._load(db, case_id)
            db.execute("UPDATE cases SET updated_at=? WHERE case_id=?", (utc_now_iso(), case_id))
            self.store.append_action(db, case_id, "comment", person.key_id, person.role, {"text": text[:4000]})

    def decide(self, case_id: str, person: Person, decision: str, reason: str, narrative: str = "",
               typology: str | None = None, measures: tuple[str, ...] = (), at: str | None = None) -> None:
        """Record the decision (suspicious / not suspicious) with its reason and the report's narrative."""
        self._need(person, CASE_ROLES, "decide a case")
        if decision not in DECISIONS:
            raise CaseworkError(f"The decision must be one of {', '.join(DECISIONS)}. Got {decision!r} instead.")
        reason = (reason or "").strip()
        if not reason:
            raise CaseworkError("A decision needs a reason.")
        unknown = [m for m in measures if m not in MEASURES]
        if unknown:
            raise CaseworkError(f"A measure must be one of {', '.join(MEASURES)}. Got {', '.join(unknown)} instead.")
        if decision == "suspicious" and not narrative.strip():
            raise CaseworkError("A suspicious decision needs the report's narrative (the description of the suspicion).")
        if "[Analyst:" in narrative:
            raise CaseworkError("The narrative still holds the draft's instruction '[Analyst: ...]': replace it with "
                                "the analysis before deciding.")
        at = at or utc_now_iso()
        due = str_due(at, self.config.str_due_working_days) if decision == "suspicious" else None
        with self.store.transaction() as db:
            case = self._load(db, case_id)
            self._status(case, ("in_review",), "decided")
            kind = "str" if due else "analysis"
            if due is None:  # not suspicious: the approval is still due by the analysis deadline
                due = dt.date.fromisoformat(case["due_date"])
            db.execute("UPDATE cases SET status='decided', decision=?, reason=?, narrative=?, typology=?, measures=?, "
                       "decided_by=?, decided_at=?, due_date=?, due_kind=?, updated_at=? WHERE case_id=?",
                       (decision, reason, narrative, typology or None, ",".join(measures), person.name, at,
                        due.isoformat(), kind, at, case_id))
            self.store.append_action(db, case_id, "decide", person.key_id, person.role,
                                     {"decision": decision, "reason": reason, "typology": typology, "measures": list(measures),
                                      "narrative": narrative, "str_due": due.isoformat() if kind == "str" else None}, at=at)

    def _four_eyes(self, case: dict[str, Any], person: Person, move: str) -> None:
        self._need(person, APPROVER_ROLES, move)
        if case["decided_by"] == person.name:
            raise NotAllowed(f"Four eyes: {person.name} decided case {case['case_id']} and so cannot {move} it; "
                             "another reviewer must.")

    def send_back(self, case_id: str, person: Person, reason: str) -> None:
        """Return a decided case to review (the decision stays in the history)."""
        reason = (reason or "").strip()
        if not reason:
            raise CaseworkError("Sending a case back needs a reason.")
        with self.store.transaction() as db:
            case = self._load(db, case_id)
            self._status(case, ("decided",), "sent back")
            self._four_eyes(case, person, "send back")
            first = bank_day(case["first_txn_time"])
            due = working_days_after(first, self.config.analysis_due_working_days)
            db.execute("UPDATE cases SET status='in_review', decision=NULL, decided_by=NULL, decided_at=NULL, "
                       "due_date=?, due_kind='analysis', updated_at=? WHERE case_id=?",
                       (due.isoformat(), utc_now_iso(), case_id))
            self.store.append_action(db, case_id, "send_back", person.key_id, person.role, {"reason": reason})

    def approve(self, case_id: str, person: Person, note: str = "", filing_xml: Any = None) -> dict[str, Any]:
        """Approve another person's decision: a not-suspicious case is closed, a suspicious one awaits filing.

        ``filing_xml(case, alerts) -> bytes`` builds the report of a suspicious case; it is frozen in
        ``filings`` in the same transaction. Returns the case as approved.
        """
        at = utc_now_iso()
        with self.store.transaction() as db:
            case = self._load(db, case_id)
            self._status(case, ("decided",), "approved")
            self._four_eyes(case, person, "approve")
            status = "closed" if case["decision"] == "not_suspicious" else "approved"
            db.execute("UPDATE cases SET status=?, approved_by=?, approved_at=?, closed_at=?, updated_at=? "
                       "WHERE case_id=?", (status, person.name, at, at if status == "closed" else None, at, case_id))
            if status == "closed":
                db.execute("UPDATE cases SET due_date=NULL, due_kind=NULL WHERE case_id=?", (case_id,))
            self.store.append_action(db, case_id, "approve", person.key_id, person.role,
                                     {"decision": case["decision"], "note": note})
            if status == "closed":
                self.store.append_action(db, case_id, "close", person.key_id, person.role, {})
            elif filing_xml is not None:
                case = self._load(db, case_id)
                xml = filing_xml(case, case_alerts(db, case_id))
                self._freeze_filing(db, "str", case_id, xml, person)
            return self._load(db, case_id)

    def file(self, case_id: str, person: Person, reference: str = "") -> None:
        """Mark an approved suspicious case as filed with the regulator (the frozen XML is what was filed)."""
        self._need(person, APPROVER_ROLES, "file a report")
        with self.store.transaction() as db:
            case = self._load(db, case_id)
            self._status(case, ("approved",), "filed")
            if not db.execute("SELECT 1 FROM filings WHERE case_id=?", (case_id,)).fetchone():
                raise CaseRefused(f"Case {case_id} has no report to file.")
            at = utc_now_iso()
            db.execute("UPDATE cases SET status='filed', filed_at=?, due_date=NULL, due_kind=NULL, updated_at=? "
                       "WHERE case_id=?", (at, at, case_id))
            self.store.append_action(db, case_id, "file", person.key_id, person.role, {"reference": reference})

    def record_download(self, case_id: str, person: Person, filing_id: str) -> None:
        """Note in the history that a person downloaded the filing."""
        with self.store.transaction() as db:
            self.store.append_action(db, case_id, "download", person.key_id, person.role, {"filing_id": filing_id})

    def record_view(self, case_id: str, person: Person) -> None:
        """Note that a person opened the case (who looked at what is part of the record)."""
        with self.store.transaction() as db:
            self.store.append_action(db, case_id, "view", person.key_id, person.role, {})

    # -- helpers ----------------------------------------------------------------------------------
    def _freeze_filing(self, db: Any, kind: str, case_id: str | None, xml: bytes, person: Person) -> str:
        import hashlib

        from amlscore.core.audit import new_ulid

        filing_id = f"{kind.upper()}-{new_ulid()}"
        db.execute("INSERT INTO filings(filing_id, kind, case_id, created_at, created_by, sha256, xml) "
                   "VALUES (?,?,?,?,?,?,?)", (filing_id, kind, case_id, utc_now_iso(), person.key_id,
                                              hashlib.sha256(xml).hexdigest(), xml))
        if case_id is not None:
            self.store.append_action(db, case_id, "filing_prepared", person.key_id, person.role,
                                     {"filing_id": filing_id, "sha256": hashlib.sha256(xml).hexdigest()})
        return filing_id

    def freeze_large_value(self, txn_ids: list[str], xml: bytes, person: Person) -> str:
        """Freeze one large-value report file covering ``txn_ids`` and mark them reported."""
        with self.store.transaction() as db:
            filing_id = self._freeze_filing(db, "lvr", None, xml, person)
            db.executemany("UPDATE large_value SET filing_id=? WHERE txn_id=?", [(filing_id, t) for t in txn_ids])
        return filing_id

