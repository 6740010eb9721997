"""Benchmark the feature pipelines (issue 3): offline throughput and peak memory, online latency.

Usage::

    .venv/bin/python benchmarks/bench_features.py                       # default data set, online latency
    .venv/bin/python benchmarks/bench_features.py --big-customers 20000 # also a ~5M-transaction history

Each offline measurement runs in a fresh child process so that its peak RSS is its own. Wall-clock
figures need an otherwise idle machine; each line also gives the CPU time and the load average, so a
run on a busy machine can be told apart. Figures go into the README by hand, with the date and the
machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generate(folder: Path, customers: int, days: int, seed: int) -> None:
    if (folder / "transactions.parquet").exists():
        return
    subprocess.run([sys.executable, "-m", "amlscore.cli", "generate", "--out", str(folder), "--customers",
                    str(customers), "--days", str(days), "--seed", str(seed)], check=True, cwd=ROOT)


def offline_child(folder: str, out: str) -> None:
    """Runs in a child: load, compute features to Parquet, print JSON figures."""
    from contract import load_dataset
    from features.offline import iter_feature_chunks, ordered_transactions, write_features

    dataset = load_dataset(folder, require_reports=False)
    n = len(dataset.transactions)
    start, cpu = time.perf_counter(), time.process_time()
    txns = ordered_transactions(dataset.transactions)
    for _rows, _part in iter_feature_chunks(txns, dataset.customers, chunk_rows=500_000):
        pass  # compute only: every feature row of every partition, then dropped
    compute, compute_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    write_features(dataset, out, chunk_rows=500_000)  # computes again, and writes (in a second thread)
    written, written_cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(json.dumps({"transactions": n, "compute_s": round(compute, 2), "compute_tx_per_s": round(n / compute),
                      "compute_cpu_s": round(compute_cpu, 2),
                      "with_parquet_write_s": round(written, 2), "with_write_tx_per_s": round(n / written),
                      "with_write_cpu_s": round(written_cpu, 2), "peak_rss_gb": round(peak_gb, 2),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


def _offline(folder: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, __file__, "--offline-child", str(folder), str(Path(tmp) / "f.parquet")],
                              check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _online(folder: Path, warmup: int, measured: int) -> dict:
    import numpy as np

    from contract import load_dataset
    from features.events import transaction_records
    from features.online import OnlineFeatureState

    dataset = load_dataset(folder, require_reports=False)
    records = list(transaction_records(dataset.transactions.iloc[: warmup + measured]))
    with tempfile.TemporaryDirectory() as tmp:
        state = OnlineFeatureState(dataset.customers, store=Path(tmp) / "state.sqlite")
        for r in records[:warmup]:
            state.update_vector(r)
        gc.collect()
        gc.freeze()  # what a long-running service does after start-up: no full collections of old state
        lat = np.empty(measured)
        cpu = time.process_time()
        for i, r in enumerate(records[warmup:]):
            t0 = time.perf_counter()
            state.update_vector(r)
            lat[i] = time.perf_counter() - t0
        cpu = time.process_time() - cpu
        state.close()
    us = lat * 1e6
    return {"warmup": warmup, "measured": measured, "p50_us": round(float(np.percentile(us, 50))),
            "p99_us": round(float(np.percentile(us, 99))), "mean_us": round(float(us.mean())),
            "p99_9_us": round(float(np.percentile(us, 99.9))), "cpu_us_per_txn": round(cpu / measured * 1e6),
            "store": "SQLite (WAL, synchronous=NORMAL, commit per transaction)",
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--offline-child":
        offline_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "default", help="default data set (generated if missing)")
    parser.add_argument("--big-customers", type=int, default=0, help="also measure a big history (20000 gives ~5M transactions)")
    parser.add_argument("--big-days", type=int, default=365)
    parser.add_argument("--warmup", type=int, default=100_000)
    parser.add_argument("--measured", type=int, default=20_000)
    parser.add_argument("--skip-offline", action="store_true", help="only the online latency (and --big-customers)")
    parser.add_argument("--skip-online", action="store_true")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    _generate(args.data, 2000, 365, 42)
    if not args.skip_offline:
        print("offline, default data set:", json.dumps(_offline(args.data)))
    if not args.skip_online:
        print("online, per transaction:", json.dumps(_online(args.data, args.warmup, args.measured)))
    if args.big_customers:
        big = ROOT / "data" / f"bench_{args.big_customers}x{args.big_days}"
        t0 = time.perf_counter()
        _generate(big, args.big_customers, args.big_days, 7)
        print(f"generated {big} in {time.perf_counter() - t0:.0f} s")
        print("offline, big history:", json.dumps(_offline(big)))


if __name__ == "__main__":
    main()
