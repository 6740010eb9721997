"""Durable embedded store behind the online feature state (SQLite by default).

The store keeps every processed transaction (its contract fields and the feature row it got) in an
append-only table, plus occasional snapshots of the in-memory state. A restarted service loads the
latest snapshot and replays the transactions stored after it, so it continues exactly where it
stopped. The interface is small (:class:`FeatureStore`) so that a server-grade store can take over.

The SQLite store's snapshots live in a file beside the database (:attr:`SQLiteFeatureStore.snapshot_path`,
written by :func:`write_snapshot_file`), so that a forked child can write one without touching the
database; its ``snapshots`` table is still read (snapshots of earlier versions).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
import uuid
import zlib
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol

import numpy as np

from amlscore.storage.private import open_private, private_database
from amlscore.storage.wal import WalCheckpointer

log = logging.getLogger(__name__)


_EVENT_DAY = "substr(json_extract(record, '$.timestamp'), 1, 10)"  # the date an event's timestamp is written with
_encode_json = json.JSONEncoder(separators=(",", ":"), default=str).encode  # built once: ~30 % faster than dumps


class FeatureStore(Protocol):
    """What the online state needs from durable storage."""

    def get_features(self, txn_id: str) -> np.ndarray | None: ...
    def append(self, txn_id: str, record: Mapping[str, Any], features: np.ndarray) -> int: ...
    def events_after(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]: ...
    def recent_events(self, days: float) -> Iterator[tuple[dict[str, Any], np.ndarray]]: ...
    def save_snapshot(self, seq: int, blob: bytes) -> None: ...
    def latest_snapshot(self) -> tuple[int, bytes] | None: ...
    def last_seq(self) -> int: ...
    def close(self) -> None: ...


class SQLiteFeatureStore:
    """SQLite in WAL mode: each append is its own committed transaction before the feature row is
    returned (no batching), so a restarted service finds every transaction whose row it returned.

    Durability, precisely:

    * ``synchronous=NORMAL`` (the default): a commit is written to the WAL file but not fsynced. It
      survives a crash or kill of the process (the data is in the operating system's cache); after a
      power cut or an operating-system crash the database is still consistent, but the transactions
      committed since the last checkpoint (which fsyncs the WAL first; one runs every
      ``checkpoint_every`` appends or ``checkpoint_seconds``, see below) may be missing (the state
      then continues from the last one kept, and the serving layer's audit log, fsynced per
      decision, names what was decided).
    * ``durable=True`` sets ``FULL``: an fsync per commit, which survives a power cut too.

    WAL checkpoints run off the request path: the writing connection has ``wal_autocheckpoint=0``
    and a daemon thread with its own connection (:class:`amlscore.storage.wal.WalCheckpointer`) runs
    ``wal_checkpoint(PASSIVE)`` every ``checkpoint_every`` appends (200 transactions are ~620 pages,
    ~2.6 MB of WAL: small checkpoints, whose fsyncs do not hold up the audit log's for long), and
    every ``checkpoint_seconds`` when anything was appended. A passive checkpoint never blocks the writer,
    but the WAL only starts again from its beginning when a write finds it wholly copied, which
    appends arriving during every checkpoint (a replay, batches) can keep from ever happening. So
    once the WAL holds more than ``checkpoint_pages`` pages, the thread copies what came meanwhile
    while holding the writer's lock: two fsyncs of little data, during which an append waits (5-10 ms
    on the project VM, more under heavy disk writes; about once per 2,000 appends in a replay at full
    speed, rarely at serving rates), where a checkpoint in the committing call paused 15-30 ms once
    per ~1,000. :meth:`close` stops the thread and truncates the WAL.
    """

    def __init__(self, path: str | Path, *, durable: bool = False, checkpoint_pages: int = 4000,
                 checkpoint_every: int = 200, checkpoint_seconds: float = 2.0) -> None:
        self.path = private_database(path)  # owner-only, as its -wal and -shm files
        self._lock = threading.Lock()
        self._synchronous = "FULL" if durable else "NORMAL"
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={self._synchronous}")
        # No checkpoint in the committing call: the checkpoint thread (started by the first append) does them.
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY,
                txn_id TEXT NOT NULL UNIQUE,
                record TEXT NOT NULL,
                features BLOB NOT NULL
            );
            CREATE TABLE IF NOT EXISTS snapshots (
                seq INTEGER PRIMARY KEY,
                blob BLOB NOT NULL
            );
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            """
        )
        # An identity that a snapshot file records: a store deleted and created again is another store.
        self._db.execute("INSERT OR IGNORE INTO meta(key, value) VALUES ('store_id', ?)", (uuid.uuid4().hex,))
        self.store_id = str(self.get_meta("store_id"))
        self._wal = WalCheckpointer(self.path, self._synchronous, self._lock, every=checkpoint_every,
                                    seconds=checkpoint_seconds, max_pages=checkpoint_pages)
        self._closed = False

    @property
    def snapshot_path(self) -> Path:
        """Where the state's snapshot file lives: beside the database (see :func:`write_snapshot_file`)."""
        return self.path.with_name(self.path.name + ".snapshot")

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def get_features(self, txn_id: str) -> np.ndarray | None:
        row = self._db.execute("SELECT features FROM events WHERE txn_id = ?", (txn_id,)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float64).copy()

    def append(self, txn_id: str, record: Mapping[str, Any], features: np.ndarray) -> int:
        payload = _encode_json(record)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO events(txn_id, record, features) VALUES (?, ?, ?)",
                (txn_id, payload, np.ascontiguousarray(features, dtype=np.float64).tobytes()),
            )
            self._wal.wrote()
            return int(cur.lastrowid or 0)

    def txn_id_at(self, seq: int) -> str | None:
        """The ``txn_id`` of event ``seq`` (None when there is none): ties a snapshot to this history."""
        row = self._db.execute("SELECT txn_id FROM events WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else str(row[0])

    def events_after(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        cur = self._db.execute("SELECT seq, record FROM events WHERE seq > ? ORDER BY seq", (seq,))
        for s, rec in cur:
            yield int(s), json.loads(rec)

    def recent_events(self, days: float) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        """Every event dated within ``days`` of the latest one, with its feature row, in seq order; a few more.

        The cut is made in SQL on the calendar date the timestamps are written with, with two days'
        margin for their offsets, so only the recent part of the table is decoded (a service starting
        on a year of history reads its rating window, not the year); callers that need an exact
        instant check each event's time themselves.
        """
        latest = self._db.execute(f"SELECT MAX({_EVENT_DAY}) FROM events").fetchone()[0]
        if latest is None:
            return
        try:
            first = (date.fromisoformat(str(latest)) - timedelta(days=math.ceil(days) + 2)).isoformat()
        except ValueError:  # not an ISO date: no cut, every event
            first = ""
        cur = self._db.execute(f"SELECT record, features FROM events WHERE {_EVENT_DAY} >= ? ORDER BY seq", (first,))
        for rec, feats in cur:
            yield json.loads(rec), np.frombuffer(feats, dtype=np.float64).copy()

    def save_snapshot(self, seq: int, blob: bytes) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("INSERT OR REPLACE INTO snapshots(seq, blob) VALUES (?, ?)", (seq, blob))
            self._db.execute("DELETE FROM snapshots WHERE seq < ?", (seq,))  # keep only the newest
            self._db.execute("COMMIT")

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        row = self._db.execute("SELECT seq, blob FROM snapshots ORDER BY seq DESC LIMIT 1").fetchone()
        return None if row is None else (int(row[0]), bytes(row[1]))

    def last_seq(self) -> int:
        row = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()
        return int(row[0])

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def close(self) -> None:
        """Stop the checkpoint thread, copy and truncate the WAL, close."""
        if self._closed:
            return
        self._closed = True
        self._wal.stop()
        with self._lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:  # e.g. another connection still reading: closing is what matters
                log.warning("final WAL checkpoint of %s failed: %s", self.path, exc)
            self._db.close()


_SNAPSHOT_MAGIC = b"amlscore feature-state snapshot 1\n"
_MAX_HEADER = 64 * 1024
_SYNC_CHUNK = 8 * 2**20


class SnapshotFileError(ValueError):
    """A snapshot file is unreadable: not one, truncated or damaged."""


def write_snapshot_file(path: str | Path, header: Mapping[str, Any], blob: bytes) -> None:
    """Replace ``path`` atomically by ``header`` (JSON) and ``blob`` with their length and CRC-32.

    Written to a temporary file in the same folder, fsynced, renamed over ``path``, then the folder
    fsynced, so ``path`` is always either the old snapshot or the whole new one, also after a power
    cut. Nothing but file I/O: safe in a forked child (no locks, threads or SQLite).
    """
    path = Path(path)
    head = json.dumps({**header, "length": len(blob), "crc32": zlib.crc32(blob)}, sort_keys=True).encode() + b"\n"
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        fd = open_private(tmp)  # owner-only: the state of every customer
        try:
            _write_all(fd, _SNAPSHOT_MAGIC + head)
            view = memoryview(blob)
            for start in range(0, len(view), _SYNC_CHUNK):
                _write_all(fd, view[start:start + _SYNC_CHUNK])
                # flushed chunk by chunk: one flush of the whole file would hold up every other fsync
                # meanwhile (e.g. the SQLite checkpoint's, under the store's writer lock) for tens of ms
                os.fdatasync(fd)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)  # the rename itself is durable
    finally:
        os.close(folder)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def read_snapshot_file(path: str | Path) -> tuple[dict[str, Any], bytes] | None:
    """The header and blob of a snapshot file; None when there is no file.

    Raises :class:`SnapshotFileError` when it is not a whole, undamaged snapshot file.
    """
    try:
        with open(path, "rb") as f:
            if f.readline(len(_SNAPSHOT_MAGIC)) != _SNAPSHOT_MAGIC:
                raise SnapshotFileError("not a feature-state snapshot file")
            line = f.readline(_MAX_HEADER)
            if not line.endswith(b"\n"):
                raise SnapshotFileError("truncated header")
            try:
                header = json.loads(line)
                length, crc = int(header["length"]), int(header["crc32"])
            except (ValueError, KeyError, TypeError) as exc:
                raise SnapshotFileError(f"unreadable header ({exc})") from None
            blob = f.read(length + 1)
    except FileNotFoundError:
        return None
    if len(blob) != length:
        raise SnapshotFileError(f"{len(blob):,} bytes of state where the header says {length:,}")
    if zlib.crc32(blob) != crc:
        raise SnapshotFileError("checksum mismatch")
    return header, blob


def remove_stale_snapshot_temporaries(path: str | Path) -> None:
    """Delete temporary files of snapshot writers that died before renaming them (their pid is gone)."""
    path = Path(path)
    for tmp in path.parent.glob(f"{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 1)[1])
            if pid <= 0:
                continue
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except (ValueError, OSError):
            pass  # not ours, or a live process of another user


class MemoryFeatureStore:
    """A store that keeps everything in memory: for tests and benchmarks of the state alone."""

    def __init__(self) -> None:
        self._features: dict[str, np.ndarray] = {}
        self._events: list[tuple[int, dict[str, Any]]] = []
        self._snapshot: tuple[int, bytes] | None = None

    def get_features(self, txn_id: str) -> np.ndarray | None:
        return self._features.get(txn_id)

    def append(self, txn_id: str, record: Mapping[str, Any], features: np.ndarray) -> int:
        seq = len(self._events) + 1
        self._events.append((seq, dict(record)))
        self._features[txn_id] = np.asarray(features, dtype=np.float64)
        return seq

    def events_after(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        yield from (e for e in self._events if e[0] > seq)

    def recent_events(self, days: float) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        for _, rec in self._events:  # all of them: a superset, as the protocol allows
            if "txn_id" in rec:  # (a logged customers change is no transaction)
                yield rec, self._features[rec["txn_id"]]

    def save_snapshot(self, seq: int, blob: bytes) -> None:
        self._snapshot = (seq, blob)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        return self._snapshot

    def last_seq(self) -> int:
        return len(self._events)

    def close(self) -> None:
        pass

