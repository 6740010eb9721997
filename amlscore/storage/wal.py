"""WAL checkpoints of a SQLite database in a background thread, off the writer's path.

SQLite's automatic checkpoint runs inside the commit that crosses ``wal_autocheckpoint`` pages: it
copies the WAL into the database and fsyncs it, a 15-30 ms pause (more for a large WAL) in whatever
request made that commit. A writer that must not pause (the online feature store, the audit log)
sets ``wal_autocheckpoint=0`` and hands checkpoints to a :class:`WalCheckpointer`: a daemon thread
with its own connection that runs ``wal_checkpoint(PASSIVE)`` every ``every`` writes, and every
``seconds`` when anything was written.

A passive checkpoint never blocks the writer, but the WAL only starts again from its beginning when
a write finds it wholly copied, which writes arriving during every checkpoint (a replay at full
speed, batches) can keep from ever happening. So once the WAL holds more than ``max_pages`` pages,
the thread copies what came meanwhile while holding the writer's lock: two fsyncs of little data,
during which a write waits a few milliseconds, where an automatic checkpoint would pause for the
whole copy.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path
from typing import ContextManager

log = logging.getLogger(__name__)


class WalCheckpointer:
    """Checkpoints of the SQLite database at ``path`` in a daemon thread (see the module docstring).

    Parameters
    ----------
    path : the database file.
    synchronous : the writer's ``synchronous`` setting (``"NORMAL"`` or ``"FULL"``); a checkpoint's
        fsyncs follow the connection that runs it.
    writer_lock : the lock the writer holds while it writes; taken only to finish a checkpoint of a
        WAL past ``max_pages``.
    every, seconds, max_pages : when to checkpoint (see the module docstring).

    The thread starts at the first :meth:`wrote`, so a database opened only to read has none.
    """

    def __init__(self, path: str | Path, synchronous: str, writer_lock: ContextManager[object], *,
                 every: int = 1000, seconds: float = 2.0, max_pages: int = 4000) -> None:
        self.path = Path(path)
        self.synchronous = synchronous
        self.every = max(1, int(every))
        self.seconds = float(seconds)
        self.max_pages = int(max_pages)
        self._writer_lock = writer_lock
        self._since_wake = 0  # writes since the thread was last woken
        self._writes = 0  # writes ever: the thread checkpoints only when it moved
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.passes = 0  # checkpoint passes the thread has run (see wait_for_pass)
        self._passed = threading.Condition()

    def wrote(self, n: int = 1) -> None:
        """The writer committed ``n`` more writes: start the thread, or wake it every ``every`` writes."""
        self._writes += n
        self._since_wake += n
        if self.thread is None:
            self.thread = threading.Thread(target=self._loop, name=f"wal-checkpoint {self.path.name}", daemon=True)
            self.thread.start()
        elif self._since_wake >= self.every:
            self._since_wake = 0
            self._wake.set()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        return db

    def _loop(self) -> None:
        db = self._connect()
        seen = -1
        try:
            while not self._stop.is_set():
                self._wake.wait(self.seconds)
                self._wake.clear()
                if self._stop.is_set():
                    break
                if self._writes == seen:
                    continue
                seen = self._writes
                try:
                    self.checkpoint(db)
                except sqlite3.Error as exc:  # e.g. a full disk: the WAL grows meanwhile; retried on the next wake
                    log.warning("background WAL checkpoint of %s failed: %s", self.path, exc)
                with self._passed:
                    self.passes += 1
                    self._passed.notify_all()
        finally:
            db.close()

    def checkpoint(self, db: sqlite3.Connection | None = None) -> tuple[int, int]:
        """One passive checkpoint (on ``db``, by default a new connection); returns (WAL frames, frames copied).

        When the WAL holds more than ``max_pages`` pages, the frames written meanwhile are copied under
        the writer's lock, so that the next write finds the WAL wholly copied and starts it again.
        """
        own = db is None
        conn = self._connect() if db is None else db
        try:
            _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if frames > self.max_pages:
                with self._writer_lock:
                    _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            return int(frames), int(copied)
        finally:
            if own:
                conn.close()

    def wait_for_pass(self, after: int, timeout: float) -> bool:
        """Wait until the thread has run more than ``after`` passes (True), or ``timeout`` seconds (False).

        For callers that must know a checkpoint ran, whatever the machine's load (the tests).
        """
        with self._passed:
            return self._passed.wait_for(lambda: self.passes > after, timeout)

    def stop(self) -> None:
        """Stop the thread (the writer then truncates the WAL as it closes)."""
        if self.thread is not None:
            self._stop.set()
            self._wake.set()
            self.thread.join()
