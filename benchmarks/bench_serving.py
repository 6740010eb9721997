"""Benchmark of the scoring service over HTTP on loopback: latency, throughput, errors, memory.

Usage::

    .venv/bin/python benchmarks/bench_serving.py                  # short run (~2-3 minutes with the warm-up)
    .venv/bin/python benchmarks/bench_serving.py --minutes 5      # plus a 5-minute soak at 100 req/s
    .venv/bin/python benchmarks/bench_serving.py --out bench.json # also write the results as JSON

What it does:

1. generates a synthetic bank (``--customers`` x ``--days``, seed fixed) as the service's data
   folder, whose last ``--warm-up-days`` (default 100: more than the longest, 90-day, feature window)
   are replayed into the online state before the clock starts, so every window is full. The load is
   those same days again, in time order, shifted forward by their length (and again, lap after lap),
   with new txn_ids: the bank goes on as it was, each customer, counterparty, IP address and device
   as active as in the warm-up, so the state is at its steady state from the first request and
   what memory does over the soak is the service's doing, not a change in the traffic (an earlier
   version repeated one held-out week: its customers' windows then kept filling for 90 days of laps);
2. trains a model set on the history with the training code into a private MLflow registry in the
   working folder (or, with ``--tracking-uri``, serves the model set an existing registry's
   ``--alias`` points at), then starts the real service (``bentoml serve
   amlscore.serving.service:AmlScoring``, one worker) on 127.0.0.1 with a fresh state folder and API keys
   written by the benchmark;
3. runs the load generator in a second process (asyncio, a minimal HTTP/1.1 client over 16 keep-alive
   connections, its garbage collector off; open loop: request *i* leaves at
   ``t0 + i / rate`` whatever happened before, and its latency counts from that planned instant, so
   a stalled server cannot hide its queueing): single transactions without explanations (channel
   key), single transactions with explanations (compliance key, ``explain: true``), then batches
   (closed loop, one batch in flight);
4. samples the resident memory and the CPU time of the server's processes every second and reports,
   per phase, the server's CPU time per transaction (what the service costs, whatever else runs on
   the machine; on a VM it also varies with the neighbours' use of the host, by half between runs
   of the same code on the project VM), the share of CPU time stolen by the hypervisor, the RSS at the start and the end, its least-squares slope (MiB per minute) and,
   for phases of a minute or more, the RSS every 30 seconds;
5. explains the slow requests: per phase, the audit log's commits from the service's ``/metrics``
   (``amlscore_audit_commit_seconds``: every response waits for its commit and fsync) and, from a
   probe thread that appends 4 KiB and fsyncs every 50 ms in the service's state folder, the
   disk's own fsync latency and how many of the seconds with requests over 25 ms had a disk stall
   (a probe fsync over 10 ms): on a shared VM, the host's other tenants stall the disk now and
   then, which no change to the service can remove while it fsyncs each decision
   (``--audit-sync normal`` shows the service without them; ``--no-disk-probe`` turns the probe off).

Transactions of one customer are never in flight together (the next waits for the previous), so the
service never sees them out of order; the wait counts in the latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEYS = {"bench-channel": ("channel", "bench-channel-key"), "bench-compliance": ("compliance", "bench-compliance-key"),
        "bench-admin": ("admin", "bench-admin-key")}


# -- data ---------------------------------------------------------------------------------------------
def prepare_data(work: Path, customers: int, days: int, load_days: int, seed: int) -> tuple[Path, list[dict[str, Any]]]:
    """Write the bank as the data folder; return it and its last ``load_days`` of transactions (contract records)."""
    import pandas as pd

    from amlscore.contract import write_dataset
    from amlscore.features.events import transaction_records
    from amlscore.features.offline import ordered_transactions
    from amlscore.synth import SynthConfig, generate_bank

    bank = generate_bank(SynthConfig(customers=customers, days=days, seed=seed))
    txns = ordered_transactions(bank.transactions)
    ts = pd.to_datetime(txns["timestamp"], utc=True)
    recent = txns.loc[(ts > ts.max() - pd.Timedelta(days=load_days)).to_numpy()]
    folder = work / "data"
    write_dataset({"customers": bank.customers, "transactions": txns, "reports": bank.reports}, folder)
    return folder, list(transaction_records(recent.reset_index(drop=True)))


class Stream:
    """Transactions in time order, repeated in laps, lap *k* (from 1) shifted by *k* lap lengths with new txn_ids."""

    def __init__(self, records: list[dict[str, Any]], lap_days: float) -> None:
        self.records = records
        self.lap_ns = int(lap_days * 86_400 * 1e9)
        self.i = 0

    def take(self, n: int) -> list[dict[str, Any]]:
        import pandas as pd

        out = []
        for _ in range(n):
            lap, k = divmod(self.i, len(self.records))
            lap += 1  # the records themselves are in the data folder (the warm-up): every lap is new
            rec = dict(self.records[k])
            rec["txn_id"] = f"{rec['txn_id']}-L{lap}"
            t = pd.Timestamp(rec["timestamp"]) + pd.Timedelta(self.lap_ns * lap, unit="ns")
            rec["timestamp"] = t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            out.append(rec)
            self.i += 1
        return out


def train_model(work: Path, data: Path) -> str:
    """Train a model set on the history with the training code and make it champion in a private registry."""
    uri = f"sqlite:///{work / 'mlflow.db'}"
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    try:
        from amlscore.training.tracking import set_alias
        from amlscore.training.pipeline import train_and_register
        from amlscore.training.train import TrainConfig

        t = time.perf_counter()
        result = train_and_register(TrainConfig(data=data, seed=42))
        set_alias("champion", result.model_version)
        print(f"model: trained version {result.model_version} in {time.perf_counter() - t:.1f} s: {result.model_set}",
              flush=True)
    finally:
        if saved is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    return uri


# -- server ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(service: str, port: int, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "bentoml", "serve", service, "--host", "127.0.0.1", "--port", str(port),
           "--working-dir", str(ROOT)]
    logf = open(log_path, "w")
    return subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 600.0) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with code {proc.returncode} before it was ready")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the service was not ready after {timeout:.0f} s")


def stop_server(proc: subprocess.Popen) -> None:
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) CPU ticks of the machine from /proc/stat (Linux), or None."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (fields[7] if len(fields) > 7 else 0), sum(fields[:8])


class RssSampler(threading.Thread):
    """RSS (MiB) and CPU seconds of the server's process tree, once per ``every`` seconds.

    The CPU time is what the server itself spent, whatever else runs on the machine: on a shared
    machine it tells the service's cost apart from the queueing that other processes cause.
    """

    def __init__(self, pid: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples: list[tuple[float, float]] = []
        self.cpu: list[tuple[float, float]] = []
        self.steal: list[tuple[float, int, int]] = []  # (time, the machine's stolen and total CPU ticks)
        self._halt = threading.Event()
        self.t0 = time.perf_counter()

    def run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.Error:
            return
        while not self._halt.is_set():
            self.sample(root)
            self._halt.wait(self.every)

    def sample(self, root: Any = None) -> None:
        import psutil

        try:
            root = root or psutil.Process(self.pid)
            procs = [root] + root.children(recursive=True)
            rss = cpu = 0.0
            for p in procs:
                with p.oneshot():
                    rss += p.memory_info().rss
                    t = p.cpu_times()
                    cpu += t.user + t.system
            now = round(time.perf_counter() - self.t0, 2)
            self.samples.append((now, round(rss / 2**20, 1)))
            self.cpu.append((now, cpu))
            ticks = _cpu_ticks()
            if ticks is not None:
                self.steal.append((now, *ticks))
        except psutil.Error:
            pass

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def window(self, start: float, end: float) -> list[float]:
        return [r for t, r in self.samples if start <= t <= end]

    def steal_between(self, start: float, end: float) -> float | None:
        """The share of the machine's CPU time the hypervisor gave to others (steal), in percent."""
        inside = [(st, tot) for t, st, tot in self.steal if start <= t <= end]
        if len(inside) < 2 or inside[-1][1] == inside[0][1]:
            return None
        return round(100 * (inside[-1][0] - inside[0][0]) / (inside[-1][1] - inside[0][1]), 1)

    def cpu_between(self, start: float, end: float) -> float | None:
        inside = [c for t, c in self.cpu if start <= t <= end]
        return inside[-1] - inside[0] if len(inside) >= 2 else None


class FsyncProbe(threading.Thread):
    """The disk's fsync latency, measured beside the service: 4 KiB appended and ``fdatasync`` every ``every`` s.

    Every response waits for the audit log's commit and its fsync, so a disk whose fsyncs stall
    (the host's other tenants on a shared VM) slows the service without costing it any CPU. The
    probe writes into the service's state folder (the same file system) as SQLite's WAL does (by
    appending) and tells those stalls apart from the service's own pauses.
    """

    def __init__(self, folder: Path, every: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.path = folder / "bench-fsync-probe.bin"
        self.every = every
        self.samples: list[tuple[float, float]] = []  # (wall-clock time, fsync ms)
        self._halt = threading.Event()

    def run(self) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        block, written = b"\0" * 4096, 0
        try:
            while not self._halt.is_set():
                if written >= 4 * 2**20:
                    os.ftruncate(fd, 0)
                    os.lseek(fd, 0, os.SEEK_SET)
                    written = 0
                os.write(fd, block)
                written += len(block)
                t = time.perf_counter()
                os.fdatasync(fd)
                self.samples.append((time.time(), (time.perf_counter() - t) * 1000))
                self._halt.wait(self.every)
        finally:
            os.close(fd)
            self.path.unlink(missing_ok=True)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)

    def between(self, start: float, end: float) -> list[tuple[float, float]]:
        return [(t, ms) for t, ms in self.samples if start <= t <= end]


def audit_commit_histogram(base: str) -> dict[str, Any] | None:
    """The service's ``amlscore_audit_commit_seconds`` histogram from ``/metrics`` (cumulative bucket counts)."""
    import httpx

    try:
        text = httpx.get(f"{base}/metrics", timeout=10).text
    except httpx.HTTPError:
        return None
    buckets: dict[float, float] = {}
    total = count = None
    for line in text.splitlines():
        if line.startswith("amlscore_audit_commit_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
        elif line.startswith("amlscore_audit_commit_seconds_sum "):
            total = float(line.rsplit(" ", 1)[1])
        elif line.startswith("amlscore_audit_commit_seconds_count "):
            count = float(line.rsplit(" ", 1)[1])
    if not buckets or count is None:
        return None
    return {"buckets": dict(sorted(buckets.items())), "sum": total or 0.0, "count": count}


def commit_figures(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    """The audit commits of one phase: how many, their mean, and how many took longer than 25 ms.

    A histogram has no exact percentiles: the p99 is given as the bucket bound it falls under.
    """
    if not before or not after:
        return {}
    n = after["count"] - before["count"]
    if n <= 0:
        return {}
    cum = {le: after["buckets"][le] - before["buckets"].get(le, 0.0) for le in after["buckets"]}
    p99 = next((le for le, c in cum.items() if c >= 0.99 * n), float("inf"))
    over = n - cum.get(0.025, n)
    return {"audit_commits": int(n), "audit_commit_mean_ms": round((after["sum"] - before["sum"]) * 1000 / n, 2),
            "audit_commit_p99_under_ms": p99 * 1000 if p99 != float("inf") else None,
            "audit_commits_over_25ms": int(over)}


def disk_figures(probe: FsyncProbe | None, raw: dict[str, Any], started_wall: float, ended_wall: float,
                 slow_limit_ms: float = 25.0, stall_ms: float = 10.0) -> dict[str, Any]:
    """The probe's fsync latencies during a phase, and how many of the phase's seconds with slow
    requests had a disk stall (a probe fsync over ``stall_ms``) in that second or the one before."""
    if probe is None:
        return {}
    inside = probe.between(started_wall, ended_wall)
    if not inside:
        return {}
    import numpy as np

    ms = np.array([m for _, m in inside])
    out: dict[str, Any] = {"disk_fsync_p50_ms": round(float(np.percentile(ms, 50)), 2),
                           "disk_fsync_p99_ms": round(float(np.percentile(ms, 99)), 2),
                           "disk_fsync_max_ms": round(float(ms.max()), 1)}
    trace, wall_t0 = raw.get("trace"), raw.get("wall_t0")
    if trace and wall_t0 is not None:
        stalled = {int(t - wall_t0) for t, m in inside if m > stall_ms}
        slow = {int(planned) for planned, latency in trace if latency * 1000 > slow_limit_ms}
        out["seconds_with_slow_and_disk_stall"] = sum(1 for sec in slow if sec in stalled or sec - 1 in stalled)
    return out


# -- load generator (runs in its own process) ---------------------------------------------------------
class _Conn:
    """One persistent HTTP/1.1 connection: requests in turn, ``Content-Length`` bodies (what the service sends).

    A hand-rolled client costs ~50 us of CPU per request; general-purpose async clients cost ~1 ms,
    which on two cores would measure the load generator instead of the service.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        if self.writer is None or self.writer.is_closing():
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Content-Type: application/json",
                f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("connection closed by the server")
        status = int(status_line.split()[1])
        length, close = 0, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value.strip())
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.writer.close()
            self.writer = None
        return status, data


async def _pool(url: str, size: int) -> tuple[str, asyncio.Queue]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(size):
        c = _Conn(u.hostname or "127.0.0.1", u.port or 80)
        await c.open()
        pool.put_nowait(c)
    return u.path, pool


async def _open_loop(url: str, headers: dict[str, str], bodies: list[dict[str, Any]], customers: list[str],
                     rate: float) -> dict[str, Any]:
    """Send request *i* at ``t0 + i / rate`` whatever happened before; its latency counts from that instant.

    A dispatcher starts each request at its time (rather than thousands of tasks sleeping from the
    start, whose creation and first steps delayed the first requests by a fraction of a second on
    a busy machine, counted as the server's latency).
    """
    path, pool = await _pool(url, 16)
    payloads = [json.dumps(b).encode() for b in bodies]
    locks: dict[str, asyncio.Lock] = {}
    lat: list[float] = []
    trace: list[tuple[float, float]] = []  # (planned send time from the start, latency), seconds
    errors: dict[str, int] = {}
    loop = asyncio.get_running_loop()

    async def one(planned: float, body: bytes, customer: str) -> None:
        lock = locks.setdefault(customer, asyncio.Lock())
        async with lock:
            conn = await pool.get()
            try:
                status, _ = await conn.post(path, body, headers)
                key = str(status)
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                key = type(exc).__name__
            finally:
                pool.put_nowait(conn)
        lat.append(loop.time() - planned)
        trace.append((planned - t0, lat[-1]))
        if key != "200":
            errors[key] = errors.get(key, 0) + 1

    tasks = []
    t0 = loop.time() + 0.2
    for i, (body, customer) in enumerate(zip(payloads, customers)):
        planned = t0 + i / rate
        delay = planned - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one(planned, body, customer)))
    await asyncio.gather(*tasks)
    wall_t0 = time.time() - (loop.time() - t0)  # the trace's zero on the wall clock (the disk probe's time base)
    return {"latencies": lat, "errors": errors, "elapsed": loop.time() - t0, "trace": sorted(trace), "wall_t0": wall_t0}


async def _closed_batches(url: str, headers: dict[str, str], batches: list[dict[str, Any]]) -> dict[str, Any]:
    path, pool = await _pool(url, 1)
    conn = await pool.get()
    payloads = [json.dumps(b).encode() for b in batches]
    lat: list[float] = []
    errors: dict[str, int] = {}
    n_items = 0
    t0 = time.perf_counter()
    for body in payloads:
        s = time.perf_counter()
        status, data = await conn.post(path, body, headers)
        lat.append(time.perf_counter() - s)
        if status != 200:
            errors[str(status)] = errors.get(str(status), 0) + 1
            continue
        res = json.loads(data)
        n_items += res["n"]
        if res["n_errors"]:
            for item in res["results"]:
                if "code" in item:
                    errors[item["code"]] = errors.get(item["code"], 0) + 1
    return {"latencies": lat, "errors": errors, "elapsed": time.perf_counter() - t0, "items": n_items}


def load_worker(conn: Any, job: dict[str, Any]) -> None:
    """Child process: run one phase and send the raw results back (or the error)."""
    import gc
    import traceback

    gc.collect()
    gc.freeze()  # the requests and their results are all alive to the end: a collection would only pause the clock
    gc.disable()
    try:
        if job["kind"] == "open":
            out = asyncio.run(_open_loop(job["url"], job["headers"], job["bodies"], job["customers"], job["rate"]))
        else:
            out = asyncio.run(_closed_batches(job["url"], job["headers"], job["batches"]))
    except BaseException:
        out = {"failed": traceback.format_exc()}
    conn.send(out)
    conn.close()


def run_in_child(job: dict[str, Any]) -> dict[str, Any]:
    """Run a phase in a fresh process (the load generator never shares a CPU budget with this one's threads)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    p = ctx.Process(target=load_worker, args=(child, job), daemon=True)
    p.start()
    child.close()
    try:
        out = parent.recv()
    except EOFError:
        raise RuntimeError(f"the load generator died (exit code {p.exitcode})") from None
    p.join()
    if "failed" in out:
        raise RuntimeError("the load generator failed:\n" + out["failed"])
    return out


def summarise(name: str, raw: dict[str, Any], n_txn: int, started: float, ended: float, rss: RssSampler) -> dict[str, Any]:
    import numpy as np

    lat = np.array(raw["latencies"]) * 1000
    mem = rss.window(started, ended)
    cpu = rss.cpu_between(started, ended)
    return {
        "server_cpu_ms_per_txn": round(cpu * 1000 / max(n_txn, 1), 2) if cpu is not None else None,
        "cpu_steal_pct": rss.steal_between(started, ended),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "phase": name,
        "requests": int(len(lat)),
        "transactions": int(n_txn),
        "seconds": round(raw["elapsed"], 1),
        "p50_ms": round(float(np.percentile(lat, 50)), 2) if len(lat) else None,
        "p90_ms": round(float(np.percentile(lat, 90)), 2) if len(lat) else None,
        "p99_ms": round(float(np.percentile(lat, 99)), 2) if len(lat) else None,
        "max_ms": round(float(lat.max()), 2) if len(lat) else None,
        "throughput_req_s": round(len(lat) / raw["elapsed"], 1),
        "throughput_txn_s": round(n_txn / raw["elapsed"], 1),
        "errors": raw["errors"],
        "rss_mb_start": mem[0] if mem else None,
        "rss_mb_end": mem[-1] if mem else None,
        "rss_mb_max": max(mem) if mem else None,
        "rss_mb_per_min": _slope_per_min(rss, started, ended),
        "rss_mb_every_30s": _timeline(rss, started, ended, 30.0),
        **_slow_seconds(raw.get("trace")),
    }


def _slow_seconds(trace: list[tuple[float, float]] | None, limit_ms: float = 25.0, worst: int = 6) -> dict[str, Any]:
    """How many requests took longer than ``limit_ms`` and the seconds of the phase they crowd into.

    Slow requests spread evenly point at the cost per request (queueing); slow requests bunched
    into a few seconds point at pauses (a checkpoint, a snapshot, a collection) worth finding.
    """
    if not trace:
        return {}
    by_second: dict[int, list[float]] = {}
    for planned, latency in trace:
        if latency * 1000 > limit_ms:
            by_second.setdefault(int(planned), []).append(latency * 1000)
    ranked = sorted(by_second.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:worst]
    return {f"over_{limit_ms:g}ms": sum(len(v) for v in by_second.values()),
            "seconds_with_slow": len(by_second),
            "worst_seconds": [[sec, len(v), round(max(v), 1)] for sec, v in ranked]}


def _timeline(rss: RssSampler, start: float, end: float, step: float) -> list[float] | None:
    """The RSS (MiB) at the start of the phase and every ``step`` seconds after it (phases of a minute or more)."""
    if end - start < 60:
        return None
    out, next_t = [], start
    for t, r in rss.samples:
        if start <= t <= end and t >= next_t:
            out.append(r)
            next_t += step
    return out


def _slope_per_min(rss: RssSampler, start: float, end: float) -> float | None:
    """Least-squares slope of the RSS over the phase, MiB per minute (0 = flat)."""
    import numpy as np

    pts = [(t, r) for t, r in rss.samples if start <= t <= end]
    if len(pts) < 5 or end - start < 60:  # a slope over a few seconds says nothing
        return None
    t, r = np.array(pts).T
    return round(float(np.polyfit(t / 60.0, r, 1)[0]), 2)


def open_phase(name: str, url: str, headers: dict[str, str], stream: Stream, seconds: float, rate: float,
               extra: dict[str, Any], rss: RssSampler, probe: FsyncProbe | None = None) -> dict[str, Any]:
    n = int(seconds * rate)
    txns = stream.take(n)
    job = {"kind": "open", "url": url, "headers": headers, "rate": rate,
           "bodies": [{"transaction": t, **extra} for t in txns], "customers": [t["customer_id"] for t in txns]}
    base = url.rsplit("/v1/", 1)[0]
    commits_before = audit_commit_histogram(base)
    rss.sample()
    started, started_wall = time.perf_counter() - rss.t0, time.time()
    raw = run_in_child(job)
    rss.sample()
    out = summarise(name, raw, n, started, time.perf_counter() - rss.t0, rss)
    out.update(commit_figures(commits_before, audit_commit_histogram(base)))
    out.update(disk_figures(probe, raw, started_wall, time.time()))
    return out


def batch_phase(name: str, url: str, headers: dict[str, str], stream: Stream, batch_size: int, n_batches: int,
                extra: dict[str, Any], rss: RssSampler, probe: FsyncProbe | None = None) -> dict[str, Any]:
    batches = [{"transactions": stream.take(batch_size), **extra} for _ in range(n_batches)]
    base = url.rsplit("/v1/", 1)[0]
    commits_before = audit_commit_histogram(base)
    rss.sample()
    started, started_wall = time.perf_counter() - rss.t0, time.time()
    raw = run_in_child({"kind": "batch", "url": url, "headers": headers, "batches": batches})
    rss.sample()
    out = summarise(name, raw, raw["items"], started, time.perf_counter() - rss.t0, rss)
    out["batch_size"] = batch_size
    out.update(commit_figures(commits_before, audit_commit_histogram(base)))
    out.update(disk_figures(probe, raw, started_wall, time.time()))
    return out


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ("phase", "requests", "transactions", "seconds", "p50_ms", "p99_ms", "max_ms", "throughput_txn_s", "errors",
            "server_cpu_ms_per_txn", "load_average_1m", "rss_mb_start", "rss_mb_end", "rss_mb_per_min",
            "audit_commit_mean_ms", "audit_commits_over_25ms", "disk_fsync_p99_ms", "disk_fsync_max_ms", "cpu_steal_pct")
    widths = {c: max(len(c), *(len(str(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c)).ljust(widths[c]) for c in cols))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000, help="Synthetic bank size (customers).")
    parser.add_argument("--days", type=int, default=120, help="Synthetic bank window (days): the model trains on the history.")
    parser.add_argument("--warm-up-days", type=int, default=100,
                        help="Days of history replayed into the online state (more than 90: windows at steady state).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seconds", type=float, default=30, help="Duration of each single-transaction phase.")
    parser.add_argument("--rate", type=float, default=100, help="Requests per second of the single-transaction phases.")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batches", type=int, default=30, help="Batches in the batch phase.")
    parser.add_argument("--minutes", type=float, default=0, help="Add a soak phase of this many minutes at --rate.")
    parser.add_argument("--soak-explain", action=argparse.BooleanOptionalAction, default=True,
                        help="Soak with explanations (compliance key) or without (channel key).")
    parser.add_argument("--tracking-uri", default=None,
                        help="Registry holding the model set to serve (its --alias). Default: train one on the "
                             "benchmark's history into a private registry in the working folder.")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--audit-sync", choices=("full", "normal"), default="full")
    parser.add_argument("--score-dispatch", choices=("direct", "bentoml"), default="direct",
                        help="Who answers /v1/score: the gate directly (default) or BentoML's router (AML_SCORE_DISPATCH).")
    parser.add_argument("--disk-probe", action=argparse.BooleanOptionalAction, default=True,
                        help="Measure the disk's fsync latency beside the service (FsyncProbe), to tell the "
                             "disk's stalls from the service's own.")
    parser.add_argument("--stall-report-ms", type=float, default=None,
                        help="Have the service log its event loop's stack whenever it stalls longer than this "
                             "(AML_STALL_REPORT_MS; the server log then says where the slow requests waited).")
    parser.add_argument("--service", default="amlscore.serving.service:AmlScoring", help="Import path of the service.")
    parser.add_argument("--work", type=Path, default=None, help="Working folder (default: a temporary one).")
    parser.add_argument("--out", type=Path, default=None, help="Write the results as JSON here.")
    args = parser.parse_args(argv)

    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.config import Settings
    from amlscore.serving.state import prepare_state

    if args.warm_up_days < 91:
        print(f"note: --warm-up-days {args.warm_up_days} leaves the 90-day windows filling during the run: memory then "
              "grows with them", flush=True)
    if args.days < args.warm_up_days:
        parser.error(f"--days {args.days} is less history than --warm-up-days {args.warm_up_days}")
    work = args.work or Path(tempfile.mkdtemp(prefix="amlscore-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    data, load = prepare_data(work, args.customers, args.days, args.warm_up_days, args.seed)
    print(f"data: {args.customers} customers x {args.days} days, the load repeats the last {args.warm_up_days} "
          f"days' {len(load):,} transactions "
          f"({time.perf_counter() - t:.1f} s)", flush=True)
    if args.tracking_uri is None:
        args.tracking_uri = train_model(work, data)
    state = work / "state"
    write_keys_file(state / "api_keys.yaml", KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state), "AML_WARM_UP_DAYS": str(args.warm_up_days),
           "MLFLOW_TRACKING_URI": args.tracking_uri, "AML_MODEL_ALIAS": args.alias, "AML_AUDIT_SYNC": args.audit_sync,
           "AML_SCORE_DISPATCH": args.score_dispatch,
           "AML_MAX_FUTURE_SECONDS": "0", "BENTOML_DO_NOT_TRACK": "true",
           **({"AML_STALL_REPORT_MS": f"{args.stall_report_ms:g}"} if args.stall_report_ms else {}),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    t = time.perf_counter()
    in_state, _ = prepare_state(Settings.from_env(env))
    warm_s = time.perf_counter() - t
    print(f"warm-up: {in_state:,} transactions into the online state in {warm_s:.1f} s", flush=True)

    port = free_port()
    proc = start_server(args.service, port, env, work / "server.log")
    rss = None
    probe: FsyncProbe | None = None
    results: list[dict[str, Any]] = []
    try:
        ready_s = wait_ready(port, proc)
        print(f"service ready in {ready_s:.1f} s on port {port} (log: {work / 'server.log'})", flush=True)
        rss = RssSampler(proc.pid)
        rss.start()
        if args.disk_probe:
            probe = FsyncProbe(state)
            probe.start()
        base = f"http://127.0.0.1:{port}"
        chan = {"Authorization": "Bearer bench-channel-key"}
        comp = {"Authorization": "Bearer bench-compliance-key"}
        stream = Stream(load, args.warm_up_days)
        # a short warm-up of the HTTP path and the model (not measured)
        open_phase("warm", f"{base}/v1/score", comp, stream, 3, 20, {"explain": True}, rss)
        phases = [
            ("single, no explanation (channel)", lambda: open_phase(
                "single", f"{base}/v1/score", chan, stream, args.seconds, args.rate, {}, rss, probe)),
            ("single + explanation (compliance)", lambda: open_phase(
                "single+explain", f"{base}/v1/score", comp, stream, args.seconds, args.rate, {"explain": True}, rss, probe)),
            (f"batches of {args.batch_size} (channel)", lambda: batch_phase(
                f"batch{args.batch_size}", f"{base}/v1/score_batch", chan, stream, args.batch_size, args.batches, {}, rss, probe)),
            (f"batches of {args.batch_size} (compliance, no explanation)", lambda: batch_phase(
                f"batch{args.batch_size}-compliance", f"{base}/v1/score_batch", comp, stream, args.batch_size,
                max(args.batches // 3, 1), {}, rss, probe)),
        ]
        if args.minutes:
            soak_key, soak_extra = (comp, {"explain": True}) if args.soak_explain else (chan, {})
            soak_name = f"soak{args.minutes:g}m" + ("+explain" if args.soak_explain else "")
            phases.append((f"soak {args.minutes:g} min, single{' + explanation' if args.soak_explain else ''}",
                           lambda: open_phase(soak_name, f"{base}/v1/score", soak_key, stream, args.minutes * 60,
                                              args.rate, soak_extra, rss, probe)))
        for label, run in phases:
            print(f"phase: {label} ...", flush=True)
            results.append(run())
            print(json.dumps(results[-1]), flush=True)
            if results[-1].get("rss_mb_every_30s"):
                print(f"  RSS every 30 s (MiB): {results[-1]['rss_mb_every_30s']}", flush=True)
        import httpx

        health = httpx.post(f"{base}/v1/health", headers=chan, timeout=10).json()
    finally:
        if rss is not None:
            rss.stop()
        if probe is not None:
            probe.stop()
        stop_server(proc)
    print()
    print_table(results)
    rss_all = [r for _, r in rss.samples] if rss else []
    summary = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "load_average_at_end": os.getloadavg(),
        "settings": vars(args) | {"work": str(work), "out": str(args.out) if args.out else None},
        "warm_up_transactions": in_state,
        "warm_up_s": round(warm_s, 1),
        "ready_s": round(ready_s, 1),
        "phases": results,
        "rss_mb_first": rss_all[0] if rss_all else None,
        "rss_mb_last": rss_all[-1] if rss_all else None,
        "rss_samples": rss.samples if rss else [],
        "audit_decisions": health.get("audit_decisions"),
    }
    if args.stall_report_ms:
        log_text = (work / "server.log").read_text(encoding="utf-8", errors="replace")
        summary["event_loop_stalls"] = log_text.count("event loop stalled for")
        print(f"event loop stalls over {args.stall_report_ms:g} ms: {summary['event_loop_stalls']} "
              f"(their stacks: {work / 'server.log'})")
    print(f"\nRSS of the server: {summary['rss_mb_first']} MiB at the first sample, {summary['rss_mb_last']} MiB at the "
          f"last; {summary['audit_decisions']} decisions in the audit log")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
