"""Deadlines on the rules' working-day calendar: weekends, holidays, make-up days, the bank's day; the queue's order."""

from __future__ import annotations

import datetime as dt

import pytest
from casework_helpers import person, record, txn, write_audit

from amlscore.casework.deadlines import bank_day, lvr_due, str_due
from amlscore.casework.ingest import ingest_audit
from amlscore.casework.store import QueueFilter


@pytest.mark.parametrize("decided_at, due", [
    # Wednesday 30 Sept 2026, before the National Day holidays (1-7 Oct) and the make-up Saturday 10 Oct:
    # 8 Oct (1), 9 Oct (2), Sat 10 Oct (3), 12 Oct (4), 13 Oct (5)
    ("2026-09-30T02:00:00Z", dt.date(2026, 10, 13)),
    # 17:00 UTC on 29 Sept is 01:00 on 30 Sept in Beijing: the same bank day as above
    ("2026-09-29T17:00:00Z", dt.date(2026, 10, 13)),
    # an ordinary week: Monday 2 Nov 2026 -> Monday 9 Nov
    ("2026-11-02T03:00:00Z", dt.date(2026, 11, 9)),
    # Friday 25 Dec 2026 -> over the weekend and New Year's Day (1 Jan 2027 is not listed: Monday-Friday)
    ("2026-12-24T03:00:00Z", dt.date(2026, 12, 31)),
])
def test_a_suspicious_report_is_due_five_working_days_after_the_decision(decided_at, due):
    assert str_due(decided_at, 5) == due


def test_a_large_value_report_is_due_five_working_days_after_the_transaction():
    assert lvr_due("2026-09-30T10:00:00+08:00", 5) == dt.date(2026, 10, 13)
    # Friday 13 Feb: Sat 14 Feb is worked (1), Spring Festival 15-23 Feb, then 24 (2), 25 (3), 26 (4), 27 Feb (5)
    assert lvr_due("2026-02-13T09:00:00Z", 5) == dt.date(2026, 2, 27)


def test_bank_day_uses_the_bank_clock():
    assert bank_day("2026-03-01T16:30:00Z") == dt.date(2026, 3, 2)
    assert bank_day("2026-03-01T15:59:00Z") == dt.date(2026, 3, 1)


def test_the_decision_sets_the_report_deadline_and_the_queue_orders_by_deadline_then_score(state, work):
    write_audit(state, [record(txn("A", "C1", "2026-09-28T10:00:00Z"), 60),
                        record(txn("B", "C2", "2026-09-28T10:00:00Z"), 95),
                        record(txn("C", "C3", "2026-11-20T10:00:00Z"), 99)])
    ingest_audit(work, state / "audit.sqlite")
    today = dt.date(2026, 12, 1)
    rows, total = work.store.queue(QueueFilter(), today)
    assert total == 3
    assert [r["customer_id"] for r in rows] == ["C2", "C1", "C3"]  # same deadline: higher score first
    assert rows[0]["due_date"] == "2026-10-16" and rows[0]["due_kind"] == "analysis"  # 10 working days
    score_first, _ = work.store.queue(QueueFilter(sort="score"), today)
    assert [r["customer_id"] for r in score_first] == ["C3", "C2", "C1"]
    overdue, n = work.store.queue(QueueFilter(overdue_only=True), today)
    assert n == 2 and {r["customer_id"] for r in overdue} == {"C1", "C2"}
    assert work.store.counts(today)["overdue"] == 2

    cid = rows[1]["case_id"]  # C1
    work.triage(cid, person("alice"))
    work.decide(cid, person("alice"), "suspicious", "reason", narrative="n", at="2026-09-30T02:00:00.000000Z")
    case = work.store.case(cid)
    assert case["due_date"] == "2026-10-13" and case["due_kind"] == "str"
