"""The audit log's chain over every table, its checkpoint file, and ``amlscore audit verify`` (issue #14, item 8).

Tampering is done as an attacker with write access would: dropping the append-only triggers, then
editing, deleting or cutting rows with plain SQL.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from amlscore.core.audit import AuditLog, AuditRecord, head_path_of, input_hash, verify_chain

ROOT = Path(__file__).resolve().parents[2]


def _record(i: int) -> AuditRecord:
    rec = {"txn_id": f"T{i}", "amount": 10.0 + i}
    return AuditRecord(request_id=f"R{i:04d}", txn_id=f"T{i}", customer_id="C1", decided_at="2026-01-01T00:00:00Z",
                       caller_key_id="k", caller_role="channel", endpoint="score", batch_id=None,
                       input_hash=input_hash(rec), input=rec, features=np.arange(3.0), suspicion_score=12.5 + i,
                       alert=bool(i % 2), model_name="m", model_version="1", feature_set_version="f",
                       feature_params_hash="p", rules_config_hash="r", decision={"x": i})


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state folder whose audit log has 6 decisions, 3 explanations and 4 replays, in several commits."""
    log = AuditLog(tmp_path / "audit.sqlite", sync="normal")
    log.append([_record(i) for i in range(3)])
    log.append([_record(i) for i in range(3, 6)])
    for i in range(3):
        log.append_explanation(f"R{i:04d}", "en", "1", {"i": i})
    log.append_explanation("R0000", "en", "1", {"i": "ignored: the first one written stays"})
    for i in range(4):
        log.append_replay(f"R{i % 2:04d}", f"T{i % 2}", "k", "channel", "score")
    log.close()
    return tmp_path


def _tamper(state: Path, *sql: str) -> None:
    db = sqlite3.connect(state / "audit.sqlite")
    for table in ("decisions", "explanations", "replays"):
        for op in ("update", "delete"):
            db.execute(f"DROP TRIGGER IF EXISTS {table}_no_{op}")
    for statement in sql:
        db.execute(statement)
    db.commit()
    db.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "amlscore.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_an_untouched_log_is_intact_and_the_checkpoint_matches(state: Path) -> None:
    report = verify_chain(state / "audit.sqlite")
    assert report.intact, report.broken
    assert report.rows == {"decisions": 6, "explanations": 3, "replays": 4, "shadow_scores": 0}
    assert report.checkpoint == head_path_of(state / "audit.sqlite") == state / "audit.head"
    assert (state / "audit.head").stat().st_mode & 0o777 == 0o600
    done = _cli("audit", "verify", "--state", str(state))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Intact" in done.stdout


@pytest.mark.parametrize("table, sql, seq", [
    ("decisions", "UPDATE decisions SET suspicion_score = 99 WHERE seq = 4", 4),
    ("decisions", "DELETE FROM decisions WHERE seq = 2", 3),
    ("explanations", "UPDATE explanations SET explanation_json = '{\"i\":7}' WHERE seq = 2", 2),
    ("replays", "UPDATE replays SET caller_role = 'admin' WHERE seq = 3", 3),
    ("replays", "DELETE FROM replays WHERE seq = 1", 2),
])
def test_an_edited_or_removed_row_is_the_first_broken_link(state: Path, table: str, sql: str, seq: int) -> None:
    _tamper(state, sql)
    report = verify_chain(state / "audit.sqlite")
    assert report.broken is not None and (report.broken.table, report.broken.seq) == (table, seq), report.broken
    done = _cli("audit", "verify", "--state", str(state))
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"row seq {seq} of {table}" in done.stdout


@pytest.mark.parametrize("table", ["decisions", "explanations", "replays"])
def test_a_cut_tail_shows_against_the_checkpoint(state: Path, table: str) -> None:
    """Removing the last rows leaves a valid chain; only the checkpoint file tells."""
    _tamper(state, f"DELETE FROM {table} WHERE seq = (SELECT MAX(seq) FROM {table})")
    report = verify_chain(state / "audit.sqlite")
    assert report.broken is not None and report.broken.table == table and report.broken.seq is None
    assert "removed from its end" in report.broken.reason
    done = _cli("audit", "verify", "--state", str(state))
    assert done.returncode == 1 and "removed from its end" in done.stdout


def test_rows_committed_after_the_checkpoint_are_accepted(state: Path) -> None:
    """A crash between a commit and the checkpoint's rewrite leaves the file behind the log: not a break."""
    old = (state / "audit.head").read_text()
    log = AuditLog(state / "audit.sqlite", sync="normal")
    log.append([_record(10)])
    log.close()
    (state / "audit.head").write_text(old)
    assert verify_chain(state / "audit.sqlite").intact


def test_the_chain_continues_after_a_restart(state: Path) -> None:
    log = AuditLog(state / "audit.sqlite", sync="normal")
    log.append([_record(20)])
    log.append_replay("R0020", "T20", "k", "channel", "score")
    log.append_explanation("R0020", "zh", "1", {"x": 1})
    report = log.verify_all()
    log.close()
    assert report.intact and report.rows == {"decisions": 7, "explanations": 4, "replays": 5, "shadow_scores": 0}


def test_a_log_written_before_explanations_and_replays_were_chained_still_opens_and_verifies(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.executescript("""
        CREATE TABLE replays (seq INTEGER PRIMARY KEY AUTOINCREMENT, request_id TEXT NOT NULL, txn_id TEXT NOT NULL,
                              at TEXT NOT NULL, caller_key_id TEXT NOT NULL, caller_role TEXT NOT NULL,
                              endpoint TEXT NOT NULL);
        INSERT INTO replays(request_id, txn_id, at, caller_key_id, caller_role, endpoint)
            VALUES ('R0', 'T0', '2026-01-01', 'k', 'channel', 'score');
    """)
    db.close()
    log = AuditLog(tmp_path / "audit.sqlite", sync="normal")
    log.append_replay("R1", "T1", "k", "channel", "score")
    report = log.verify_all()
    log.close()
    assert report.intact and report.rows["replays"] == 2 and report.unchained["replays"] == 1


def test_verify_without_an_audit_log_exits_2(tmp_path: Path) -> None:
    done = _cli("audit", "verify", "--state", str(tmp_path))
    assert done.returncode == 2 and "no audit log" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "audit.sqlite").exists()  # it never writes
