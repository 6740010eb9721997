"""Real servers for the tests of the shared backends: redis-server (or valkey-server) and PostgreSQL.

Each starts on a free loopback port in a temporary folder and is stopped by the fixture that
started it. When the server's program is missing or does not start, the test is skipped with the
reason (``make test`` installs them from Debian's packages when it runs as root).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

_PG_BINS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15")]


def _ephemeral_low() -> int:
    """The lowest port the kernel hands out to outgoing connections (Linux: 32768 by default)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port free now, chosen below the kernel's ephemeral range.

    A port the kernel picks with ``bind(0)`` is an ephemeral one: between closing the probe and the
    server binding it, any outgoing connection (to PostgreSQL, Redis, the server under test) may take
    it as its local port, and the server then fails with "Could not bind". Ports below the range are
    never handed out that way.
    """
    import random

    low = _ephemeral_low()
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        port = rng.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:  # pragma: no cover - every probe taken
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond, what: str, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {deadline_s:.0f} s")


@contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server (or valkey-server) on loopback with AOF ``always``; yields its URL."""
    exe = shutil.which("valkey-server") or shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server/valkey-server not installed (apt-get install redis-server; `make test` does it as root)")
    folder = Path(tempfile.mkdtemp(prefix="aml-redis-"))
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
                             "--protected-mode", "yes", "--logfile", str(folder / "redis.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        import redis

        client = redis.Redis(host="127.0.0.1", port=port)

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{exe} exited: {proc.stderr.read().decode(errors='replace')[-500:]}")
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            _wait(up, exe)
        except RuntimeError as exc:
            pytest.skip(f"could not start {exe}: {exc}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)


def _pg_bin() -> Path | None:
    for b in _PG_BINS:
        if (b / "initdb").exists() and (b / "pg_ctl").exists():
            return b
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


@contextmanager
def postgres_server() -> Iterator[str]:
    """A PostgreSQL cluster made by ``initdb`` in a temporary folder, on loopback; yields its URL.

    PostgreSQL refuses to run as root: as root the cluster runs as the ``postgres`` user that
    Debian's package creates.
    """
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL not installed (apt-get install postgresql; `make test` does it as root)")
    run_as: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="aml-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    port = free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    try:
        init = subprocess.run([*run_as, str(bindir / "initdb"), "-D", str(data), "-U", "aml", "--auth=trust",
                               "-E", "UTF8", "--no-sync"], capture_output=True, text=True, env=env)
        if init.returncode != 0:
            pytest.skip(f"initdb failed: {init.stderr.strip()[-500:]}")
        opts = (f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={folder} "
                "-c fsync=on -c max_connections=100 -c shared_buffers=64MB")
        start = subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                                str(folder / "pg.log"), "-w", "-t", "120", "start"], capture_output=True, text=True,
                               env=env)
        if start.returncode != 0:
            log = (folder / "pg.log").read_text(errors="replace")[-800:] if (folder / "pg.log").exists() else ""
            pytest.skip(f"PostgreSQL did not start: {start.stderr.strip()[-300:]} {log}")
        try:
            import psycopg

            with psycopg.connect(f"postgresql://aml@127.0.0.1:{port}/postgres", autocommit=True) as conn:
                conn.execute("CREATE DATABASE amltest")
            yield f"postgresql://aml@127.0.0.1:{port}/amltest"
        finally:
            subprocess.run([*run_as, str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                           capture_output=True, env=env)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
