"""What the shared store (Valkey/Redis) keeps once it trims, against a real redis-server.

After N transactions with trimming on, the log holds exactly the entries after the oldest snapshot
kept, the feature rows and txn ids exactly those within the retry window (as the rule says, computed
here from the records), two snapshot blobs and no other; a new worker rebuilds the state an embedded
replay gives and the same rating-window rows; a worker left behind the trim point rebuilds from the
snapshot (on its claim, its catch-up and its customers change) instead of skipping entries; a resend
of a transaction whose row and id were trimmed is refused as late, never counted twice.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlscore.features.catalogue import FEATURE_NAMES  # noqa: E402
from amlscore.features.events import timestamp_ns, transaction_records  # noqa: E402
from amlscore.features.online import LateTransactionError, OnlineFeatureState, replay  # noqa: E402
from amlscore.features.recent_rows import RecentRowsSpec  # noqa: E402
from amlscore.features.redis_store import LogTrimmedError, RedisFeatureStore, TrimPolicy  # noqa: E402
from amlscore.features.registry import customer_records, typed_customers  # noqa: E402
from test_point_in_time_and_parity import assert_same_features  # noqa: E402

_DAY_NS = 86_400 * 10**9
_EVERY, _KEEP, _RETRY_H = 1000, 2, 36.0
_SPEC = RecentRowsSpec(columns=("amount", "is_cash", "out_cnt_24h", "ip_customers_24h"), keep_ns=30 * _DAY_NS)


def _worker(url: str, customers: pd.DataFrame, every: int, policy: TrimPolicy = TrimPolicy(
        keep_snapshots=_KEEP, retry_hours=_RETRY_H)) -> OnlineFeatureState:
    # snapshots written in the counting call, so that they fall at known sequence numbers
    return OnlineFeatureState(customers, store=RedisFeatureStore(url, trim=policy), snapshot_every=every,
                              background_snapshots=False, recent_rows=_SPEC)


def _kept_ids(records: list[dict], every: int, retry_ns: int) -> list[str]:
    """The txn ids the rule keeps: at each snapshot (seq every, 2*every, ...) the expiry queue (claim order)
    loses its head while the head is older than the newest claimed transaction's time minus the window."""
    times = [timestamp_ns(r["timestamp"]) for r in records]
    head = 0
    for seq in range(every, len(records) + 1, every):
        horizon = times[seq - 1] - retry_ns
        while head < seq and times[head] < horizon:
            head += 1
    return [r["txn_id"] for r in records[head:]]


def _window(state: OnlineFeatureState) -> dict[str, list[tuple[int, str | None, list[float]]]]:
    """Per customer, its rows in the rating window, in time order (NaN written as -7 to compare)."""
    assert state.recent is not None
    out: dict[str, list[tuple[int, str | None, list[float]]]] = {}
    for c, t, cp, v in state.recent.events():
        out.setdefault(c, []).append((t, cp, np.nan_to_num(v, nan=-7.0).tolist()))
    return out


def test_after_trimming_the_store_keeps_what_the_configuration_says_and_a_new_worker_rebuilds(stream, fresh):
    import redis

    customers, txns = stream
    records = list(transaction_records(txns))
    n = len(records)
    assert n % _EVERY == 0
    a = _worker(fresh, customers, _EVERY)
    got = np.vstack([a.update_vector(r) for r in records])
    ref = OnlineFeatureState(customers, recent_rows=_SPEC)
    assert_same_features(replay(ref, txns), got)

    client = redis.Redis.from_url(fresh)
    store: RedisFeatureStore = a.store  # type: ignore[assignment]
    # the log: exactly the entries after the oldest of the two snapshots kept (at n - EVERY and n)
    assert store.seq_now() == n
    assert store.trimmed() == n - (_KEEP - 1) * _EVERY
    assert store.count() == (_KEEP - 1) * _EVERY
    assert [int(s) for _, s in client.zrange(store.keys["snaps"], 0, -1, withscores=True)] == [n - _EVERY, n]
    assert len(client.keys(store.keys["snap"] + ":blob:*")) == _KEEP
    # rows and txn ids: exactly those the retry window keeps, far fewer than the transactions
    kept = _kept_ids(records, _EVERY, int(_RETRY_H * 3600 * 10**9))
    assert 0 < len(kept) < n // 20
    assert sorted(k.decode() for k in client.hkeys(store.keys["feat"])) == sorted(kept)
    assert sorted(k.decode() for k in client.hkeys(store.keys["txn"])) == sorted(kept)
    assert client.llen(store.keys["tq"]) == len(kept)

    # a new worker: the newest snapshot plus the log after it give the embedded state and rating window
    c = _worker(fresh, customers, 0)
    assert c.processed == n and c.recent_complete
    assert _window(c) == _window(ref) and sum(map(len, _window(ref).values())) > 100
    later = dict(records[-1], txn_id="after-trim",
                 timestamp=(pd.Timestamp(records[-1]["timestamp"]) + pd.Timedelta(minutes=5)).isoformat())
    assert_same_features(ref.update_vector(later)[None, :], c.update_vector(later)[None, :])
    # a kept transaction sent again: its stored row, nothing counted
    np.testing.assert_array_equal(c.update_vector(records[-2]), got[-2])
    assert store.seq_now() == n + 1


def test_a_resend_of_a_trimmed_transaction_is_refused_never_counted_twice(stream, fresh):
    customers, txns = stream
    records = list(transaction_records(txns))
    a = _worker(fresh, customers, _EVERY)
    for r in records:
        a.update_vector(r)
    store: RedisFeatureStore = a.store  # type: ignore[assignment]
    kept = set(_kept_ids(records, _EVERY, int(_RETRY_H * 3600 * 10**9)))
    seq = store.seq_now()
    # the latest transaction of a customer that stopped before the retry window: its own replica does not
    # find it late (same time), the store has forgotten its id, and still refuses it
    last_of: dict[str, dict] = {}
    for r in records:
        last_of[r["customer_id"]] = r
    quiet = [r for r in last_of.values() if r["txn_id"] not in kept]
    assert quiet
    for r in quiet[:5]:
        assert store.get_features(r["txn_id"]) is None
        with pytest.raises(LateTransactionError):
            a.update_vector(r)
    # and through the claim alone (no replica check): refused as late, nothing logged
    old = records[0]
    claim = store.claim(old, timestamp_ns(old["timestamp"]), "{}")
    assert claim.status == "late"
    assert store.seq_now() == seq


def test_a_worker_behind_the_trim_point_rebuilds_from_the_snapshot(stream, fresh):
    customers, txns = stream
    customers = typed_customers(customer_records(customers))  # the loader's types, as a change is typed
    records = list(transaction_records(txns))
    half = len(records) // 2
    # a KYC change of a customer with later transactions, logged after record half (by the third worker)
    cid = records[-1]["customer_id"]
    change = customers[customers["customer_id"].astype(str) == cid].copy()
    change["declared_annual_income"] = 123_456.0
    ref = OnlineFeatureState(customers, recent_rows=_SPEC)
    expected = np.vstack([replay(ref, txns.iloc[:half + 1]), np.zeros((1, len(FEATURE_NAMES)))])
    ref.upsert_customers(change)
    expected = np.vstack([expected[:half + 1], replay(ref, txns.iloc[half + 1:])])
    a = _worker(fresh, customers, _EVERY)
    idle = [_worker(fresh, customers, 0) for _ in range(3)]  # all three at seq 0 while a counts half the stream
    rebuilt = []
    for w in idle:
        w.on_rebuilt = lambda w=w: rebuilt.append(w)
    for r in records[:half]:
        a.update_vector(r)
    assert a.store.trimmed() > 0  # type: ignore[attr-defined]
    with pytest.raises(LogTrimmedError):  # what the log gives a replica at seq 0 now: an error, not entries
        next(iter(idle[0].store.entries(0)))  # type: ignore[attr-defined]

    # 1. its claim is refused before anything changes; it rebuilds, claims, and gets the embedded row
    w1 = idle[0]
    row = w1.update_vector(records[half])
    assert_same_features(expected[half][None, :], row[None, :])
    assert w1.processed == half + 1 and rebuilt == [w1]
    # 2. its catch-up meets the gap: rebuilt, then at the log's end
    w2 = idle[1]
    assert w2.catch_up() == half + 1 and w2.processed == half + 1 and rebuilt == [w1, w2]
    # 3. its customers change: refused before logging, rebuilt, then logged after everything counted
    w3 = idle[2]
    assert len(w3.upsert_customers(change)) == 1
    assert rebuilt == [w1, w2, w3] and w3.processed == half + 2
    # all four carry on over one log; every row is the embedded one, the change counted from where it was logged
    for i in range(half + 1, len(records)):
        got = (a, w1, w2, w3)[i % 4].update_vector(records[i])
        assert_same_features(expected[i][None, :], got[None, :])
    w1.catch_up()  # what the others counted after its last claim
    assert _window(w1) == _window(ref)


def test_snapshots_beyond_the_kept_ones_and_orphaned_blobs_go(fresh):
    import redis

    client = redis.Redis.from_url(fresh)
    store = RedisFeatureStore(fresh, trim=TrimPolicy(keep_snapshots=3))
    store.save_snapshot(0, b"seed")
    store.save_snapshot(0, b"seed again")  # (a warm-up cut off and started again): one snapshot of seq 0
    assert store.latest_snapshot() == (0, b"seed again") and len(client.keys(store.keys["snap"] + ":blob:*")) == 1
    for seq in (0, 10, 20, 30, 40):
        store.save_snapshot(seq, f"blob-{seq}".encode())
    assert [int(s) for _, s in client.zrange(store.keys["snaps"], 0, -1, withscores=True)] == [20, 30, 40]
    assert len(client.keys(store.keys["snap"] + ":blob:*")) == 3
    assert store.latest_snapshot() == (40, b"blob-40")
    assert store.snapshot_upto(35) == (30, b"blob-30") and store.snapshot_upto(19) is None
    client.set(store.keys["snap"] + ":blob:7:dead", b"left behind")  # no pointer, no expiry: an orphan
    client.set(store.keys["snap"] + ":blob:45:busy", b"in flight", ex=600)  # a writer's, not yet pointed to
    store.save_snapshot(50, b"blob-50")
    left = sorted(k.decode().split(":")[3] for k in client.keys(store.keys["snap"] + ":blob:*"))
    assert left == ["30", "40", "45", "50"]


def test_trimming_off_keeps_the_log_and_rows(stream, fresh):
    customers, txns = stream
    head = txns.head(2500)
    a = _worker(fresh, customers, _EVERY, TrimPolicy(trim=False, keep_snapshots=1))
    replay(a, head)
    store: RedisFeatureStore = a.store  # type: ignore[assignment]
    assert store.count() == len(head) and store.trimmed() == 0
    assert store._r.hlen(store.keys["feat"]) == len(head)
    assert len(store._r.keys(store.keys["snap"] + ":blob:*")) == 1


def test_trim_settings_are_validated(monkeypatch):
    from amlscore.settings import PathSettings

    with pytest.raises(ValueError, match="keep_snapshots"):
        TrimPolicy(keep_snapshots=0)
    with pytest.raises(ValueError, match="retry_hours"):
        TrimPolicy(retry_hours=0)
    monkeypatch.setenv("AML_STATE_KEEP_SNAPSHOTS", "0")
    with pytest.raises(ValueError, match="state_keep_snapshots"):
        PathSettings()
    monkeypatch.setenv("AML_STATE_KEEP_SNAPSHOTS", "3")
    monkeypatch.setenv("AML_STATE_RETRY_HOURS", "0.5")
    monkeypatch.setenv("AML_STATE_TRIM", "off")
    got = PathSettings()
    assert (got.state_keep_snapshots, got.state_retry_hours, got.state_trim) == (3, 0.5, False)
    assert FEATURE_NAMES  # (the catalogue the spec's columns are checked against)
    with pytest.raises(ValueError, match="unknown feature column"):
        RecentRowsSpec(columns=("no_such_feature",), keep_ns=1)


def test_a_worker_whose_catch_up_meets_a_trim_after_its_claim_rebuilds_before_its_own_entry(stream, fresh,
                                                                                              monkeypatch):
    """The claim passed (nothing trimmed yet) but the entries it did not bring are trimmed before the worker
    reads them: it rebuilds from the newest snapshot at or before its own claim, then counts its transaction."""
    import amlscore.features.redis_store as rs

    customers, txns = stream
    records = list(transaction_records(txns.head(101)))
    expected = replay(OnlineFeatureState(customers), txns.head(101))
    monkeypatch.setattr(rs, "_BATCH", 5)  # the claim brings 5 entries; the rest must be read by XRANGE
    a = _worker(fresh, customers, 0, TrimPolicy(keep_snapshots=1, retry_hours=_RETRY_H))
    w = _worker(fresh, customers, 0, TrimPolicy(keep_snapshots=1, retry_hours=_RETRY_H))
    for r in records[:100]:
        a.update_vector(r)
    real = w.store._r.xrange  # type: ignore[attr-defined]
    trims = []

    def trimmed_meanwhile(*args, **kwargs):
        if not trims:  # between w's claim and its read: a's snapshot at seq 100 trims everything before
            a.snapshot()
            trims.append(a.store.trimmed())  # type: ignore[attr-defined]
        return real(*args, **kwargs)

    w.store._r.xrange = trimmed_meanwhile  # type: ignore[attr-defined]
    row = w.update_vector(records[100])
    assert trims == [100] and w.processed == 101
    assert_same_features(expected[100][None, :], row[None, :])
    assert w.store.seq_now() == 101  # type: ignore[attr-defined]
