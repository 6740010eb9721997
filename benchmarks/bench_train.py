"""End-to-end training time on about a million transactions.

    .venv/bin/python benchmarks/bench_train.py [--customers 4000 --days 365] [--data data/bench_1m] [--n-jobs 1]

Generates the synthetic bank once (4,000 customers x 365 days gives about 1.04 million
transactions; kept in ``--data`` for the next run, generation is not timed), then times what
``amlscore train`` does: load and validate, features, rules and labels, LightGBM (instance model
and final model), IsolationForest, fusion and thresholds, test-period evaluation, and MLflow
logging and registration (into a temporary SQLite store unless ``--tracking-uri`` is given, so
the project's store is left alone). Prints seconds per stage, total wall-clock and CPU seconds
(the steadier figure on a busy machine) and the peak resident memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=4000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "bench_1m")
    parser.add_argument("--n-jobs", type=int, default=1)
    parser.add_argument("--tracking-uri", default=None, help="MLflow URI (default: a temporary SQLite store).")
    args = parser.parse_args()

    from amlscore.contract.load import load_dataset  # noqa: PLC0415

    if not (args.data / "transactions.parquet").is_file():
        from amlscore.synth.bank import generate_bank, write_bank  # noqa: PLC0415
        from amlscore.synth.config import SynthConfig  # noqa: PLC0415

        t0 = time.perf_counter()
        write_bank(generate_bank(SynthConfig(customers=args.customers, days=args.days, seed=args.seed)), args.data)
        print(f"generated {args.data} in {time.perf_counter() - t0:.0f} s (not part of the figure)", flush=True)

    tmp = tempfile.TemporaryDirectory(prefix="bench-train-mlflow-")
    os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri or f"sqlite:///{tmp.name}/mlflow.db"

    from amlscore.training.pipeline import train_and_register as train  # noqa: PLC0415
    from amlscore.training.train import TrainConfig  # noqa: PLC0415

    cpu0, wall0 = time.process_time(), time.perf_counter()
    dataset = load_dataset(args.data)
    load_seconds = time.perf_counter() - wall0
    result = train(TrainConfig(data=args.data, seed=args.seed, n_jobs=args.n_jobs),
                   lambda step, f: print(f"  {f:5.0%} {step}", flush=True) if step != "features" else None,
                   experiment="bench", dataset=dataset)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = dict(result.timings)
    t["load"] = t.get("load", 0.0) + load_seconds
    n = len(result.prepared.dataset.transactions)
    print(f"\n{n:,} transactions, {len(result.prepared.dataset.customers):,} customers; LightGBM threads {args.n_jobs}")
    for stage in ("load", "features", "rules_labels", "instance_model", "lgbm", "iforest", "fusion", "evaluate", "mlflow"):
        print(f"  {stage:<15} {t.get(stage, 0.0):7.1f} s")
    print(f"  {'total (wall)':<15} {wall:7.1f} s   CPU {cpu:.1f} s   peak RSS {peak_mb:,.0f} MB")
    o = result.test_report.overall
    c = result.test_report.components
    print(f"test: PR-AUC fused {o['pr_auc']:.3f} (LightGBM {c['lgbm']['pr_auc']:.3f}, rules {c['rules']['pr_auc']:.3f}, "
          f"anomaly {c['anomaly']['pr_auc']:.3f}); recall@1% {o['recall_at_1pct']:.3f} "
          f"({result.test_report.label_source} labels)")
    tmp.cleanup()


if __name__ == "__main__":
    main()
