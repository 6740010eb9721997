"""Worker CPU per explained decision on the shared backends (Redis state + PostgreSQL audit), one worker.

Usage::

    .venv/bin/python benchmarks/bench_decision_cpu.py --tracking-uri sqlite:///<registry> --work /tmp/cpu
    .venv/bin/python benchmarks/bench_decision_cpu.py ... --py-spy profile.json   # also profile the worker

A short measurement for changes to the per-decision path (``bench_scale.py`` runs the full ladder):
it starts ``redis-server`` and PostgreSQL on loopback (as the tests do), one worker on them as
``bench_scale.py`` does, and sends ``--reps`` phases of explained requests (compliance key) at
``--rate`` req/s for ``--seconds`` each. Per phase it prints the worker's CPU time per decision
(process CPU / requests) and that of Redis and PostgreSQL. The data folder and the load are kept in
``--work`` and reused by the next run. The measured phases (and the profile) hold ``/tmp/heavy.lock``
(``--lock``), which the machine's other heavy jobs take too.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "benchmarks", ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import bench_scale as sc  # noqa: E402
import bench_serving as bs  # noqa: E402


@contextmanager
def _locked(path: str | None) -> Iterator[None]:
    if not path:
        yield
        return
    with open(path, "a") as f:
        t = time.perf_counter()
        fcntl.flock(f, fcntl.LOCK_EX)
        print(f"holding {path} (waited {time.perf_counter() - t:.0f} s)", flush=True)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _py_spy() -> str:
    """py-spy beside this interpreter (the project's virtualenv), else on the PATH."""
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else (shutil.which("py-spy") or "py-spy")


def _data(work: Path, args: argparse.Namespace) -> tuple[Path, list[dict[str, Any]]]:
    cached = work / "load.pickle"
    if cached.exists() and (work / "data").exists():
        return work / "data", pickle.loads(cached.read_bytes())
    data, load = bs.prepare_data(work, args.customers, args.days, args.warm_up_days, args.seed)
    cached.write_bytes(pickle.dumps(load))
    return data, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sc.bank_arguments(parser)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--tracking-uri", default=None, help="Registry of a model set trained on this bank "
                        "(default: train one into --work).")
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--lock", default="/tmp/heavy.lock", help="Lock held while measuring ('' for none).")
    parser.add_argument("--py-spy", type=Path, default=None, help="Profile the worker over the first phase into "
                        "this speedscope file.")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from servers import postgres_server, redis_server

    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.config import Settings
    from amlscore.serving.state import prepare_state

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    data, load = _data(work, args)
    tracking_uri = args.tracking_uri or bs.train_model(work, data)
    phases: list[dict[str, Any]] = []
    # the lock, once taken, is held until the service and the servers are stopped (the service's
    # shutdown writes a snapshot): what follows the measurement must not land in another's
    with ExitStack() as held, ExitStack() as stack:
        redis_url = stack.enter_context(redis_server())
        pg_url = stack.enter_context(postgres_server())
        state = Path(stack.enter_context(tempfile.TemporaryDirectory(dir=work))) / "state"
        write_keys_file(state / "api_keys.yaml", bs.KEYS)
        env = {**os.environ, "AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state),
               "AML_WARM_UP_DAYS": str(args.warm_up_days), "MLFLOW_TRACKING_URI": tracking_uri,
               "AML_AUDIT_SYNC": "full", "AML_MAX_FUTURE_SECONDS": "0", "BENTOML_DO_NOT_TRACK": "true",
               "AML_STATE_URL": redis_url, "AML_DATABASE_URL": pg_url, "AML_WORKERS": "1",
               "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
        t = time.perf_counter()
        in_state, _ = prepare_state(Settings.from_env({k: v for k, v in env.items() if k.startswith(("AML_", "MLFLOW"))}))
        print(f"warm-up: {in_state:,} transactions in {time.perf_counter() - t:.1f} s", flush=True)
        port = bs.free_port()
        proc = bs.start_server("amlscore.serving.service:AmlScoring", port, env, work / "server.log")
        rss = None
        try:
            bs.wait_ready(port, proc)
            rss = bs.RssSampler(proc.pid)
            rss.start()
            base = f"http://127.0.0.1:{port}/v1/score"
            comp = {"Authorization": "Bearer bench-compliance-key"}
            stream = bs.Stream(load, args.warm_up_days)
            bs.open_phase("warm", base, comp, stream, 5, 20, {"explain": True}, rss)
            held.enter_context(_locked(args.lock))
            for k in range(args.reps):
                spy = None
                if args.py_spy is not None and k == 0:
                    worker = next(iter(sc._cpu_by_process(proc.pid)["workers"]))
                    spy = subprocess.Popen([_py_spy(), "record", "-o", str(args.py_spy), "--format", "speedscope",
                                            "-r", "200", "-p", str(worker), "-d", str(int(args.seconds) + 2)],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    time.sleep(1.0)
                before = sc._cpu_by_process(proc.pid)
                phase = bs.open_phase(f"explained @{args.rate:g} #{k + 1}", base, comp, stream, args.seconds,
                                      args.rate, {"explain": True}, rss)
                after = sc._cpu_by_process(proc.pid)
                n = max(phase["requests"], 1)
                worker_ms = sum(after["workers"][p] - before["workers"].get(p, 0.0) for p in after["workers"]) * 1000 / n
                row = {"phase": phase["phase"], "requests": phase["requests"], "errors": phase["errors"],
                       "p50_ms": phase["p50_ms"], "p99_ms": phase["p99_ms"],
                       "worker_cpu_ms_per_decision": round(worker_ms, 3),
                       "redis_cpu_ms_per_decision": round((after["redis"] - before["redis"]) * 1000 / n, 3),
                       "postgres_cpu_ms_per_decision": round((after["postgres"] - before["postgres"]) * 1000 / n, 3),
                       "load_average_1m": phase["load_average_1m"], "with_profiler": spy is not None}
                if spy is not None:
                    spy.wait()
                phases.append(row)
                print(json.dumps(row), flush=True)
        finally:
            if rss is not None:
                rss.stop()
            bs.stop_server(proc)
    clean = [p["worker_cpu_ms_per_decision"] for p in phases if not p["with_profiler"]]
    if clean:
        print(f"worker CPU ms per explained decision over {len(clean)} phases: mean {sum(clean) / len(clean):.3f}, "
              f"worst {max(clean):.3f}, best {min(clean):.3f}")
    if args.out:
        args.out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "phases": phases},
                                       indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
