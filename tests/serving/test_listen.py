"""amlscore.serving.listen: each worker listens on a socket of its own, so connections spread over them.

The workers are forked processes that inherit one listening socket, as BentoML's are. Each drains
its queue greedily (every pending connection at once, as an event loop does) one after the other:
on one shared socket the first takes every connection; with a socket each, the kernel has put each
connection in one worker's queue by a hash of its addresses.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import sys

import pytest

from amlscore.serving.listen import inherited_fd, own_listening_socket, spread_connections

pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT") or sys.platform != "linux",
                                reason="SO_REUSEPORT and fork: Linux")
_CONNECTIONS = 32


def _drain(listener: socket.socket) -> int:
    """Accept every pending connection, as an event loop woken by them does; how many."""
    listener.setblocking(False)
    n = 0
    while True:
        try:
            conn, _ = listener.accept()
        except BlockingIOError:
            return n
        conn.close()
        n += 1


def _worker(fd: int, take_over: bool, ready: mp.Event, go: mp.Event, done: mp.Event, out: mp.Queue) -> None:
    ok = own_listening_socket(fd) if take_over else False
    out.put(("own", ok, os.fstat(fd).st_ino))
    ready.set()
    go.wait(30)
    out.put(("accepted", _drain(socket.socket(fileno=os.dup(fd)))))
    done.set()


def _shared_socket() -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(128)
    s.set_inheritable(True)
    return s


def _run_workers(take_over: bool, n_workers: int = 2) -> tuple[list[int], list[bool], set[int], socket.socket, list]:
    """Fork ``n_workers`` over one shared socket, connect, let them drain one after the other."""
    ctx = mp.get_context("fork")
    shared = _shared_socket()
    port = shared.getsockname()[1]
    counts, owns, inodes = [], [], set()
    clients = []
    procs = []
    events = []
    for _ in range(n_workers):
        ready, go, done, out = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
        p = ctx.Process(target=_worker, args=(shared.fileno(), take_over, ready, go, done, out))
        p.start()
        assert ready.wait(30), "a worker did not start"
        _, ok, ino = out.get(timeout=30)
        owns.append(ok)
        inodes.add(ino)
        procs.append(p)
        events.append((go, done, out))
    for _ in range(_CONNECTIONS):
        clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
    for go, done, out in events:  # one after the other: the first to drain takes what its queue holds
        go.set()
        assert done.wait(30), "a worker did not finish"
        counts.append(out.get(timeout=30)[1])
    for p in procs:
        p.join(30)
    return counts, owns, inodes, shared, clients


def test_one_shared_socket_gives_every_pending_connection_to_the_first_worker():
    counts, owns, _, shared, clients = _run_workers(take_over=False)
    try:
        assert owns == [False, False]
        assert counts == [_CONNECTIONS, 0]
    finally:
        shared.close()
        for c in clients:
            c.close()


def test_a_socket_of_its_own_per_worker_spreads_the_connections():
    counts, owns, inodes, shared, clients = _run_workers(take_over=True)
    try:
        assert owns == [True, True]  # the second after the first stopped the shared socket listening
        assert len(inodes) == 2 and os.fstat(shared.fileno()).st_ino not in inodes
        assert sum(counts) == _CONNECTIONS  # none left waiting on the shared socket, none lost
        assert min(counts) > 0  # each gets its hash share (all on one: probability 2**-31)
        shared.setblocking(False)
        with pytest.raises(OSError):  # the shared socket no longer listens
            shared.accept()
    finally:
        shared.close()
        for c in clients:
            c.close()


def test_a_unix_socket_is_left_as_it_is(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(tmp_path / "s.sock"))
    s.listen(4)
    ino = os.fstat(s.fileno()).st_ino
    try:
        assert own_listening_socket(s.fileno()) is False
        assert os.fstat(s.fileno()).st_ino == ino
    finally:
        s.close()


def test_only_a_bentoml_worker_of_several_takes_its_own_socket():
    worker = ["/venv/lib/python3.11/site-packages/_bentoml_impl/worker/service.py",
              "amlscore.serving.service:AmlScoring",
              "--fd", "7", "--service-name", "amlscore", "--backlog", "2048", "--worker-id", "1"]
    assert inherited_fd(worker) == 7
    assert inherited_fd([worker[0], "--fd=9"]) == 9
    assert inherited_fd(["-m", "_bentoml_impl.worker.service", "x", "--fd", "5"]) == 5
    assert inherited_fd(["/usr/bin/bentoml", "serve", "amlscore.serving.service:AmlScoring"]) is None  # the arbiter
    assert inherited_fd([worker[0], "--fd", "$(circus.sockets.x)"]) is None
    assert spread_connections(1, worker) is False  # one worker: nothing to spread (the descriptor is not touched)
    assert spread_connections(2, ["/usr/bin/bentoml", "serve", "x"]) is False
