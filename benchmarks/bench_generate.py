"""Benchmark of the synthetic bank: seconds, transactions, transactions per second, peak memory.

Usage::

    .venv/bin/python benchmarks/bench_generate.py                      # default bank and ~5 million rows
    .venv/bin/python benchmarks/bench_generate.py --sizes 2000x365     # one size (customers x days)
    .venv/bin/python benchmarks/bench_generate.py --sizes 2000x365 24000x365 --format csv

Each size runs in its own process, so the peak resident memory (RSS) is that size's alone. The
time is split into generation (population, behaviour, typologies, reports, frames) and writing
(contract validation, fingerprint and the atomic write, as ``amlscore generate`` does).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = ("2000x365", "24000x365")


def run_one(customers: int, days: int, seed: int, fmt: str) -> dict[str, float]:
    """Generate and write one bank in this process; return the measurements."""
    from amlscore.synth.bank import generate_bank, write_bank
    from amlscore.synth.config import SynthConfig

    t0 = time.perf_counter()
    bank = generate_bank(SynthConfig(customers=customers, days=days, seed=seed))
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write_bank(bank, Path(tmp) / "bank", fmt)
    t2 = time.perf_counter()
    n = len(bank.transactions)
    return {
        "customers": customers,
        "days": days,
        "transactions": n,
        "laundering_rate": round(len(bank.ground_truth) / max(n, 1), 4),
        "generate_s": round(t1 - t0, 2),
        "write_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "tx_per_s": round(n / (t2 - t0)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),  # KiB on Linux
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES), help="CUSTOMERSxDAYS, e.g. 2000x365")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--format", dest="fmt", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)  # child mode: one size, JSON out
    args = parser.parse_args(argv)

    if args.one:
        customers, days = (int(x) for x in args.sizes[0].split("x"))
        print(json.dumps(run_one(customers, days, args.seed, args.fmt)))
        return 0

    header = f"{'customers':>9} {'days':>4} {'transactions':>12} {'launder':>7} {'gen s':>7} {'write s':>7} " \
             f"{'total s':>7} {'tx/s':>9} {'peak RSS MB':>11}"
    print(header)
    for size in args.sizes:
        cmd = [sys.executable, __file__, "--one", "--sizes", size, "--seed", str(args.seed), "--format", args.fmt]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{size}: failed\n{done.stderr}", file=sys.stderr)
            return 1
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{r['customers']:>9} {r['days']:>4} {r['transactions']:>12,} {r['laundering_rate']:>7.2%} "
              f"{r['generate_s']:>7} {r['write_s']:>7} {r['total_s']:>7} {r['tx_per_s']:>9,} {r['peak_rss_mb']:>11,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
