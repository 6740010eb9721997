"""Benchmark: does a shadow model set (``AML_SHADOW``) move the champion's latency?

Usage::

    .venv/bin/python benchmarks/bench_shadow.py                       # 2 rounds of 30 s phases each way
    .venv/bin/python benchmarks/bench_shadow.py --rounds 3 --seconds 60 --out shadow.json

It prepares the bank, the model and the warmed state as :mod:`bench_serving` does (same functions),
points the ``challenger`` alias at a model set (``--shadow-version``; default: the champion's own
version, which costs what a challenger of the same kind costs), then alternates servers started
without and with ``AML_SHADOW=challenger`` on the same state folder, running in each the explained
phase (compliance key, ``explain: true``, open loop at ``--rate``). It prints, per phase and per
mode, the champion's p50 and p99 latency and the server's CPU time per request (the shadow's thread
is in the same process, so its CPU counts there; the latency is what a caller sees), then the
spread between runs of the same mode beside the difference between the modes.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

import bench_serving as bs  # noqa: E402


def _shadow_rows(state: Path) -> int:
    import sqlite3

    db = sqlite3.connect(f"{(state / 'audit.sqlite').resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(db.execute("SELECT COUNT(*) FROM shadow_scores").fetchone()[0])
    finally:
        db.close()


def run_phase(mode: str, env: dict[str, str], stream: bs.Stream, work: Path, seconds: float, rate: float) -> dict[str, Any]:
    """Start a server (with or without the shadow), warm it, run the explained phase, stop it."""
    port = bs.free_port()
    proc = bs.start_server("amlscore.serving.service:AmlScoring", port, env, work / f"server-{mode}.log")
    rss = None
    try:
        bs.wait_ready(port, proc)
        rss = bs.RssSampler(proc.pid)
        rss.start()
        url = f"http://127.0.0.1:{port}/v1/score"
        comp = {"Authorization": "Bearer bench-compliance-key"}
        bs.open_phase("warm", url, comp, stream, 3, 20, {"explain": True}, rss)
        out = bs.open_phase(f"explained, shadow {mode}", url, comp, stream, seconds, rate, {"explain": True}, rss)
    finally:
        if rss is not None:
            rss.stop()
        bs.stop_server(proc)
    return {"mode": mode, **{k: out[k] for k in ("p50_ms", "p99_ms", "max_ms", "server_cpu_ms_per_txn", "errors",
                                                  "requests", "load_average_1m", "cpu_steal_pct")}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=120)
    parser.add_argument("--warm-up-days", type=int, default=100)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seconds", type=float, default=30, help="Duration of each explained phase.")
    parser.add_argument("--rate", type=float, default=100, help="Requests per second.")
    parser.add_argument("--rounds", type=int, default=2, help="Phases of each mode (alternating off, on).")
    parser.add_argument("--shadow-version", default=None, help="Registered version the challenger alias points at "
                                                                  "(default: the champion's).")
    parser.add_argument("--audit-sync", choices=("full", "normal"), default="full")
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.config import Settings
    from amlscore.serving.state import prepare_state

    work = args.work or Path(tempfile.mkdtemp(prefix="amlscore-bench-shadow-"))
    work.mkdir(parents=True, exist_ok=True)
    data, load = bs.prepare_data(work, args.customers, args.days, args.warm_up_days, args.seed)
    uri = bs.train_model(work, data)
    os.environ["MLFLOW_TRACKING_URI"] = uri
    from amlscore.training.tracking import REGISTERED_MODEL_NAME, client, set_alias

    champion = str(client().get_model_version_by_alias(REGISTERED_MODEL_NAME, "champion").version)
    set_alias("challenger", args.shadow_version or champion)
    state = work / "state"
    write_keys_file(state / "api_keys.yaml", bs.KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state),
           "AML_WARM_UP_DAYS": str(args.warm_up_days), "MLFLOW_TRACKING_URI": uri, "AML_MODEL_ALIAS": "champion",
           "AML_AUDIT_SYNC": args.audit_sync, "AML_MAX_FUTURE_SECONDS": "0", "BENTOML_DO_NOT_TRACK": "true",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    prepare_state(Settings.from_env(env))
    stream = bs.Stream(load, args.warm_up_days)
    results = []
    for r in range(args.rounds):
        for mode in ("off", "on"):
            phase_env = {**env, "AML_SHADOW": "challenger"} if mode == "on" else {**env, "AML_SHADOW": "off"}
            t = time.perf_counter()
            res = run_phase(mode, phase_env, stream, work, args.seconds, args.rate)
            res["round"] = r + 1
            results.append(res)
            print(json.dumps(res), f"({time.perf_counter() - t:.0f} s with the start)", flush=True)
    shadow_rows = _shadow_rows(state)
    print()
    print(f"{'mode':<5} {'round':>5} {'p50_ms':>8} {'p99_ms':>8} {'cpu_ms/req':>10} {'errors':>6} {'load1m':>6}")
    for res in results:
        print(f"{res['mode']:<5} {res['round']:>5} {res['p50_ms']:>8} {res['p99_ms']:>8} "
              f"{res['server_cpu_ms_per_txn']!s:>10} {res['errors']!s:>6} {res['load_average_1m']:>6}")
    summary: dict[str, Any] = {"settings": vars(args) | {"work": str(work), "out": str(args.out) if args.out else None},
                               "champion_version": champion, "shadow_rows": shadow_rows, "phases": results}
    for metric in ("p50_ms", "p99_ms", "server_cpu_ms_per_txn"):
        by = {m: [x[metric] for x in results if x["mode"] == m and x[metric] is not None] for m in ("off", "on")}
        if all(by.values()):
            spread = max(max(v) - min(v) for v in by.values())
            summary[metric] = {"off_mean": round(mean(by["off"]), 2), "on_mean": round(mean(by["on"]), 2),
                               "difference": round(mean(by["on"]) - mean(by["off"]), 2),
                               "run_to_run_spread": round(spread, 2)}
            print(f"{metric}: off {summary[metric]['off_mean']}, on {summary[metric]['on_mean']} (difference "
                  f"{summary[metric]['difference']}; spread between runs of one mode {summary[metric]['run_to_run_spread']})")
    print(f"shadow scores in the audit log: {shadow_rows:,}")
    if args.out:
        args.out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
