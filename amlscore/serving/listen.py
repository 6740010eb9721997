"""One listening socket per service worker, so the kernel spreads the connections over the workers.

BentoML (1.4) runs ``N`` workers over one listening socket: its arbiter binds it and every worker
inherits it (``--fd``). A worker's event loop, when woken by pending connections, accepts all of
them, so connections that arrive together (a load balancer's or a client's keep-alive pool) all go
to whichever worker woke first, and stay there: with two workers and the benchmark's 16 keep-alive
connections, py-spy showed the second worker's event loop idle for a whole run while the first
served every request (docs/scale-out.md, "Two workers").

With ``SO_REUSEPORT`` the kernel keeps one accept queue per socket and hands each new connection to
one of them by a hash of its addresses, which spreads many connections about evenly. So a worker,
before it serves (:func:`own_listening_socket`, called when the service module is imported):

1. marks the inherited socket ``SO_REUSEPORT`` (allowed on a bound socket; the kernel then lets
   sockets of the same user bind the same address beside it);
2. binds a socket of its own to the same address, ``SO_REUSEPORT``, and listens;
3. stops the inherited socket listening (``shutdown``): it is shared with the arbiter and the other
   workers, and a connection queued on it would wait for a worker that no longer accepts from it;
4. puts its socket in the inherited descriptor's place (``dup2``), which BentoML then serves.

A worker restarted by BentoML's supervisor does the same with the (no longer listening, still bound)
inherited socket. A worker that dies takes its own queue with it: connections it had not accepted
yet are reset (the client sees a refused or reset connection and sends again), new ones go to the
other workers' sockets. Anything unexpected (no ``SO_REUSEPORT``, a Unix socket, an error) leaves
the inherited socket as it is, with a warning: the service then works as before, unevenly.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Sequence

log = logging.getLogger(__name__)

__all__ = ["spread_connections", "own_listening_socket", "inherited_fd"]

_WORKER_MODULE = "_bentoml_impl.worker.service"  # what BentoML's arbiter runs as each worker


def inherited_fd(argv: Sequence[str]) -> int | None:
    """The listening descriptor a BentoML worker was given (``--fd N``), or None when this is no worker."""
    if not any(_WORKER_MODULE in a or a.endswith(os.path.join("_bentoml_impl", "worker", "service.py")) for a in argv):
        return None
    for i, arg in enumerate(argv):
        value = argv[i + 1] if arg == "--fd" and i + 1 < len(argv) else (arg[5:] if arg.startswith("--fd=") else None)
        if value is not None:
            return int(value) if value.isdigit() else None
    return None


def own_listening_socket(fd: int, backlog: int = 2048) -> bool:
    """Replace the listening socket at descriptor ``fd`` by one of this process's own, ``SO_REUSEPORT``.

    Returns True when done; False (the inherited socket untouched and listening as it was, a
    warning logged) when it cannot be.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        log.warning("SO_REUSEPORT is not available here: the workers share one listening socket, unevenly")
        return False
    try:
        shared = socket.socket(fileno=os.dup(fd))
    except OSError as exc:
        log.warning("listening descriptor %d cannot be read (%s): the workers share one listening socket", fd, exc)
        return False
    try:
        if shared.family not in (socket.AF_INET, socket.AF_INET6) or shared.type != socket.SOCK_STREAM:
            return False
        address = shared.getsockname()
        own = socket.socket(shared.family, socket.SOCK_STREAM)
        try:
            shared.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            own.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            own.bind(address)
            own.listen(backlog)
        except OSError as exc:
            own.close()
            log.warning("could not listen on %s with a socket of this worker's own (%s): the workers share one "
                        "listening socket, unevenly", address[:2], exc)
            return False
        try:
            shared.shutdown(socket.SHUT_RD)  # stops it listening for every process that shares it
        except OSError:
            pass  # ENOTCONN: another worker (or this one's predecessor) did it already
        own.set_inheritable(os.get_inheritable(fd))
        os.dup2(own.fileno(), fd, inheritable=os.get_inheritable(fd))
        own.close()  # the descriptor ``fd`` now holds it
        log.info("worker %d listens on %s with a socket of its own (SO_REUSEPORT)", os.getpid(), address[:2])
        return True
    finally:
        shared.close()


def spread_connections(workers: int, argv: Sequence[str] | None = None, backlog: int = 2048) -> bool:
    """:func:`own_listening_socket` in a BentoML worker of a service with more than one worker; else nothing."""
    if workers < 2:
        return False
    fd = inherited_fd(sys.argv if argv is None else argv)
    if fd is None:
        return False
    argv = list(sys.argv if argv is None else argv)
    if "--backlog" in argv and argv.index("--backlog") + 1 < len(argv) and argv[argv.index("--backlog") + 1].isdigit():
        backlog = int(argv[argv.index("--backlog") + 1])
    return own_listening_socket(fd, backlog)
