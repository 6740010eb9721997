"""Snapshots off the request path: a forked child writes the snapshot file; restarts pick the newest
usable snapshot and ignore damaged or foreign ones; the SQLite store checkpoints its WAL in a thread."""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import amlscore.features.snapshots as snapshots
from amlscore.features.events import transaction_records
from amlscore.features.online import OnlineFeatureState
from amlscore.features.store import MemoryFeatureStore, SQLiteFeatureStore, read_snapshot_file, write_snapshot_file

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="background snapshots need os.fork")


@pytest.fixture()
def records(small_bank):
    _, txns = small_bank
    return list(transaction_records(txns.iloc[:1200]))


@pytest.fixture()
def clean(small_bank, records):
    """The rows of one uninterrupted in-memory state."""
    customers, _ = small_bank
    return _run(OnlineFeatureState(customers), records)


def _run(state: OnlineFeatureState, recs) -> np.ndarray:
    return np.array([state.update_vector(r) for r in recs])


def _same(a: np.ndarray, b: np.ndarray) -> None:
    """Bit-identical rows."""
    assert a.shape == b.shape and a.dtype == b.dtype == np.float64
    np.testing.assert_array_equal(np.ascontiguousarray(a).view(np.int64), np.ascontiguousarray(b).view(np.int64))


def _snapshot_path(db):
    return db.with_name(db.name + ".snapshot")  # SQLiteFeatureStore.snapshot_path, without opening the store


def _file_seq(db) -> int:
    found = read_snapshot_file(_snapshot_path(db))
    assert found is not None
    return int(found[0]["seq"])


@pytest.fixture()
def forks(monkeypatch):
    """Counts the forks (background snapshots started)."""
    calls = []
    real = os.fork

    def fork():
        calls.append(1)
        return real()

    monkeypatch.setattr(os, "fork", fork)
    return calls


@pytest.fixture()
def gated_writes(monkeypatch, tmp_path):
    """Snapshot writes (in the child and in the parent) wait until ``gate`` exists, then log
    ``pid seq`` to ``log`` after writing."""
    gate, log = tmp_path / "gate", tmp_path / "writes.log"
    real = snapshots.write_snapshot_file

    def write(path, header, blob):
        deadline = time.monotonic() + 60
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.005)
        real(path, header, blob)
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {header['seq']}\n")

    monkeypatch.setattr(snapshots, "write_snapshot_file", write)
    return gate, log


@pytest.fixture(params=["fast-child", "slow-child"])
def child_speed(request, monkeypatch):
    """As fast as the machine allows, or a child that takes 0.5 s longer to write (a loaded machine)."""
    if request.param == "slow-child":
        real = snapshots.write_snapshot_file

        def slow(path, header, blob):
            time.sleep(0.5)
            real(path, header, blob)

        monkeypatch.setattr(snapshots, "write_snapshot_file", slow)
    return request.param


def test_background_snapshot_is_written_by_a_child_and_a_restart_continues_identically(tmp_path, small_bank, records,
                                                                                         clean, forks, child_speed):
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    state = OnlineFeatureState(customers, store=db, snapshot_every=500)
    assert state.snapshots.background
    first = _run(state, records[:500])
    assert len(forks) == 1  # at 500
    # the first child must be done before 1000, or that snapshot waits for it (a loaded machine): wait here,
    # so the second fork happens at 1000 whatever the machine's speed
    state.snapshots.wait()
    first = np.vstack([first, _run(state, records[500:1100])])
    assert len(forks) == 2  # at 1000
    state.snapshots.wait()
    assert _file_seq(db) == 1000
    assert state.store.latest_snapshot() is None  # nothing in the database's snapshot table
    del state  # a crash: no final snapshot
    restarted = OnlineFeatureState(customers, store=db, snapshot_every=500)
    assert restarted.processed == 1100 and restarted.snapshots.last_seq == 1000  # from the file, 100 replayed
    rest = _run(restarted, records[1100:])
    _same(np.vstack([first, rest]), clean)
    restarted.close()
    assert _file_seq(db) == len(records)


def test_a_running_child_blocks_a_second_one_and_close_waits_for_it(tmp_path, small_bank, records, clean, forks,
                                                                     gated_writes):
    customers, _ = small_bank
    gate, log = gated_writes
    db = tmp_path / "state.sqlite"
    state = OnlineFeatureState(customers, store=db, snapshot_every=100)
    first = _run(state, records[:350])  # due at 100 (forked), 200 and 300 (the child still runs)
    assert len(forks) == 1 and state.snapshots.child is not None
    assert not state.snapshots.poll()
    child = state.snapshots.child
    threading.Timer(0.3, gate.touch).start()
    state.snapshots.wait()  # as close() and snapshot() do
    assert state.snapshots.child is None
    first = np.vstack([first, _run(state, records[350:351])])  # still due: the next transaction forks
    assert len(forks) == 2
    second = state.snapshots.child
    gate.unlink()
    threading.Timer(0.3, gate.touch).start()
    state.close()  # waits for the second child, then writes its own snapshot
    assert state.snapshots.child is None
    with pytest.raises(ChildProcessError):
        os.waitpid(second, os.WNOHANG)  # already reaped
    writes = [line.split() for line in log.read_text().splitlines()]
    assert writes == [[str(child), "100"], [str(second), "351"], [str(os.getpid()), "351"]]
    assert _file_seq(db) == 351
    restarted = OnlineFeatureState(customers, store=db, snapshot_every=100)
    assert restarted.processed == 351 and restarted.snapshots.last_seq == 351
    _same(np.vstack([first, _run(restarted, records[351:])]), clean)


def test_a_failed_child_is_reported_and_the_previous_snapshot_stays(tmp_path, small_bank, records, monkeypatch,
                                                                     caplog):
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    state = OnlineFeatureState(customers, store=db, snapshot_every=200)
    _run(state, records[:250])
    state.snapshots.wait()
    assert _file_seq(db) == 200

    def broken(path, header, blob):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshots, "write_snapshot_file", broken)
    with caplog.at_level(logging.WARNING, logger="amlscore.features.snapshots"):
        _run(state, records[250:400])
        state.snapshots.wait()
    assert "failed (exit code 1)" in caplog.text
    assert _file_seq(db) == 200
    assert not list(tmp_path.glob("*.tmp-*"))  # the child removed its temporary file


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors through /proc")
def test_the_child_keeps_no_inherited_descriptor(tmp_path, small_bank, records, monkeypatch):
    """The child closes what it inherited (sockets, database files) before writing: a socket the parent
    closes ends at once, and a restarted service can bind its port while a child still writes."""
    customers, _ = small_bank
    log = tmp_path / "fds.log"
    real = snapshots.write_snapshot_file

    def write(path, header, blob):
        fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {' '.join(map(str, fds))}\n")
        real(path, header, blob)

    monkeypatch.setattr(snapshots, "write_snapshot_file", write)
    state = OnlineFeatureState(customers, store=tmp_path / "state.sqlite", snapshot_every=100)
    _run(state, records[:100])
    state.snapshots.wait()
    (pid, *fds), = (line.split() for line in log.read_text().splitlines())
    assert int(pid) != os.getpid()
    assert [int(fd) for fd in fds if int(fd) > 2] in ([], [3])  # at most the listing's own descriptor
    state.close()


def _damage(kind: str, db, tmp_path, customers, records) -> None:
    """Make the snapshot file beside ``db`` unusable in one way; ``db`` then holds 600 events."""
    snap = _snapshot_path(db)
    if kind in ("truncated", "garbage", "bit flip", "other params"):
        state = OnlineFeatureState(customers, store=db, snapshot_every=0)
        _run(state, records[:600])
        state.close()
        data = snap.read_bytes()
        if kind == "truncated":
            snap.write_bytes(data[: len(data) // 2])
        elif kind == "garbage":
            snap.write_bytes(b"\x80\x05garbage" * 100)
        elif kind == "bit flip":
            snap.write_bytes(data[:-100] + bytes([data[-100] ^ 1]) + data[-99:])
        else:
            header, blob = read_snapshot_file(snap)
            write_snapshot_file(snap, {**header, "params_hash": "other"}, blob)
    elif kind == "ahead of the store":  # the database restored from an older copy: same store, fewer events
        state = OnlineFeatureState(customers, store=db, snapshot_every=0)
        _run(state, records[:600])
        state.close()
        shutil.copy(db, tmp_path / "backup.sqlite")
        state = OnlineFeatureState(customers, store=db, snapshot_every=0)
        _run(state, records[600:700])
        state.close()
        assert _file_seq(db) == 700
        shutil.copy(tmp_path / "backup.sqlite", db)
    elif kind in ("store created again", "store created again, longer"):  # an old file beside a new database
        n = 700 if kind == "store created again" else 500
        state = OnlineFeatureState(customers, store=db, snapshot_every=0)
        _run(state, records[:n])
        state.close()
        for suffix in ("", "-wal", "-shm"):
            db.with_name(db.name + suffix).unlink(missing_ok=True)
        state = OnlineFeatureState(customers, store=db, snapshot_every=0, background_snapshots=False)
        _run(state, records[:600])
        del state  # no snapshot of its own
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "garbage", "bit flip", "other params", "ahead of the store",
                                  "store created again", "store created again, longer"])
def test_an_unusable_snapshot_file_is_ignored_and_the_state_rebuilt_from_events(tmp_path, small_bank, records,
                                                                                clean, kind, caplog):
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    _damage(kind, db, tmp_path, customers, records)
    with caplog.at_level(logging.WARNING, logger="amlscore.features.snapshots"):
        restarted = OnlineFeatureState(customers, store=db, snapshot_every=0)
    assert "snapshot file" in caplog.text and "ignored" in caplog.text
    assert restarted.processed == 600 and restarted.snapshots.last_seq == 0  # rebuilt from the 600 events
    rest = _run(restarted, records[600:])
    _same(rest, clean[600:])
    stored = np.array([restarted.store.get_features(r["txn_id"]) for r in records[:600]])
    _same(stored, clean[:600])


def test_the_newest_of_file_and_table_wins(tmp_path, small_bank, records, clean):
    """A store of an earlier version has its snapshot in the table; a newer file wins, an older one loses."""
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    state = OnlineFeatureState(customers, store=db, snapshot_every=0)
    _run(state, records[:300])
    state.snapshot()  # file at 300
    _run(state, records[300:500])
    state.store.save_snapshot(state.processed, state._state_blob())  # table at 500 (as earlier versions did)
    _run(state, records[500:600])
    del state
    restarted = OnlineFeatureState(customers, store=db, snapshot_every=0)
    assert restarted.processed == 600 and restarted.snapshots.last_seq == 500
    _run(restarted, records[600:700])
    restarted.close()  # file at 700
    again = OnlineFeatureState(customers, store=db, snapshot_every=0)
    assert again.processed == 700 and again.snapshots.last_seq == 700
    _same(_run(again, records[700:]), clean[700:])


@pytest.mark.parametrize("how", ["flag off", "no fork"])
def test_the_synchronous_fallback_writes_periodic_snapshots_in_the_call(tmp_path, small_bank, records, clean,
                                                                         monkeypatch, how):
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    if how == "no fork":
        monkeypatch.delattr(os, "fork")
        state = OnlineFeatureState(customers, store=db, snapshot_every=500)
    else:
        def no_fork():
            raise AssertionError("forked with background_snapshots=False")

        monkeypatch.setattr(os, "fork", no_fork)
        state = OnlineFeatureState(customers, store=db, snapshot_every=500, background_snapshots=False)
    assert not state.snapshots.background
    first = _run(state, records[:1100])
    assert state.snapshots.child is None and _file_seq(db) == 1000  # written in the 1000th call
    del state
    restarted = OnlineFeatureState(customers, store=db, snapshot_every=500, background_snapshots=False)
    assert restarted.processed == 1100 and restarted.snapshots.last_seq == 1000
    _same(np.vstack([first, _run(restarted, records[1100:])]), clean)


def test_memory_stores_snapshot_synchronously(small_bank, records, clean, forks):
    customers, _ = small_bank
    store = MemoryFeatureStore()
    state = OnlineFeatureState(customers, store=store, snapshot_every=500)
    assert not state.snapshots.background
    first = _run(state, records[:1100])
    assert not forks and store.latest_snapshot()[0] == 1000
    restarted = OnlineFeatureState(customers, store=store, snapshot_every=500)
    assert restarted.processed == 1100 and restarted.snapshots.last_seq == 1000
    _same(np.vstack([first, _run(restarted, records[1100:])]), clean)


def test_temporary_files_of_dead_writers_are_removed(tmp_path, small_bank):
    customers, _ = small_bank
    db = tmp_path / "state.sqlite"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"state.sqlite.snapshot.tmp-{int(dead.stdout)}"
    live = tmp_path / f"state.sqlite.snapshot.tmp-{os.getpid()}"
    stale.write_bytes(b"half a snapshot")
    live.write_bytes(b"being written")
    OnlineFeatureState(customers, store=db)
    assert not stale.exists() and live.exists()


# -- WAL checkpoints -------------------------------------------------------------------------------
def _wal(db) -> int:
    try:
        return os.path.getsize(f"{db}-wal")
    except FileNotFoundError:
        return 0


def test_background_checkpoints_keep_the_wal_bounded_and_close_truncates_it(tmp_path):
    db = tmp_path / "store.sqlite"
    store = SQLiteFeatureStore(db, checkpoint_pages=300, checkpoint_every=100, checkpoint_seconds=0.05)
    assert store._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # never in the committing call
    record = {"txn_id": "", "note": "x" * 300}
    row = np.arange(100, dtype=np.float64)
    sizes = []
    for i in range(6000):
        store.append(f"T{i}", {**record, "txn_id": f"T{i}"}, row)
        if i % 200 == 199:
            sizes.append(_wal(db))
            time.sleep(0.002)  # a little room for the checkpoint thread on a busy machine
    assert store._wal.thread is not None and store._wal.thread.is_alive()
    # without checkpoints the WAL would hold every append (~6000 x 2 pages); it stays near
    # checkpoint_pages plus what arrives between two checkpoints
    page = store._db.execute("PRAGMA page_size").fetchone()[0]
    unbounded = 6000 * 2 * page
    assert max(sizes) < unbounded / 4, (max(sizes), unbounded)
    reader = sqlite3.connect(db)  # another connection open: close() itself must truncate the WAL
    assert reader.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 6000
    store.close()
    assert not store._wal.thread.is_alive()
    assert _wal(db) == 0
    reader.close()
    again = SQLiteFeatureStore(db)
    assert again.count() == 6000 and again.last_seq() == 6000
    again.close()


def test_a_store_opened_only_to_read_starts_no_thread(tmp_path):
    db = tmp_path / "store.sqlite"
    store = SQLiteFeatureStore(db)
    assert store.count() == 0 and store._wal.thread is None
    store.close()
    store.close()  # twice is harmless


def test_recent_events_reads_the_window_not_the_history(tmp_path: Path) -> None:
    """recent_events(d) holds every event within d days of the latest (whatever offset its timestamp is written
    with), in seq order with its feature row, and skips what lies well before; the in-memory store agrees."""
    from datetime import datetime, timedelta, timezone

    from amlscore.features.events import timestamp_ns

    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    offsets = [timezone.utc, timezone(timedelta(hours=8)), timezone(timedelta(hours=-10)), timezone(timedelta(hours=14))]
    stores = [SQLiteFeatureStore(tmp_path / "recent.sqlite"), MemoryFeatureStore()]
    records = []
    for k in range(400):  # 200 days, two a day, the timestamps written with four different offsets
        t = (start + timedelta(hours=12 * k)).astimezone(offsets[k % 4])
        rec = {"txn_id": f"E{k}", "customer_id": f"C{k % 7}", "timestamp": t.isoformat(), "amount": float(k)}
        records.append(rec)
        for store in stores:
            store.append(rec["txn_id"], rec, np.full(3, float(k)))
    latest = max(timestamp_ns(r["timestamp"]) for r in records)
    day = 86_400 * 10**9
    within = [r["txn_id"] for r in records if timestamp_ns(r["timestamp"]) >= latest - 30 * day]
    for store in stores:
        got = list(store.recent_events(30))
        ids = [rec["txn_id"] for rec, _ in got]
        assert ids == sorted(ids, key=lambda i: int(i[1:]))  # seq order
        assert set(within) <= set(ids)
        for rec, vec in got:
            assert vec.tolist() == [float(rec["txn_id"][1:])] * 3
    sql_ids = [rec["txn_id"] for rec, _ in stores[0].recent_events(30)]
    assert len(sql_ids) <= len(within) + 2 * 4 + 2  # at most the two days' margin (and its ends) more
    assert list(stores[0].recent_events(0.5))  # a window under a day still holds the latest events
    stores[0].close()
    empty = SQLiteFeatureStore(tmp_path / "empty.sqlite")
    assert list(empty.recent_events(30)) == []
    empty.close()


class _Crash(Exception):
    pass


@pytest.mark.parametrize("crash_after", [0, 500])
def test_a_warm_up_cut_off_by_a_crash_is_finished_at_the_next_start(tmp_path, small_bank, crash_after):
    """A kill during the first warm-up leaves part of the history counted (every event is committed). The next
    start must finish it, not take a state with transactions in it as warmed up: the features of what comes
    next then equal those of an uninterrupted warm-up, bit for bit. ``crash_after=0``: killed after the seed
    of the older history and before the first event."""
    from amlscore.features.online import warm_up

    customers, txns = small_bank
    ts = pd.to_datetime(txns["timestamp"], utc=True)
    cut = ts.max() - pd.Timedelta(days=10)
    history, served = txns.loc[(ts <= cut).to_numpy()], list(transaction_records(txns.loc[(ts > cut).to_numpy()]))
    whole = OnlineFeatureState(customers, store=tmp_path / "whole.sqlite")
    total = warm_up(whole, history, days=40)
    assert total > crash_after
    expected = _run(whole, served)
    whole.close()

    store = tmp_path / "features.sqlite"
    state = OnlineFeatureState(customers, store=store)
    count = state.update_vector

    def killed_after(record):  # the kill: after ``crash_after`` events, nothing more
        if state.processed >= crash_after:
            raise _Crash
        return count(record)

    state.update_vector = killed_after
    with pytest.raises(_Crash):
        warm_up(state, history, days=40)
    state.store.close()  # no final snapshot (every event is committed)
    restarted = OnlineFeatureState(customers, store=store)
    assert restarted.processed == crash_after
    assert warm_up(restarted, history, days=40) == total - crash_after
    assert restarted.processed == total
    _same(_run(restarted, served), expected)
    restarted.close()
    again = OnlineFeatureState(customers, store=store)  # a finished warm-up is not run again
    assert warm_up(again, history, days=40) == 0 and again.processed == total + len(served)
    again.close()
