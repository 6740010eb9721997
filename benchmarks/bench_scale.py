"""Benchmark of the shared backends (Valkey/Redis online state, PostgreSQL audit log) against the embedded ones.

Usage::

    .venv/bin/python benchmarks/bench_scale.py                     # ~15-20 minutes on 2 cores
    .venv/bin/python benchmarks/bench_scale.py --out scale.json    # also write the results as JSON

It reuses the serving benchmark (``benchmarks/bench_serving.py``: the synthetic bank, the model set
trained into a private registry, the open-loop load generator in its own process, the server's CPU
time per transaction) and starts ``redis-server`` (AOF ``everysec``) and a PostgreSQL cluster
(``initdb`` in a temporary folder) on loopback, as the tests do. Three services, one after another,
each on a fresh state warmed up with the same history:

1. **embedded**, one worker: explained decisions (compliance key) at ``--rate`` req/s;
2. **shared**, one worker: the same load, then a ladder of rates;
3. **shared**, two workers: the same ladder.

It prints the explained p99 at ``--rate`` on both backends, the server's CPU time per explained
decision (shared / embedded), and per worker count the highest rate of the ladder whose p99 stays
within ``--p99-bound`` ms with no error, and their ratio. The server's CPU includes the worker
processes only: redis-server and PostgreSQL are measured apart (their CPU time per decision is
printed too), as they would run on their own machines (docs/scale-out.md). Each phase also records
the cores used by each worker, redis-server, PostgreSQL and the load generator (``cpu_accounting``),
and each worker's share of the workers' CPU, which shows whether the connections spread over them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks", ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_serving as bs  # noqa: E402


def _proc_cpu(names: tuple[str, ...]) -> float:
    """CPU seconds of every process whose name starts with one of ``names`` (redis-server, postgres)."""
    import psutil

    total = 0.0
    for p in psutil.process_iter(["name"]):
        try:
            if (p.info["name"] or "").startswith(names):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _cpu_by_process(server_pid: int) -> dict[str, Any]:
    """CPU seconds so far of each service worker (by pid), of redis-server, of PostgreSQL and of this
    process's finished children (the load generator of each phase runs in one)."""
    import resource

    import psutil

    workers: dict[int, float] = {}
    try:
        for p in psutil.Process(server_pid).children(recursive=True):
            try:
                if "--worker-id" in p.cmdline():
                    t = p.cpu_times()
                    workers[p.pid] = t.user + t.system
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"workers": workers, "redis": _proc_cpu(("redis-server",)), "postgres": _proc_cpu(("postgres",)),
            "load_generator": kids.ru_utime + kids.ru_stime}


def _cpu_accounting(before: dict[str, Any], after: dict[str, Any], seconds: float, requests: int) -> dict[str, Any]:
    """Cores used during a phase by each worker, Redis, PostgreSQL and the load generator, and each
    worker's share of the workers' CPU (how evenly the connections spread over them)."""
    per_worker = [after["workers"][pid] - before["workers"].get(pid, 0.0) for pid in sorted(after["workers"])]
    total = sum(per_worker)
    cores = {"workers": [round(c / seconds, 3) for c in per_worker]}
    for k in ("redis", "postgres", "load_generator"):
        cores[k] = round((after[k] - before[k]) / seconds, 3)
    cores["all"] = round(sum(cores["workers"]) + cores["redis"] + cores["postgres"] + cores["load_generator"], 3)
    return {"cores": cores, "worker_share": [round(c / total, 3) if total else None for c in per_worker],
            "cpu_ms_per_request_all": round(cores["all"] * seconds * 1000 / max(requests, 1), 3)}


def _reset_backends(redis_url: str, pg_url: str) -> None:
    import redis

    from amlscore.core.audit_pg import connect

    redis.Redis.from_url(redis_url).flushall()
    conn = connect(pg_url, autocommit=True)
    for t in ("explanations", "replays", "shadow_scores", "decisions", "audit_heads", "feedback"):
        conn.execute(f"DROP TABLE IF EXISTS {t} CASCADE")
    conn.close()


def run_service(name: str, args: argparse.Namespace, work: Path, data: Path, load: list[dict[str, Any]],
                tracking_uri: str, extra_env: dict[str, str], ladder: list[float]) -> dict[str, Any]:
    """Warm a fresh state, start the service, run the explained phase at --rate and the ladder; stop it."""
    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.config import Settings
    from amlscore.serving.state import prepare_state

    state = work / f"state-{name}"
    write_keys_file(state / "api_keys.yaml", bs.KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state), "AML_WARM_UP_DAYS": str(args.warm_up_days),
           "MLFLOW_TRACKING_URI": tracking_uri, "AML_AUDIT_SYNC": "full", "AML_MAX_FUTURE_SECONDS": "0",
           "BENTOML_DO_NOT_TRACK": "true", **extra_env,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    t = time.perf_counter()
    in_state, _ = prepare_state(Settings.from_env({k: v for k, v in env.items() if k.startswith(("AML_", "MLFLOW"))}))
    print(f"[{name}] warm-up: {in_state:,} transactions in {time.perf_counter() - t:.1f} s", flush=True)
    port = bs.free_port()
    proc = bs.start_server("amlscore.serving.service:AmlScoring", port, env, work / f"server-{name}.log")
    rss = None
    out: dict[str, Any] = {"service": name, "warm_up_transactions": in_state, "ladder": []}
    try:
        out["ready_s"] = round(bs.wait_ready(port, proc), 1)
        rss = bs.RssSampler(proc.pid)
        rss.start()
        base = f"http://127.0.0.1:{port}"
        comp = {"Authorization": "Bearer bench-compliance-key"}
        stream = bs.Stream(load, args.warm_up_days)
        bs.open_phase("warm", f"{base}/v1/score", comp, stream, 5, 20, {"explain": True}, rss)
        backend_cpu = _proc_cpu(("redis-server", "postgres"))
        cpu = _cpu_by_process(proc.pid)
        phase = bs.open_phase(f"{name} explained @{args.rate:g}", f"{base}/v1/score", comp, stream, args.seconds,
                              args.rate, {"explain": True}, rss)
        phase["backend_cpu_ms_per_txn"] = round((_proc_cpu(("redis-server", "postgres")) - backend_cpu) * 1000
                                                / max(phase["transactions"], 1), 3)
        phase["cpu_accounting"] = _cpu_accounting(cpu, _cpu_by_process(proc.pid), phase["seconds"], phase["requests"])
        out["at_rate"] = phase
        print(json.dumps(phase), flush=True)
        for rate in ladder:
            cpu = _cpu_by_process(proc.pid)
            step = bs.open_phase(f"{name} explained @{rate:g}", f"{base}/v1/score", comp, stream, args.step_seconds,
                                 rate, {"explain": True}, rss)
            accounting = _cpu_accounting(cpu, _cpu_by_process(proc.pid), step["seconds"], step["requests"])
            ok = step["p99_ms"] is not None and step["p99_ms"] <= args.p99_bound and not step["errors"]
            out["ladder"].append({"rate": rate, "p99_ms": step["p99_ms"], "throughput_txn_s": step["throughput_txn_s"],
                                  "errors": step["errors"], "server_cpu_ms_per_txn": step["server_cpu_ms_per_txn"],
                                  "load_average_1m": step["load_average_1m"], "cpu_accounting": accounting,
                                  "within_bound": ok})
            print(f"[{name}] ladder {rate:g} req/s: p99 {step['p99_ms']} ms, errors {step['errors']}, cores "
                  f"{accounting['cores']}, worker share {accounting['worker_share']}", flush=True)
            if not ok:
                break
    finally:
        if rss is not None:
            rss.stop()
        bs.stop_server(proc)
    good = [s["throughput_txn_s"] for s in out["ladder"] if s["within_bound"]]
    out["throughput_within_bound"] = max(good) if good else 0.0
    return out


def bank_arguments(parser: argparse.ArgumentParser) -> None:
    """The synthetic bank's options (``--customers``, ``--days``, ``--warm-up-days``, ``--seed``), also
    ``benchmarks/bench_decision_cpu.py``'s."""
    parser.add_argument("--customers", type=int, default=600)
    parser.add_argument("--days", type=int, default=100)
    parser.add_argument("--warm-up-days", type=int, default=91)
    parser.add_argument("--seed", type=int, default=42)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bank_arguments(parser)
    parser.add_argument("--rate", type=float, default=100, help="Requests per second of the explained phase.")
    parser.add_argument("--seconds", type=float, default=30, help="Duration of the explained phase.")
    parser.add_argument("--ladder", default="100,140,180,220,260,300,350,400",
                        help="Rates (req/s) tried in turn until the p99 bound is broken.")
    parser.add_argument("--step-seconds", type=float, default=15, help="Duration of each ladder step.")
    parser.add_argument("--p99-bound", type=float, default=25.0, help="The p99 bound of the ladder (ms).")
    parser.add_argument("--aof", choices=("everysec", "always"), default="everysec")
    parser.add_argument("--tracking-uri", default=None,
                        help="Registry whose champion model set to serve (one trained on this benchmark's bank, "
                             "same --customers, --days and --seed). Default: train one into the working folder.")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    ladder = [float(x) for x in args.ladder.split(",") if x.strip()]

    import pytest  # the servers' helpers skip through pytest when a server is missing

    from servers import postgres_server, redis_server

    work = args.work or Path(tempfile.mkdtemp(prefix="amlscore-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    data, load = bs.prepare_data(work, args.customers, args.days, args.warm_up_days, args.seed)
    print(f"data: {args.customers} customers x {args.days} days; the load repeats the last {args.warm_up_days} days' "
          f"{len(load):,} transactions", flush=True)
    tracking_uri = args.tracking_uri or bs.train_model(work, data)
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        try:
            redis_url = stack.enter_context(redis_server())
            pg_url = stack.enter_context(postgres_server())
        except pytest.skip.Exception as exc:
            print(f"cannot run the shared backends: {exc}")
            return 2
        import redis

        redis.Redis.from_url(redis_url).config_set("appendfsync", args.aof)
        results["embedded"] = run_service("embedded", args, work, data, load, tracking_uri, {}, [])
        shared = {"AML_STATE_URL": redis_url, "AML_DATABASE_URL": pg_url}
        _reset_backends(redis_url, pg_url)
        results["shared-1"] = run_service("shared-1", args, work, data, load, tracking_uri,
                                          {**shared, "AML_WORKERS": "1"}, ladder)
        _reset_backends(redis_url, pg_url)
        results["shared-2"] = run_service("shared-2", args, work, data, load, tracking_uri,
                                          {**shared, "AML_WORKERS": "2"}, ladder)
    emb, s1, s2 = results["embedded"]["at_rate"], results["shared-1"]["at_rate"], results["shared-2"]
    cpu_ratio = (s1["server_cpu_ms_per_txn"] / emb["server_cpu_ms_per_txn"]
                 if s1["server_cpu_ms_per_txn"] and emb["server_cpu_ms_per_txn"] else None)
    t1, t2 = results["shared-1"]["throughput_within_bound"], s2["throughput_within_bound"]
    summary = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "explained_p99_ms_embedded": emb["p99_ms"],
        "explained_p99_ms_shared_1_worker": s1["p99_ms"],
        "server_cpu_ms_per_txn_embedded": emb["server_cpu_ms_per_txn"],
        "server_cpu_ms_per_txn_shared": s1["server_cpu_ms_per_txn"],
        "server_cpu_ratio_shared_over_embedded": round(cpu_ratio, 2) if cpu_ratio else None,
        "backend_cpu_ms_per_txn_shared": s1.get("backend_cpu_ms_per_txn"),
        "throughput_within_p99_bound_1_worker": t1,
        "throughput_within_p99_bound_2_workers": t2,
        "throughput_ratio_2_over_1": round(t2 / t1, 2) if t1 else None,
        "runs": results,
    }
    print()
    for k, v in summary.items():
        if k not in ("runs", "settings"):
            print(f"{k}: {v}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
