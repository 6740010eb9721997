"""Retention: the purge removes what is past retention behind signed cuts, the chains still verify, open cases stop it."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from casework_helpers import person, record, txn, write_audit

from amlscore.casework.ingest import ingest_audit
from amlscore.casework.retention import RetentionRefused, purge, verify_actions
from amlscore.core.audit import AuditLog, verify_chain
from amlscore.core.retention import key_path, load_key

LATER = dt.date(2032, 6, 1)  # cutoff 2027-06-01 with five years


def _finish(work, cid, who="alice", approver="bob"):
    work.triage(cid, person(who))
    work.decide(cid, person(who), "not_suspicious", "explained by payroll records")
    work.approve(cid, person(approver))


def _case_of(work, txn_id):
    return work.store.db.execute("SELECT case_id FROM alerts WHERE alert_id=?", (txn_id,)).fetchone()[0]


@pytest.fixture()
def key(state):
    return load_key(key_path(state), create=True)


def test_the_purge_refuses_while_an_old_case_is_open_and_removes_nothing(state, work, key):
    write_audit(state, [record(txn("OLD", "C1", "2026-01-05T10:00:00Z"), 80)])
    ingest_audit(work, state / "audit.sqlite")
    before = work.store.db.execute("SELECT COUNT(*) FROM actions").fetchone()[0]
    with pytest.raises(RetentionRefused, match="still open") as exc:
        purge(work.store, retention_years=5, as_of=LATER, key=key, made_by="user:root", audit_db=state / "audit.sqlite")
    assert _case_of(work, "OLD") in str(exc.value)
    assert work.store.db.execute("SELECT COUNT(*) FROM actions").fetchone()[0] == before
    assert verify_chain(state / "audit.sqlite").rows["decisions"] == 1


@pytest.mark.filterwarnings("ignore::amlscore.models.rules.review.CalendarGapWarning")  # a 2031 transaction
def test_the_purge_keeps_the_chains_verifiable_and_keeps_what_is_not_past_retention(state, work, key):
    from amlscore.cli import run

    write_audit(state, [record(txn("OLD", "C1", "2026-01-05T10:00:00Z"), 80),
                        record(txn("QUIET", "C9", "2026-01-05T11:00:00Z"), 10, alert=False)])
    ingest_audit(work, state / "audit.sqlite")
    old = _case_of(work, "OLD")
    _finish(work, old)
    write_audit(state, [record(txn("NEW", "C2", "2031-02-01T10:00:00Z"), 85)])  # after the cutoff
    ingest_audit(work, state / "audit.sqlite")
    new = _case_of(work, "NEW")
    _finish(work, new)
    write_audit(state, [record(txn("LATEST", "C3", "2026-02-01T10:00:00Z"), 10, alert=False)])

    report = purge(work.store, retention_years=5, as_of=LATER, key=key, made_by="user:root",
                   audit_db=state / "audit.sqlite")
    assert report.cutoff.startswith("2027-06-01") and report.cases == 1 and report.alerts == 1
    assert work.store.case(old) is None and work.store.case(new) is not None
    assert work.store.alerts_of(new)[0]["alert_id"] == "NEW"
    assert report.audit is not None and report.audit.removed["decisions"] == 2  # OLD and QUIET, not NEW
    log = AuditLog(state / "audit.sqlite")
    try:
        assert log.by_txn("OLD") is None and log.by_txn("NEW") is not None and log.by_txn("LATEST") is not None
        log.append([record(txn("AFTER", "C4", "2032-05-01T10:00:00Z"), 10, alert=False)])  # the chain goes on
    finally:
        log.close()

    chain = verify_chain(state / "audit.sqlite")
    assert chain.intact, chain.broken
    assert chain.rows["decisions"] == 5  # every row ever written: 2 behind the cut, 3 checked
    assert run(["audit", "verify", "--state", str(state)]) == 0
    actions = verify_actions(work.store, key_path(state))
    assert actions.intact and actions.removed > 0
    work.comment(new, person("dave"), "after the purge")  # the action chain goes on from the cut
    assert verify_actions(work.store, key_path(state)).intact
    assert run(["cases", "verify", "--state", str(state)]) == 0


def test_a_forged_cut_or_a_missing_key_shows(state, work, key):
    from amlscore.cli import run

    write_audit(state, [record(txn("OLD", "C1", "2026-01-05T10:00:00Z"), 80)])
    ingest_audit(work, state / "audit.sqlite")
    _finish(work, _case_of(work, "OLD"))
    purge(work.store, retention_years=5, as_of=LATER, key=key, made_by="user:root", audit_db=state / "audit.sqlite")
    assert verify_chain(state / "audit.sqlite").intact
    key_path(state).rename(state / "elsewhere.key")
    broken = verify_chain(state / "audit.sqlite")
    assert not broken.intact and "retention key" in broken.broken.reason
    assert run(["audit", "verify", "--state", str(state)]) == 1
    assert "retention key" in verify_actions(work.store, key_path(state)).broken
    (state / "elsewhere.key").rename(key_path(state))
    db = sqlite3.connect(state / "audit.sqlite")
    db.execute("DROP TRIGGER retention_cuts_no_update")
    db.execute("UPDATE retention_cuts SET rows_removed = rows_removed - 1")  # hide that a row was removed
    db.commit()
    db.close()
    forged = verify_chain(state / "audit.sqlite")
    assert not forged.intact and "valid signature" in forged.broken.reason


def test_rows_cannot_be_deleted_outside_a_cut(state, work, key):
    write_audit(state, [record(txn("OLD", "C1", "2026-01-05T10:00:00Z"), 80)])
    db = sqlite3.connect(state / "audit.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="outside a signed retention cut"):
        db.execute("DELETE FROM decisions")
    db.close()
