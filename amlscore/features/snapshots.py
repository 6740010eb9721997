"""Snapshots of the online feature state: where they are written, when, by whom, and which one to trust.

The streaming computation (:class:`amlscore.features.online.OnlineFeatureState`) only knows how to
turn its state into bytes and back. This module decides the rest:

* **where**: the store's snapshot file (:func:`amlscore.features.store.write_snapshot_file`) when it
  has one, else the store's snapshot table (``store.save_snapshot``);
* **when**: every ``every`` transactions (:meth:`SnapshotKeeper.due`), and on demand;
* **by whom**: a forked child, off the request path, when the store has a snapshot file and the
  platform can fork. The request path pays only the fork; the child pickles the state as it was at
  the fork and writes the file. While one child runs no second one starts (an older snapshot must
  never replace a newer one);
* **which one to trust** at a restart: the newest snapshot of this store's history with the same
  feature parameters, feature set and state layout; anything else is ignored with a warning and the
  events rebuild what it would have given.
"""

from __future__ import annotations

import gc
import logging
import os
import pickle
import signal
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from amlscore.features.store import (
    FeatureStore,
    SnapshotFileError,
    read_snapshot_file,
    remove_stale_snapshot_temporaries,
    write_snapshot_file,
)

log = logging.getLogger(__name__)

__all__ = ["SnapshotKeeper", "StateIdentity"]

BlobFn = Callable[[], bytes]


class StateIdentity:
    """What a snapshot must match to be restored: feature parameters, feature set and state layout."""

    def __init__(self, params_hash: str, feature_set: str, state_format: int) -> None:
        self.fields = {"params_hash": params_hash, "feature_set": feature_set, "state_format": state_format}

    def mismatch(self, meta: Any, seq: Any) -> str | None:
        """Why a snapshot (its payload or file header) does not fit; None when it does."""
        if not isinstance(meta, Mapping):
            return "not a state snapshot"
        for key, want in self.fields.items():
            if meta.get(key) != want:
                return f"{key} {meta.get(key)!r}, this state has {want!r}"
        if not isinstance(seq, int) or meta.get("seq") != seq or seq < 0:
            return f"seq {meta.get('seq')!r} where {seq!r} was expected"
        return None


class SnapshotKeeper:
    """Writes, schedules and finds the snapshots of one online state over one store.

    Parameters
    ----------
    store:
        The state's feature store. A store with ``snapshot_path`` gets its snapshots in that file.
    identity:
        What a snapshot must match to be restored.
    every:
        Transactions between periodic snapshots (0: only :meth:`write_now`).
    background:
        Write periodic snapshots from a forked child when the store has a snapshot file and
        ``os.fork`` exists; otherwise they are written in the calling transaction.
    """

    def __init__(self, store: FeatureStore, identity: StateIdentity, every: int, background: bool = True) -> None:
        self.store = store
        self.identity = identity
        self.every = every
        self.file: Path | None = getattr(store, "snapshot_path", None)
        # a store without a file can still be written from a child when it says how (the shared store)
        self._child_writer: Callable[[int, bytes], None] | None = getattr(store, "write_snapshot_in_child", None)
        self.background = bool(background and (self.file is not None or self._child_writer is not None)
                               and hasattr(os, "fork"))
        self.child: int | None = None  # pid of the running background snapshot
        self.child_seq = 0
        self.last_seq = 0  # periodic snapshots count from here

    # -- writing ----------------------------------------------------------------------------------
    def header(self, seq: int, txn_id: str | None) -> dict[str, Any]:
        """The snapshot file's header: the state's identity and the event it was taken at."""
        return {"seq": seq, "txn_id": txn_id, "store_id": getattr(self.store, "store_id", None), **self.identity.fields}

    def write_now(self, seq: int, txn_id: str | None, blob: BlobFn) -> None:
        """Write a snapshot synchronously, after any running background one (so it cannot be replaced)."""
        self.wait()
        if self.file is not None:
            write_snapshot_file(self.file, self.header(seq, txn_id), blob())
        else:
            self.store.save_snapshot(seq, blob())
        self.last_seq = seq

    def due(self, seq: int) -> bool:
        """Whether a periodic snapshot is due at event ``seq``."""
        return bool(self.every) and seq - self.last_seq >= self.every

    def periodic(self, seq: int, txn_id: str | None, blob: BlobFn) -> None:
        """A due periodic snapshot: forked off when it can be, else written now.

        With a background snapshot still running nothing happens, and the next transaction tries again.
        """
        if not self.background:
            self.write_now(seq, txn_id, blob)
            return
        if self.child is not None:
            return
        header = self.header(seq, txn_id)
        try:
            pid = os.fork()
        except OSError as exc:  # e.g. no memory for the page tables: the pause is better than no snapshot
            log.warning("could not fork a background snapshot (%s); writing it in the request path", exc)
            self.write_now(seq, txn_id, blob)
            return
        if pid == 0:  # pragma: no cover - the child, which never returns
            self._child_main(header, blob)
        self.child, self.child_seq = pid, seq
        self.last_seq = seq

    def _child_main(self, header: dict[str, Any], blob: BlobFn) -> None:  # pragma: no cover - the forked child
        """Pickle the state (as it was at the fork), write the file, ``os._exit``.

        Only pickling and file I/O: the inherited SQLite connections, locks and the parent's threads'
        state are never touched, and no cleanup runs (``os._exit``: no atexit, no flush of inherited
        buffers). The collector is off because a collection could finalize an inherited object (an
        unreachable SQLite connection would close the parent's database files).
        """
        code = 1
        try:
            gc.disable()
            try:
                signal.set_wakeup_fd(-1)  # signals to the child must not wake the parent's event loop
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, signal.SIG_DFL)
            except (ValueError, OSError):
                pass
            # Inherited descriptors (sockets, the listening port, database files) stay open in a child
            # for as long as it runs: a closed connection would not end, a restarted service could not
            # bind. Closing them releases no lock of the parent's (POSIX locks are per process).
            os.closerange(3, _max_fd())
            try:  # ~1.5 s of pickling on a machine whose other core serves requests: the service goes first
                os.nice(19)
            except OSError:
                pass
            if self.file is not None:
                write_snapshot_file(self.file, header, blob())
            else:
                assert self._child_writer is not None
                self._child_writer(int(header["seq"]), blob())
            code = 0
        except BaseException:
            try:
                os.write(2, f"background feature-state snapshot failed:\n{traceback.format_exc()}".encode())
            except BaseException:
                pass
        finally:
            os._exit(code)

    def poll(self) -> bool:
        """Collect a finished background snapshot without waiting; True when none runs."""
        return self._reap(block=False)

    def wait(self) -> None:
        """Wait for a running background snapshot."""
        if self.child is not None:
            self._reap(block=True)

    def _reap(self, block: bool) -> bool:
        pid = self.child
        if pid is None:
            return True
        try:
            done, status = os.waitpid(pid, 0 if block else os.WNOHANG)
        except ChildProcessError:  # reaped elsewhere (SIGCHLD ignored?): its outcome is unknown
            log.warning("background snapshot (pid %d, seq %d) was reaped elsewhere; its outcome is unknown",
                        pid, self.child_seq)
            self.child = None
            return True
        if done == 0:
            return False
        self.child = None
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            log.warning("background snapshot of the online feature state at seq %d failed (%s); the previous "
                        "snapshot stays and the next one is due at seq %d", self.child_seq,
                        f"exit code {code}" if code > 0 else f"signal {-code}", self.child_seq + self.every)
        return True

    # -- finding ----------------------------------------------------------------------------------
    def newest(self, last_seq: int) -> dict[str, Any] | None:
        """The payload of the newest usable snapshot, or None (the state is then rebuilt from the events).

        ``last_seq`` is the store's last event: a snapshot beyond it belongs to another history.
        """
        candidates: list[tuple[int, str, bytes]] = []
        if self.file is not None:
            remove_stale_snapshot_temporaries(self.file)
            found = self._file_candidate(last_seq)
            if found is not None:
                candidates.append(found)
        # a store that keeps several snapshots gives the newest one within the history asked for (a
        # replica rebuilding before its own claim must not start past it)
        upto = getattr(self.store, "snapshot_upto", None)
        snap = upto(last_seq) if upto is not None else self.store.latest_snapshot()
        if snap is not None:
            if snap[0] > last_seq:
                log.warning("snapshot table of the feature store: seq %d is beyond the last event (%d); ignored",
                            snap[0], last_seq)
            else:
                candidates.append((snap[0], "the feature store's snapshot table", snap[1]))
        for seq, source, blob in sorted(candidates, key=lambda c: c[0], reverse=True):
            try:
                payload = pickle.loads(blob)
                problem = self.identity.mismatch(payload, seq)
            except Exception as exc:  # a damaged pickle can raise almost anything
                problem = f"unreadable ({type(exc).__name__}: {exc})"
            if not problem:
                self.last_seq = seq
                return payload
            log.warning("online feature state: %s ignored: %s", source, problem)
        return None

    def _file_candidate(self, last_seq: int) -> tuple[int, str, bytes] | None:
        """The snapshot file's (seq, description, blob) when it belongs to this store's history."""
        path = self.file
        assert path is not None
        source = f"snapshot file {str(path)!r}"
        try:
            found = read_snapshot_file(path)
        except (OSError, SnapshotFileError) as exc:
            log.warning("online feature state: %s ignored: %s", source, exc)
            return None
        if found is None:
            return None
        header, blob = found
        seq = header.get("seq")
        problem = self.identity.mismatch(header, seq)
        if not problem and header.get("store_id") != getattr(self.store, "store_id", None):
            problem = "written for another store (store id differs): the database was created again"
        if not problem and seq > last_seq:
            problem = f"seq {seq} is beyond the store's last event ({last_seq})"
        if not problem and seq:
            txn_id_at = getattr(self.store, "txn_id_at", None)
            at = txn_id_at(seq) if txn_id_at is not None else header.get("txn_id")
            if at != header.get("txn_id"):
                problem = f"event {seq} is {at!r} in the store but {header.get('txn_id')!r} in the snapshot"
        if problem:
            log.warning("online feature state: %s ignored: %s", source, problem)
            return None
        return seq, source, blob


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65_536
