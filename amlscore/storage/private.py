"""Owner-only files and folders for the state the service keeps (decisions, features, feedback, keys).

The state folder holds customers' transactions, decisions and the API keys' hashes: no other local
user may read it, whatever the process's umask. Folders are made ``0700`` and files ``0600``
explicitly (``chmod`` after creating, since ``mkdir``/``open`` modes are only ever narrowed by the
umask). A SQLite database is created empty with ``0600`` before SQLite opens it: SQLite gives its
``-wal``, ``-shm`` and ``-journal`` files the mode of the database file.
"""

from __future__ import annotations

import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def private_dir(path: str | Path) -> Path:
    """Create ``path`` (and missing parents) if needed and make it ``0700``; returns it."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    os.chmod(path, DIR_MODE)
    return path


def private_file(path: str | Path) -> Path:
    """Create ``path`` empty if missing and make it ``0600``; returns it."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


def private_database(path: str | Path) -> Path:
    """A SQLite database file (created empty if missing) and its side files, all ``0600``, in a ``0700`` folder."""
    path = Path(path)
    private_dir(path.parent)
    private_file(path)
    for suffix in SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        if side.exists():
            os.chmod(side, FILE_MODE)
    return path


def open_private(path: str | Path, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC) -> int:
    """``os.open`` a file for writing with mode ``0600`` (also when it already existed); returns the descriptor."""
    fd = os.open(path, flags, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    return fd


def restrict_tree(root: str | Path) -> None:
    """Make ``root`` and every folder under it ``0700`` and every file ``0600`` (symbolic links are left alone).

    For files other code writes under the state folder with the process's umask (the model cache
    that MLflow downloads into).
    """
    root = Path(root)
    os.chmod(root, DIR_MODE)
    for folder, dirs, files in os.walk(root):
        for name in dirs:
            p = os.path.join(folder, name)
            if not os.path.islink(p):
                os.chmod(p, DIR_MODE)
        for name in files:
            p = os.path.join(folder, name)
            if not os.path.islink(p):
                os.chmod(p, FILE_MODE)
