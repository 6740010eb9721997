"""Cases: grouping of alerts, the moves and who may make them, four eyes, the chained history."""

from __future__ import annotations

import sqlite3

import pytest
from casework_helpers import person, record, txn, write_audit

from amlscore.casework.ingest import ingest_audit
from amlscore.casework.retention import verify_actions
from amlscore.casework.workflow import CaseRefused, CaseworkError, NotAllowed


@pytest.fixture()
def queued(state, work):
    recs = [record(txn("T1", "C1", "2026-09-29T10:00:00Z"), 80), record(txn("T2", "C1", "2026-10-20T10:00:00Z"), 70),
            record(txn("T3", "C2", "2026-09-29T10:00:00Z"), 60), record(txn("T4", "C1", "2026-11-05T10:00:00Z"), 90),
            record(txn("T5", "C3", "2026-09-29T10:00:00Z"), 20, alert=False)]
    write_audit(state, recs)
    ingest_audit(work, state / "audit.sqlite")
    return {a["alert_id"]: a["case_id"] for c in _all_cases(work) for a in work.store.alerts_of(c)}


def _all_cases(work):
    return [r[0] for r in work.store.db.execute("SELECT case_id FROM cases ORDER BY first_txn_time, customer_id")]


def _decided(work, case_id, who="alice", decision="suspicious"):
    work.triage(case_id, person(who))
    work.decide(case_id, person(who), decision, "cash well above the customer's profile",
                narrative="Edited by the analyst.", typology="structuring")


def test_alerts_of_a_customer_within_the_monitoring_period_group_into_one_case(state, work, queued):
    assert set(queued) == {"T1", "T2", "T3", "T4"}  # T5 did not alert
    assert queued["T1"] == queued["T2"]  # 21 days apart: within 30
    assert queued["T4"] != queued["T1"]  # 37 days after the case's first alert: a new case
    assert queued["T3"] != queued["T1"]  # another customer
    case = work.store.case(queued["T1"])
    assert case["n_alerts"] == 2 and case["max_score"] == 80 and case["status"] == "open"
    added, opened = ingest_audit(work, state / "audit.sqlite")
    assert (added, opened) == (0, 0)  # nothing twice


def test_an_alert_after_the_decision_opens_a_new_case(state, work, queued):
    _decided(work, queued["T1"])
    write_audit(state, [record(txn("T6", "C1", "2026-10-01T10:00:00Z"), 75)])
    ingest_audit(work, state / "audit.sqlite")
    assert work.store.alerts_of(queued["T1"])[-1]["alert_id"] == "T2"
    new = work.store.db.execute("SELECT case_id FROM alerts WHERE alert_id='T6'").fetchone()[0]
    assert new != queued["T1"]


def test_four_eyes_the_decider_never_approves_their_own_decision(work, queued):
    cid = queued["T1"]
    _decided(work, cid, who="bob")  # a reviewer decides ...
    with pytest.raises(NotAllowed, match="Four eyes"):
        work.approve(cid, person("bob"))  # ... and may not approve it
    with pytest.raises(NotAllowed, match="Four eyes"):
        work.send_back(cid, person("bob"), "second thoughts")
    with pytest.raises(NotAllowed, match="analyst role may not approve"):
        work.approve(cid, person("alice"))  # an analyst approves nothing
    assert work.store.case(cid)["status"] == "decided"
    case = work.approve(cid, person("carol"))
    assert case["status"] == "approved" and case["approved_by"] == "carol" and case["decided_by"] == "bob"


def test_an_analyst_cannot_approve_their_own_decision(work, queued):
    cid = queued["T3"]
    _decided(work, cid, who="alice")
    with pytest.raises(NotAllowed):
        work.approve(cid, person("alice"))
    assert work.store.case(cid)["status"] == "decided"


def test_moves_follow_the_statuses(work, queued):
    cid = queued["T3"]
    with pytest.raises(CaseRefused, match="only a case that is in_review can be decided"):
        work.decide(cid, person("alice"), "suspicious", "x", narrative="n")
    work.triage(cid, person("alice"))
    with pytest.raises(CaseRefused):
        work.triage(cid, person("dave"))
    with pytest.raises(CaseworkError, match="needs a reason"):
        work.decide(cid, person("alice"), "suspicious", " ", narrative="n")
    with pytest.raises(CaseworkError, match="must be one of suspicious, not_suspicious"):
        work.decide(cid, person("alice"), "maybe", "x")
    with pytest.raises(CaseworkError, match=r"\[Analyst: \.\.\.\]"):
        work.decide(cid, person("alice"), "suspicious", "x", narrative="text [Analyst: state why ...]")
    with pytest.raises(NotAllowed, match="channel role may not"):
        work.comment(cid, person("gate"), "hello")


def test_send_back_returns_the_case_to_review_and_keeps_the_decision_in_the_history(work, queued):
    cid = queued["T1"]
    _decided(work, cid)
    work.send_back(cid, person("bob"), "check the counterparty first")
    case = work.store.case(cid)
    assert case["status"] == "in_review" and case["decision"] is None and case["due_kind"] == "analysis"
    actions = [(h.action, h.person) for h in work.store.history(cid)]
    assert ("decide", "user:alice") in actions and ("send_back", "user:bob") in actions


def test_not_suspicious_closes_at_approval_and_suspicious_is_filed_after(work, queued):
    _decided(work, queued["T3"], decision="not_suspicious")
    assert work.approve(queued["T3"], person("bob"))["status"] == "closed"
    cid = queued["T1"]
    _decided(work, cid)
    work.approve(cid, person("bob"), filing_xml=lambda case, alerts: b"<x/>")
    with pytest.raises(NotAllowed):
        work.file(cid, person("alice"))
    work.file(cid, person("bob"), "PBOC-RECEIPT-1")
    assert work.store.case(cid)["status"] == "filed"


def test_every_action_names_the_person_and_the_chain_verifies(state, work, queued):
    cid = queued["T1"]
    _decided(work, cid)
    work.comment(cid, person("dave"), "customer called")
    work.approve(cid, person("bob"))
    hist = work.store.history(cid)
    people = {h.action: h.person for h in hist if h.person.startswith("user:")}
    assert people == {"triage": "user:alice", "decide": "user:alice", "comment": "user:dave", "approve": "user:bob"}
    assert all(h.at.endswith("Z") for h in hist)
    assert verify_actions(work.store, state / "retention.key").intact
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        work.store.db.execute("UPDATE actions SET person='user:mallory' WHERE action='approve'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        work.store.db.execute("DELETE FROM actions WHERE action='approve'")
    # behind the store's back (triggers dropped): the chain shows it
    work.store.db.execute("DROP TRIGGER actions_no_update")
    work.store.db.execute("UPDATE actions SET person='user:mallory' WHERE action='approve'")
    report = verify_actions(work.store, state / "retention.key")
    assert not report.intact and "changed" in report.broken
