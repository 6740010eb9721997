"""The ratings' behaviour window of an engine over the shared store (real redis-server), once the store
has trimmed its log and feature rows: it comes from the state's snapshot, and holds exactly what the
embedded store's recent events give (every transaction within the window of the latest one)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers import redis_server  # noqa: E402


def _rows(log) -> dict[str, list[tuple[int, str | None, list[float]]]]:
    return {c: [(t, cp, v.tolist()) for t, cp, v in log.recent.rows_of(c)] for c in log.recent.customers()
            if log.recent.rows_of(c)}


def test_a_restarted_engine_over_a_trimmed_store_has_the_whole_rating_window(tmp_path: Path, monkeypatch, caplog) -> None:
    import redis

    from amlscore.contract import load_dataset
    from amlscore.features.events import timestamp_ns
    from amlscore.features.online import OnlineFeatureState, warm_up
    from amlscore.serving.config import Settings
    from amlscore.features.redis_store import RedisFeatureStore, TrimPolicy
    from amlscore.serving.ratings import BehaviourLog
    from amlscore.serving.scoring import ScoringEngine
    from amlscore.serving.state import rating_window_spec
    from amlscore.synth import SynthConfig, generate_bank, write_bank
    from serving_fakes import FakeLoader

    data = tmp_path / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=120, seed=5)), data)
    with redis_server() as url:
        monkeypatch.setenv("AML_STATE_KEEP_SNAPSHOTS", "1")
        monkeypatch.setenv("AML_STATE_RETRY_HOURS", "2")
        env = {"AML_DATA_DIR": str(data), "AML_STATE_DIR": str(tmp_path / "state"), "AML_WARM_UP_DAYS": "all",
               "AML_AUDIT_SYNC": "normal", "AML_STATE_URL": url}
        first = ScoringEngine(Settings.from_env(env), loader=FakeLoader())
        try:
            before = _rows(first.behaviour)
            ratings_before = dict(first.ratings._summary)
            n = first.state.processed
        finally:
            first.close()

        # the warm-up's snapshot trimmed the whole log and every row older than two hours
        client = redis.Redis.from_url(url)
        assert client.xlen("{aml}:log") == 0 and 0 < client.hlen("{aml}:feat") < n // 100

        second = ScoringEngine(Settings.from_env(env), loader=FakeLoader())
        try:
            assert second.state.processed == n and second.state.recent_complete
            after = _rows(second.behaviour)
            # what the store itself still gives is a sliver of the window: the snapshot carried it
            assert len(list(second.state.store.recent_events(92))) < n // 100
            ratings_after = dict(second.ratings._summary)

            # another worker counts ten more days while this one is idle, and its snapshots trim the log past
            # this one's replica: this one's next catch-up rebuilds it, its rating window and its ratings
            later = _ten_days_later(data)
            other = OnlineFeatureState(second.state.customers, store=RedisFeatureStore(url, trim=TrimPolicy(
                keep_snapshots=1, retry_hours=2)), snapshot_every=500, background_snapshots=False,
                recent_rows=rating_window_spec(second.rules_config))
            for record in later:
                other.update_vector(record)
            assert other.store.trimmed() > n
            with caplog.at_level("WARNING", logger="amlscore.features.online"):
                second.state.catch_up()
            assert second.state.processed == n + len(later)
            assert any("rebuilt from the shared store's snapshot" in r.getMessage() for r in caplog.records)
            rebuilt = _rows(second.behaviour)
            rerated = dict(second.ratings._summary)
        finally:
            second.close()

    # the embedded state's rows over the same data: every transaction within the window of the latest one
    dataset = load_dataset(data, require_reports=False)
    ref = OnlineFeatureState(dataset.customers, reports=dataset.reports)
    warm_up(ref, dataset.transactions, None)
    every = [(rec, ref.store.get_features(rec["txn_id"])) for _, rec in ref.store.events_after(0)]
    expected = BehaviourLog(second.rules_config)
    stamps = [timestamp_ns(rec["timestamp"]) for rec, _ in every]
    limit = max(stamps) - expected.keep_ns
    assert min(stamps) < limit  # 120 days of history, a 92-day window: the cut matters
    for (rec, vec), t in zip(every, stamps):
        if t >= limit:
            expected.add(rec["customer_id"], t, rec.get("counterparty_country"), vec)
    assert len(expected) > 1000
    assert after == before == _rows(expected)
    assert ratings_after == ratings_before and len(ratings_after) > 100

    # after the rebuild: the window over the history plus the ten days, as the embedded state gives it
    for record in later:
        ref.update_vector(record)
    expected = BehaviourLog(second.rules_config)
    every = [(rec, ref.store.get_features(rec["txn_id"])) for _, rec in ref.store.events_after(0)]
    stamps = [timestamp_ns(rec["timestamp"]) for rec, _ in every]
    limit = max(stamps) - expected.keep_ns
    for (rec, vec), t in zip(every, stamps):
        if t >= limit:
            expected.add(rec["customer_id"], t, rec.get("counterparty_country"), vec)
    assert rebuilt == _rows(expected) != after
    assert set(rerated) == set(ratings_after) and rerated != ratings_after  # rated again as of the later day


def _ten_days_later(data: Path) -> list[dict]:
    """The last ten days' transactions again, ten days later, under new ids (after every one counted)."""
    from amlscore.contract import load_dataset
    from amlscore.features.events import transaction_records
    from amlscore.features.offline import ordered_transactions

    txns = ordered_transactions(load_dataset(data, require_reports=False).transactions)
    ts = pd.to_datetime(txns["timestamp"], utc=True)
    tail = txns[(ts > ts.max() - pd.Timedelta(days=10)).to_numpy()].copy()
    tail["timestamp"] = pd.to_datetime(tail["timestamp"], utc=True) + pd.Timedelta(days=10)
    tail["txn_id"] = "L-" + tail["txn_id"].astype(str)
    return list(transaction_records(tail))


@pytest.fixture(autouse=True)
def _no_stray_state_url(monkeypatch):
    monkeypatch.delenv("AML_STATE_URL", raising=False)
