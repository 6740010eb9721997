"""The generalisation protocol's full grid (docs/generalisation.md), timed.

    nice -n 5 .venv/bin/python benchmarks/bench_generalisation.py [--protocol benchmarks/protocols/full.yaml]
        [--out results/full] [--cache results/banks] [--tracking-uri URI]

Runs every cell of a protocol file exactly as ``amlscore evaluate --protocol FILE`` does (banks
generated once into ``--cache`` and reused, the grid's external sets converted once per seed into
``--cache``/external and reused, one MLflow run per cell under a parent run: the
project's store unless ``--tracking-uri`` is given), writes ``cells.csv``, ``summary.csv``,
``summary.md`` and ``targets.json`` into ``--out``, prints the summary, the wall-clock and CPU
time and the peak resident memory. The grid is long (hours for the full one on two cores); the
tests run small grids (tests/training/test_protocol.py, tests/training/test_protocol_external.py).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", type=Path, default=ROOT / "benchmarks" / "protocols" / "full.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "full")
    parser.add_argument("--cache", type=Path, default=ROOT / "results" / "banks",
                        help="Generated banks and converted external sets (reused while their marker matches).")
    parser.add_argument("--tracking-uri", default=None, help="MLflow URI (default: the project's store).")
    parser.add_argument("--no-mlflow", action="store_true", help="Do not log the cells to MLflow.")
    args = parser.parse_args()
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri

    from amlscore.cli.protocol import run_protocol_command  # noqa: PLC0415

    wall, cpu = time.perf_counter(), time.process_time()
    done = run_protocol_command(args.protocol, args.out, args.cache, mlflow=not args.no_mlflow,
                                say=lambda line: print(f"[{time.perf_counter() - wall:7.0f} s] {line}", flush=True))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print((args.out / "summary.md").read_text(encoding="utf-8"))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    print(f"{done['cells']} cells in {wall / 60:.1f} min wall clock, {cpu / 60:.1f} min CPU, peak RSS {peak:.2f} GB "
          f"(load average at the end: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
