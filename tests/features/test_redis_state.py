"""The online state over Valkey/Redis (several workers, one log) against a real redis-server.

Parity: the same stream gives the same rows as the embedded backend, whichever replica scores each
transaction. Concurrency: processes scoring transactions of one customer, IP and device at the same
moment lose nothing (counts exact, every row what the serial order gives).
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from amlscore.features.catalogue import FEATURE_NAMES  # noqa: E402
from amlscore.features.events import transaction_records  # noqa: E402
from amlscore.features.online import LateTransactionError, OnlineFeatureState, replay, warm_up  # noqa: E402
from amlscore.features.redis_store import RedisFeatureStore, TrimPolicy  # noqa: E402
from test_point_in_time_and_parity import assert_same_features  # noqa: E402

_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


def test_two_replicas_over_one_log_give_the_embedded_rows(stream, fresh):
    customers, txns = stream
    expected = replay(OnlineFeatureState(customers), txns)
    a = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=1500)
    b = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=0)
    seen_by_b: list[str] = []
    b.on_event = lambda record, row: seen_by_b.append(record["txn_id"])
    got = np.empty_like(expected)
    # each transaction to one of the two, in runs, as a load balancer would spread them
    rng = np.random.default_rng(5)
    for i, record in enumerate(transaction_records(txns)):
        got[i] = (a if rng.random() < 0.5 else b).update_vector(record)
    assert_same_features(expected, got)
    # every transaction claimed once; the log keeps what follows the oldest snapshot kept (trimming is on)
    assert a.store.seq_now() == len(txns) and a.store.count() == len(txns) - a.store.trimmed()
    assert seen_by_b and len(seen_by_b) < len(txns)  # b applied what a counted, and only that

    # a third worker starts from the newest snapshot plus the log after it: same state
    c = OnlineFeatureState(customers, store=RedisFeatureStore(fresh))
    assert c.processed == len(txns)
    assert c.snapshots.last_seq > 0
    later = dict(next(transaction_records(txns.tail(1))))
    later.update(txn_id="after-restart", timestamp=(pd.Timestamp(later["timestamp"]) + pd.Timedelta(minutes=5)).isoformat())
    ref = OnlineFeatureState(customers)
    replay(ref, txns)
    assert_same_features(ref.update_vector(later)[None, :], c.update_vector(later)[None, :])
    assert_same_features(ref.update_vector(later)[None, :], a.update_vector(later)[None, :])  # sent again: stored row


def test_sent_again_late_and_unknown_change_nothing(stream, fresh):
    customers, txns = stream
    first = txns.head(300)
    a = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=0)
    b = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=0)
    rows = replay(a, first)
    records = list(transaction_records(first))
    # the same txn_id through the other worker: the stored row, nothing counted
    np.testing.assert_array_equal(b.update_vector(records[-1]), rows[-1])
    assert a.store.count() == 300
    # older than the customer's latest (which only worker a has seen): refused by the server's script
    late = dict(records[-1], txn_id="late-one",
                timestamp=(pd.Timestamp(records[-1]["timestamp"]) - pd.Timedelta(hours=1)).isoformat())
    with pytest.raises(LateTransactionError):
        b.update_vector(late)
    with pytest.raises(Exception, match="not in the customers table"):
        b.update_vector(dict(records[-1], txn_id="nobody", customer_id="NO-SUCH"))
    assert a.store.count() == 300


def test_a_warm_up_through_the_shared_store_is_seen_by_every_worker(stream, fresh):
    customers, txns = stream
    a = OnlineFeatureState(customers, store=RedisFeatureStore(fresh))
    replayed = warm_up(a, txns.iloc[:-50], days=60)
    assert 0 < replayed < len(txns) - 50
    a.close()
    b = OnlineFeatureState(customers, store=RedisFeatureStore(fresh))
    ref = OnlineFeatureState(customers)
    warm_up(ref, txns.iloc[:-50], days=60)
    tail = txns.iloc[-50:]
    assert_same_features(replay(ref, tail), replay(b, tail))


# -- concurrency: real processes, each its own replica ------------------------------------------------
_N_PROCS, _PER_PROC = 6, 40


def _worker(url: str, customers: pd.DataFrame, proc: int, shared_cust: str, own_cust: str, start: mp.Barrier,
            out: mp.Queue) -> None:
    state = OnlineFeatureState(customers, store=RedisFeatureStore(url), snapshot_every=0)
    start.wait(120)
    t = pd.Timestamp("2025-03-01T10:00:00Z")
    done = []
    for i in range(_PER_PROC):
        cust = shared_cust if i % 2 == 0 else own_cust
        rec = {"txn_id": f"p{proc}-{i}", "timestamp": t.isoformat(), "customer_id": cust, "account_id": f"A-{cust}",
               "direction": "out", "amount": 100.0 + i, "channel": "mobile_banking", "txn_type": "transfer",
               "counterparty_type": "individual", "counterparty_account": f"X{proc}-{i}",
               "ip_address": "203.0.113.7", "device_id": "DEV-SHARED"}
        row = state.update_vector(rec)
        done.append((rec["txn_id"], row.tobytes()))
    out.put((proc, done))


def test_concurrent_workers_on_one_customer_ip_and_device_lose_nothing(stream, fresh):
    customers, _ = stream
    ids = customers["customer_id"].astype(str).tolist()
    shared, own = ids[0], ids[1:1 + _N_PROCS]
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(_N_PROCS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(fresh, customers, p, shared, own[p], barrier, out)) for p in range(_N_PROCS)]
    for p in procs:
        p.start()
    results = dict(out.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    total = _N_PROCS * _PER_PROC
    store = RedisFeatureStore(fresh)
    assert store.count() == total and store.seq_now() == total  # every claim once, no gap
    rows = {txn: np.frombuffer(b) for done in results.values() for txn, b in done}
    assert len(rows) == total

    # the serial order the log fixed, replayed by one embedded state, gives every row the workers returned
    ref = OnlineFeatureState(customers)
    order = []
    for seq, record in store.events_after(0):
        order.append(record["txn_id"])
        expected = ref.update_vector(record)
        assert_same_features(expected[None, :], rows[record["txn_id"]][None, :])
    assert len(order) == total
    # and the counts are exact: the last logged row of the shared customer counts all of its transactions,
    # the shared IP and device every customer that used them
    last_shared = [t for t in order if int(t.split("-")[1]) % 2 == 0][-1]
    row = rows[last_shared]
    assert row[_IDX["out_cnt_24h"]] == _N_PROCS * _PER_PROC // 2
    assert row[_IDX["ip_customers_24h"]] == _N_PROCS + 1
    assert row[_IDX["device_customers_24h"]] == _N_PROCS + 1


def test_the_claim_brings_the_entries_to_catch_up_in_the_same_round_trip(stream, fresh, monkeypatch):
    """Worker b's claim returns what a claimed meanwhile; its catch-up then reads no more from Redis,
    and the rows are still the embedded ones (also when the entries exceed one batch)."""
    import amlscore.features.redis_store as rs

    customers, txns = stream
    records = list(transaction_records(txns.head(120)))
    expected = replay(OnlineFeatureState(customers), txns.head(120))
    monkeypatch.setattr(rs, "_BATCH", 7)  # so that one catch-up below spans several batches
    a = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=0)
    b = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=0)
    reads = {"a": 0, "b": 0}
    for name, state in (("a", a), ("b", b)):
        real = state.store._r.xrange

        def counted(*args, _real=real, _name=name, **kwargs):
            reads[_name] += 1
            return _real(*args, **kwargs)

        state.store._r.xrange = counted
    got = np.empty_like(expected)
    runs = [(a, 5), (b, 1), (a, 3), (b, 2), (a, 20), (b, 4)]  # b's 3rd run catches up 20 entries: 3 batches
    i = 0
    while i < len(records):
        for state, n in runs:
            for _ in range(n):
                if i < len(records):
                    got[i] = state.update_vector(records[i])
                    i += 1
    assert_same_features(expected, got)
    # every catch-up came with the claim, but for the entries beyond its 7: after each of a's runs of
    # 20 (three of them in 120 records), b read the other 13 in two XRANGE calls (7, then 6)
    assert reads == {"a": 0, "b": 3 * 2}


def test_a_snapshot_replaces_only_an_older_one_and_leaves_one_blob(fresh):
    import redis

    store = RedisFeatureStore(fresh, trim=TrimPolicy(keep_snapshots=1))  # (several kept: test_redis_trim.py)
    client = redis.Redis.from_url(fresh)
    store.save_snapshot(0, b"warm-up")
    assert store.latest_snapshot() == (0, b"warm-up")
    store.save_snapshot(5, b"five" * 1000)
    store.write_snapshot_in_child(3, b"three")  # older: refused
    store.save_snapshot(0, b"again")  # a warm-up's never replaces a later one
    assert store.latest_snapshot() == (5, b"five" * 1000)
    store.write_snapshot_in_child(8, b"eight")
    assert store.latest_snapshot() == (8, b"eight")
    blobs = client.keys(store.keys["snap"] + ":blob:*")
    assert len(blobs) == 1 and client.get(blobs[0]) == b"eight"  # the replaced and refused blobs are gone
    assert client.ttl(blobs[0]) == -1  # the stored one does not expire (a blob without a pointer would)

    # a snapshot stored in the hash itself (as an earlier release wrote it) is still read
    client.delete(store.keys["snap"], store.keys["snaps"], *blobs)
    client.hset(store.keys["snap"], mapping={"seq": 4, "blob": b"legacy"})
    assert store.latest_snapshot() == (4, b"legacy")
    store.save_snapshot(9, b"nine")
    assert store.latest_snapshot() == (9, b"nine")
    assert client.hget(store.keys["snap"], "blob") is None


# -- the per-transaction commands on a kept connection (redis_store._Direct) and the client's calls ------
def test_the_kept_connection_and_the_clients_calls_give_the_same_rows_and_replies(stream, fresh):
    """The three commands of every transaction (the row's HGET, the claim, the row's PUT) sent on the
    kept connection give what the client's calls give (``direct=False``, the fallback): the same
    rows, claims and stored rows, with two workers taking turns."""
    import redis

    customers, txns = stream
    head = txns.head(200)
    records = list(transaction_records(head))
    expected = replay(OnlineFeatureState(customers), head)
    for direct in (True, False):
        redis.Redis.from_url(fresh).flushall()
        a = OnlineFeatureState(customers, store=RedisFeatureStore(fresh, direct=direct), snapshot_every=0)
        b = OnlineFeatureState(customers, store=RedisFeatureStore(fresh, direct=direct), snapshot_every=0)
        got = np.array([(a if i % 3 else b).update_vector(r) for i, r in enumerate(records)])
        assert_same_features(expected, got)
        np.testing.assert_array_equal(a.store.get_features(records[7]["txn_id"]), got[7])
        assert a.store.get_features("never-sent") is None
        assert a.store.seq_now() == len(records) == a.store.count()
        assert (a.store._direct._conn is not None) == direct  # the kept connection was used, or never taken
        a.close()
        b.close()


def test_the_kept_connection_falls_back_on_the_clients_call(stream, fresh):
    """A killed connection, a server that lost its scripts and a connection busy in another thread:
    each call is answered by the client's own call (reconnecting, loading the script), and nothing is
    lost or counted twice."""
    import redis

    customers, txns = stream
    head = txns.head(60)
    records = list(transaction_records(head))
    expected = replay(OnlineFeatureState(customers), head)
    a = OnlineFeatureState(customers, store=RedisFeatureStore(fresh), snapshot_every=0)
    admin = redis.Redis.from_url(fresh)
    got = np.empty_like(expected)
    direct = a.store._direct
    fell_back = []
    for i, record in enumerate(records):
        before = direct.fallbacks
        if i == 10:  # the server closes the worker's connections, the kept one too
            for c in admin.client_list():
                if int(c["id"]) != admin.client_id():
                    admin.client_kill_filter(_id=c["id"])
        if i == 20:  # the server forgot the scripts (a restart without them, SCRIPT FLUSH)
            admin.script_flush()
        if i == 30:  # another thread holds the kept connection: the client's call answers
            direct._lock.acquire()
        got[i] = a.update_vector(record)
        if i == 30:
            direct._lock.release()
        if direct.fallbacks > before:
            fell_back.append(i)
    # each time the client answered, and only then (and at the first claim when the server did not know
    # the script yet: the client loads it)
    assert [i for i in fell_back if i] == [10, 20, 30]
    assert_same_features(expected, got)
    assert a.store.seq_now() == len(records) == a.store.count()
    np.testing.assert_array_equal(a.store.get_features(records[-1]["txn_id"]), got[-1])
    assert a.store._direct._conn is not None  # a new kept connection after the killed one
    a.close()
