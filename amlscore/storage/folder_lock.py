"""One process at a time per folder: an exclusive advisory lock (``flock``) on a file in it.

The stores of a state folder keep in memory what their files go on from (the online feature state
its counters and windows, the audit log the head of its hash chain): two processes writing one folder
would each extend it from their own view, counting transactions twice and breaking the chain. The
lock is the operating system's, so it goes away with its process, however that ends (``kill -9``
included), and a stale lock file never blocks a restart. It is advisory: it keeps out processes that
take it too (every writer of a state folder does), not anything else.
"""

from __future__ import annotations

import os
from pathlib import Path

try:  # POSIX; elsewhere the folder is not locked (the project runs on Linux)
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

from amlscore.storage.private import open_private

__all__ = ["FolderInUse", "FolderLock", "lock_folder"]


class FolderInUse(RuntimeError):
    """Another process holds the folder's lock; ``holder`` is what it wrote in the lock file (its pid)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked by {holder or 'another process'}")
        self.path, self.holder = path, holder


class FolderLock:
    """A held lock; :meth:`release` (or the process's end) lets the next process in."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path, self._fd = path, fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the descriptor drops the flock


def lock_folder(folder: str | Path, name: str = "service.lock") -> FolderLock:
    """Take the exclusive lock of ``folder`` (file ``name`` in it, ``0600``) without waiting.

    Raises
    ------
    FolderInUse
        When another process (or another open of the file in this one) holds it.
    """
    path = Path(folder) / name
    fd = open_private(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    if fcntl is None:  # pragma: no cover
        return FolderLock(path, fd)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        try:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
        finally:
            os.close(fd)
        raise FolderInUse(path, holder) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"process {os.getpid()}\n".encode(), 0)
    return FolderLock(path, fd)
