"""The audit log and feedback in PostgreSQL, against a real server started by the test.

Same chain as SQLite, refused UPDATE/DELETE/TRUNCATE, durable before the future is done, verify
finds tampering and a cut tail, and several processes writing at once keep one valid chain per table.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlscore.core.audit import AuditLog, AuditRecord, _Write, input_hash  # noqa: E402
from amlscore.core.audit_pg import PostgresAuditLog, connect, verify_chain_pg  # noqa: E402
from servers import postgres_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def _record(i: int, tag: str = "") -> AuditRecord:
    rec = {"txn_id": f"T{tag}{i}", "amount": 10.0 + i}
    return AuditRecord(request_id=f"R{tag}{i:04d}", txn_id=f"T{tag}{i}", customer_id="C1",
                       decided_at="2026-01-01T00:00:00Z", caller_key_id="k", caller_role="channel", endpoint="score",
                       batch_id=None if i % 3 else "B1", input_hash=input_hash(rec), input=rec,
                       features=np.arange(3.0) + i, suspicion_score=12.5 + i, alert=bool(i % 2), model_name="m",
                       model_version="1", feature_set_version="f", feature_params_hash="p", rules_config_hash="r",
                       decision={"x": i, "zh": "可疑"})


@pytest.fixture(scope="module")
def pg_server():
    with postgres_server() as url:
        yield url


@pytest.fixture()
def pg(pg_server):
    """An empty database for each test (the server is shared by the module)."""
    name = f"t{os.urandom(4).hex()}"
    admin = connect(pg_server, autocommit=True)
    admin.execute(f"CREATE DATABASE {name}")
    admin.close()
    yield pg_server.rsplit("/", 1)[0] + "/" + name


def _fill(log) -> None:
    log.append([_record(i) for i in range(3)])
    log.append([_record(i) for i in range(3, 6)])
    for i in range(3):
        log.append_explanation(f"R{i:04d}", "en", "1", {"i": i})
    log.append_explanation("R0000", "en", "1", {"i": "ignored: the first one written stays"})
    for i in range(4):
        log.append_replay(f"R{i % 2:04d}", f"T{i % 2}", "k", "channel", "score")


def test_the_same_records_chain_to_the_same_hashes_as_sqlite(pg, tmp_path):
    lite = AuditLog(tmp_path / "audit.sqlite", sync="normal")
    _fill(lite)
    lite.close()
    log = PostgresAuditLog(pg)
    _fill(log)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    for table in ("decisions",):  # (explanations and replays carry the time they were written)
        want = [r[0] for r in db.execute(f"SELECT chain_hash FROM {table} ORDER BY seq")]
        got = [r[0] for r in log._read.execute(f"SELECT chain_hash FROM {table} ORDER BY seq")]
        assert got == want, table
    # what the readers give back is what went in
    rec = log.by_txn("T4")
    assert rec is not None and rec.decision == {"x": 4, "zh": "可疑"}
    np.testing.assert_array_equal(rec.features, np.arange(3.0) + 4)
    assert log.explanation("R0000", "en")["explanation"] == {"i": 0}
    assert log.count() == 6 and log.replay_count() == 4
    assert [r.txn_id for r in log.iter_records()] == [f"T{i}" for i in range(6)]
    assert log.verify() == (True, 6, None)
    assert verify_chain_pg(pg).intact
    log.close()


def test_updates_deletes_and_truncation_are_refused(pg):
    import psycopg

    log = PostgresAuditLog(pg)
    _fill(log)
    conn = connect(pg, autocommit=True)
    for sql in ("UPDATE decisions SET suspicion_score = 0", "DELETE FROM decisions WHERE txn_id = 'T1'",
                "TRUNCATE decisions CASCADE", "UPDATE replays SET caller_role = 'admin'", "DELETE FROM explanations"):
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            conn.execute(sql)
    assert log.count() == 6
    log.close()


def test_a_done_future_means_committed_and_verify_finds_tampering(pg):
    log = PostgresAuditLog(pg)
    fut = log.submit([_record(i) for i in range(5)])
    assert fut.result(60) == 5
    other = connect(pg, autocommit=True)  # another session sees the rows: they are committed
    assert other.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 5
    log.close()

    # an attacker who owns the tables switches the trigger off and edits a row: verify names it
    other.execute("ALTER TABLE decisions DISABLE TRIGGER decisions_append_only")
    other.execute("UPDATE decisions SET suspicion_score = 99 WHERE txn_id = 'T2'")
    report = verify_chain_pg(pg)
    assert not report.intact and report.broken.table == "decisions"
    seq = other.execute("SELECT seq FROM decisions WHERE txn_id = 'T2'").fetchone()[0]
    assert report.broken.seq == seq
    # the command line says so too (exit 1)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AML_DATABASE_URL": pg}
    out = subprocess.run([sys.executable, "-m", "amlscore.cli", "audit", "verify"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Broken" in out.stdout


def test_a_tail_cut_off_shows(pg):
    log = PostgresAuditLog(pg)
    _fill(log)
    log.close()
    conn = connect(pg, autocommit=True)
    conn.execute("ALTER TABLE replays DISABLE TRIGGER replays_append_only")
    conn.execute("DELETE FROM replays WHERE seq = (SELECT MAX(seq) FROM replays)")
    report = verify_chain_pg(pg)
    assert report.broken is not None and report.broken.table == "replays" and report.broken.seq is None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ok = subprocess.run([sys.executable, "-m", "amlscore.cli", "audit", "verify", "--database-url", pg], cwd=ROOT,
                        env=env, capture_output=True, text=True)
    assert ok.returncode == 1 and "removed from its end" in ok.stdout


def _writer(url: str, proc: int, n: int) -> None:
    log = PostgresAuditLog(url, sync="full")
    futures = []
    for i in range(n):
        futures.append(log.submit([_record(i, tag=f"p{proc}-")]))
        if i % 5 == 0:
            futures.append(log.submit_replay(f"Rp{proc}-{i:04d}", f"Tp{proc}-{i}", "k", "channel", "score"))
    for f in futures:
        f.result(120)
    log.close()


def test_several_processes_writing_at_once_keep_one_valid_chain_per_table(pg):
    PostgresAuditLog(pg).close()  # the schema first: each writer would create it too (under a lock)
    procs, n = 4, 60
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(pg, p, n)) for p in range(procs)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(300)
        assert w.exitcode == 0
    report = verify_chain_pg(pg)
    assert report.intact, report.broken
    assert report.rows["decisions"] == procs * n
    assert report.rows["replays"] == procs * len(range(0, n, 5))
    conn = connect(pg, autocommit=True)
    # the writers' commits interleaved (one chain across processes, not one per process)
    order = [r[0].split("-")[0] for r in conn.execute("SELECT txn_id FROM decisions ORDER BY seq")]
    assert sum(a != b for a, b in zip(order, order[1:])) >= procs - 1


def test_feedback_in_postgres_is_append_only_and_exported(pg, tmp_path):
    import psycopg

    from amlscore.serving.feedback import make_entry
    from amlscore.serving.feedback_pg import PostgresFeedbackStore

    store = PostgresFeedbackStore(pg, tmp_path / "feedback")
    for label in ("suspicious", "normal"):  # a revision: the latest one is exported
        store.record(make_entry(request_id="R1", txn_id="T1", customer_id="C1", txn_day="2026-01-02", label=label,
                                typology=None, analyst="a", note=None, report_date="2026-01-03", caller_key_id="k",
                                caller_role="compliance", model_version="1", alert=True, score=80.0,
                                transaction_json='{"txn_id": "T1"}'))
    assert store.count() == 2
    frame = store.reports_frame()
    assert frame["label"].tolist() == ["normal"]
    assert "T1" in (tmp_path / "feedback" / "feedback_reports.csv").read_text()
    # a second worker's store sees the same table
    assert PostgresFeedbackStore(pg, tmp_path / "other").count() == 2
    with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
        connect(pg, autocommit=True).execute("DELETE FROM feedback")
    store.close()


def _queued_behind_a_held_head(pg: str, log: PostgresAuditLog, submit_more) -> list:
    """Hold the decisions head's lock from another session while the writer commits a first write, so
    that what ``submit_more`` queues meanwhile is committed as one group once the lock is let go."""
    holder = connect(pg)
    holder.execute("SELECT * FROM audit_heads WHERE tbl = 'decisions' FOR UPDATE")
    first = log.submit([_record(100)])
    waiting = connect(pg, autocommit=True)
    for _ in range(600):  # the writer is blocked on the head's lock
        if waiting.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'").fetchone()[0]:
            break
        waiting.execute("SELECT pg_sleep(0.05)")
    else:
        raise AssertionError("the writer never waited for the held lock")
    futures = submit_more()
    commits = log.commits
    holder.rollback()
    holder.close()
    assert first.result(60) == 1
    waiting.close()
    return [futures, commits]


def test_one_group_chains_decisions_and_explanations_as_one_at_a_time_would(pg, tmp_path):
    log = PostgresAuditLog(pg)
    log.append([_record(i) for i in range(3)])
    log.append_explanation("R0001", "en", "1", {"stored": "before"})

    def more():
        return [log.submit([_record(3), _record(4)]),
                log._enqueue(_Write("explanation", [("R0000", "en", "t", "1", '{"first":1}')])),
                log._enqueue(_Write("explanation", [("R0000", "en", "t", "1", '{"second":2}')])),  # same key
                log._enqueue(_Write("explanation", [("R0001", "en", "t", "1", '{"again":3}')])),  # stored
                log.submit_replay("R0000", "T0", "k", "channel", "score"),
                log.submit([_record(5)])]

    futures, commits_before = _queued_behind_a_held_head(pg, log, more)
    assert [f.result(60) for f in futures] == [2, None, None, None, None, 1]
    assert log.commits == commits_before + 2  # the first write, then everything queued behind it at once
    assert log.explanation("R0000", "en")["explanation"] == {"first": 1}
    assert log.explanation("R0001", "en")["explanation"] == {"stored": "before"}
    log.close()
    report = verify_chain_pg(pg)
    assert report.intact, report.broken
    assert report.rows == {"decisions": 7, "explanations": 2, "replays": 1, "shadow_scores": 0}

    # the same writes one at a time in SQLite give the same chain hashes
    conn = connect(pg, autocommit=True)
    pg_rows = {t: conn.execute(f"SELECT * FROM {t} ORDER BY seq").fetchall()
               for t in ("decisions", "explanations", "replays")}
    conn.close()
    expl = pg_rows["explanations"]
    assert [r[1] for r in expl] == ["R0001", "R0000"]
    # the explanations and replays as PostgreSQL stored them (their times are the writer's)
    lite = AuditLog(tmp_path / "audit.sqlite")
    lite.append([_record(i) for i in range(3)])
    lite._enqueue(_Write("explanation", [tuple(expl[0][1:6])])).result()
    lite.append([_record(100)])
    lite.append([_record(3), _record(4)])
    lite._enqueue(_Write("explanation", [tuple(expl[1][1:6])])).result()
    rep = pg_rows["replays"][0]
    lite._enqueue(_Write("replay", [tuple(rep[1:7])])).result()
    lite.append([_record(5)])
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    for table, rows in pg_rows.items():
        lite_hashes = [r[0] for r in db.execute(f"SELECT chain_hash FROM {table} ORDER BY seq")]
        assert lite_hashes == [r[-1] for r in rows], table
    db.close()
    lite.close()


def test_a_group_with_a_decision_already_recorded_commits_the_others(pg):
    log = PostgresAuditLog(pg)
    log.append([_record(0)])

    def more():
        return [log.submit([_record(1)]), log.submit([_record(0)]), log.submit([_record(2)])]

    futures, _ = _queued_behind_a_held_head(pg, log, more)
    assert futures[0].result(60) == 1 and futures[2].result(60) == 1
    with pytest.raises(Exception, match="duplicate key"):
        futures[1].result(60)
    log.close()
    report = verify_chain_pg(pg)
    assert report.intact, report.broken
    assert report.rows["decisions"] == 4


def test_the_replay_check_answers_as_the_full_query(pg):
    """``by_txn`` asks a prepared ``SELECT 1`` through libpq first (the replay check of every new
    transaction); what it answers is what the full query answers: None for an unknown txn_id, the
    recorded decision (read by psycopg) for a known one, also when the cheap query cannot answer."""
    log = PostgresAuditLog(pg)
    try:
        log.append([_record(i, "r") for i in range(3)])
        assert log.by_txn("Tnever") is None and log._absent_prepared
        assert log._surely_absent("Tnever") and not log._surely_absent("Tr1")
        got = log.by_txn("Tr1")
        assert got is not None and got.request_id == "Rr0001" and got.input == {"txn_id": "Tr1", "amount": 11.0}
        again = log._one("txn_id", "Tr1")
        assert (got.seq, got.chain_hash, got.decision) == (again.seq, again.chain_hash, again.decision)
        np.testing.assert_array_equal(got.features, again.features)
        # a NUL (which libpq would cut the parameter at) and a failing statement go to the full query
        assert not log._surely_absent("Tr1\x00x")
        log._ABSENT = b"no_such_statement"
        log._absent_prepared = True
        assert not log._surely_absent("Tnever")
        assert log.by_txn("Tnever") is None and log.by_txn("Tr2").request_id == "Rr0002"
    finally:
        log.close()
