"""Customers' rating changes kept durably: SQLite (embedded) and PostgreSQL (shared, a real server)."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlscore.serving.feedback import FeedbackStore, RatingChange  # noqa: E402
from servers import postgres_server  # noqa: E402


def _changes() -> list[RatingChange]:
    low = {"level": "low", "score": 31.5, "rated_at": "2026-01-02", "names": {"zh": "低"}}
    high = {"level": "high", "score": 77.0, "rated_at": "2026-01-02", "names": {"zh": "高"}}
    return [
        RatingChange("C1", "2026-01-02T10:00:00Z", "admin-key", "admin", None, low),
        RatingChange("C2", "2026-01-02T10:00:00Z", "admin-key", "admin", low, None),
        RatingChange("C1", "2026-01-03T09:00:00Z", "user:wang", "admin", low, high),
    ]


def _check_round_trip(open_store: Any) -> None:
    store = open_store()
    store.record_rating_changes(_changes()[:2])
    store.record_rating_changes(_changes()[2:])
    store.record_rating_changes([])
    store.close()
    again = open_store()  # another connection: what was committed is there, in order
    assert again.rating_changes("C1") == [_changes()[0], _changes()[2]]
    assert again.rating_changes("C2") == [_changes()[1]]
    assert again.rating_changes("nobody") == []
    again.close()


def test_sqlite_rating_changes_outlive_the_store_and_refuse_edits(tmp_path):
    def open_store() -> FeedbackStore:
        return FeedbackStore(tmp_path / "feedback.sqlite", tmp_path / "feedback")

    _check_round_trip(open_store)
    db = sqlite3.connect(tmp_path / "feedback.sqlite")
    for sql in ("UPDATE rating_changes SET after_json = NULL", "DELETE FROM rating_changes"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            db.execute(sql)


def test_a_failed_insert_leaves_none_of_the_batch(tmp_path):
    store = FeedbackStore(tmp_path / "feedback.sqlite", tmp_path / "feedback")
    bad = RatingChange("C3", "2026-01-04T00:00:00Z", "k", "admin", None, {"x": float("nan")})
    ok = _changes()[0]
    with pytest.raises(ValueError):
        store.record_rating_changes([ok, bad])  # NaN is not JSON: the whole upsert's changes are refused
    assert store.rating_changes("C1") == []
    store.record_rating_changes([ok])
    assert store.rating_changes("C1") == [ok]


@pytest.fixture(scope="module")
def pg_url():
    with postgres_server() as url:
        yield url


def test_postgres_rating_changes_outlive_the_store_and_refuse_edits(pg_url, tmp_path):
    from amlscore.core.audit_pg import connect
    from amlscore.serving.feedback_pg import PostgresFeedbackStore

    def open_store() -> PostgresFeedbackStore:
        return PostgresFeedbackStore(pg_url, tmp_path / "feedback")

    _check_round_trip(open_store)
    conn = connect(pg_url, autocommit=True)
    for sql in ("UPDATE rating_changes SET after_json = NULL", "DELETE FROM rating_changes", "TRUNCATE rating_changes"):
        with pytest.raises(Exception, match="append-only"):
            conn.execute(sql)
    conn.close()
