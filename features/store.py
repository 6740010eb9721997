"""Durable embedded store behind the online feature state (SQLite by default).

The store keeps every processed transaction (its contract fields and the feature row it got) in an
append-only table, plus occasional snapshots of the in-memory state. A restarted service loads the
latest snapshot and replays the transactions stored after it, so it continues exactly where it
stopped. The interface is small (:class:`FeatureStore`) so that a server-grade store can take over.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol

import numpy as np


_encode_json = json.JSONEncoder(separators=(",", ":"), default=str).encode  # built once: ~30 % faster than dumps


class FeatureStore(Protocol):
    """What the online state needs from durable storage."""

    def get_features(self, txn_id: str) -> np.ndarray | None: ...
    def append(self, txn_id: str, record: Mapping[str, Any], features: np.ndarray) -> int: ...
    def events_after(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]: ...
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
      committed since the last checkpoint may be missing (the state then continues from the last one
      kept, and the serving layer's audit log, fsynced per decision, names what was decided).
    * ``durable=True`` sets ``FULL``: an fsync per commit, which survives a power cut too.

    WAL checkpoints run every ``checkpoint_pages`` pages of WAL, inside the committing call (a pause
    of a few milliseconds about once per thousand transactions at the default).
    """

    def __init__(self, path: str | Path, *, durable: bool = False, checkpoint_pages: int = 4000) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        # Checkpoints (copying the WAL into the database, with an fsync) run in the committing call; at
        # 4,000 pages (~16 MB) that is about one transaction in a thousand instead of one in three hundred.
        self._db.execute(f"PRAGMA wal_autocheckpoint={int(checkpoint_pages)}")
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
            return int(cur.lastrowid or 0)

    def events_after(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        cur = self._db.execute("SELECT seq, record FROM events WHERE seq > ? ORDER BY seq", (seq,))
        for s, rec in cur:
            yield int(s), json.loads(rec)

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
        with self._lock:
            self._db.close()


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

    def save_snapshot(self, seq: int, blob: bytes) -> None:
        self._snapshot = (seq, blob)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        return self._snapshot

    def last_seq(self) -> int:
        return len(self._events)

    def close(self) -> None:
        pass

