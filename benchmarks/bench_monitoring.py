"""Monitoring and backtest times: drift of one day of 1 million scored transactions, and a 90-day backtest.

    .venv/bin/python benchmarks/bench_monitoring.py [--rows 1000000] [--data DIR] [--skip-backtest]

1. **Drift of a day**: a model set is trained on the default synthetic bank (2,000 customers x 365 days,
   generated into ``--data`` unless it is there; neither step is timed, training uses small tree
   counts); its scored transactions are resampled to ``--rows`` rows dated on one day, with their
   features, scores, channel and customer type. Timed: :func:`amlscore.monitoring.drift.compute_drift`
   (PSI and missing shares of 132 features and 4 scores, alert rates overall, per channel, per customer
   type and per day, findings), then the HTML report and the JSON summary. Building the features and
   scoring the rows is the batch scoring path, timed by bench_features.py and bench_train.py.
2. **Backtest of 90 days**: the last 90 days of the same bank replayed with the model set and with the
   model set under a rules.yaml whose structuring rule fires from one near-threshold cash deposit
   instead of three. Timed end to end as ``amlscore backtest`` runs it: load and validate the folder,
   features of the whole history (the windows need it), both scorings, comparison, HTML and JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

FAST = {"lgbm": {"n_estimators": 100, "min_rounds": 10, "early_stopping_rounds": 20},
        "anomaly": {"n_estimators": 100}, "max_train_negatives": 100_000, "anomaly_fit_rows": 50_000}


def _bank(folder: Path) -> Path:
    from amlscore.synth.bank import generate_bank, write_bank
    from amlscore.synth.config import SynthConfig

    if not (folder / "transactions.parquet").is_file():
        print(f"generating the default bank into {folder} (not timed)")
        write_bank(generate_bank(SynthConfig()), folder)
    return folder


def bench_drift(model_set, data: Path, rows: int, out: Path) -> None:
    from amlscore.monitoring.batch import score_period
    from amlscore.monitoring.config import load_thresholds
    from amlscore.monitoring.drift import compute_drift
    from amlscore.monitoring.html import render_drift, write_html

    period = score_period(model_set, data)
    pick = np.random.default_rng(0).integers(0, len(period), rows)
    columns = {name: np.ascontiguousarray(values[pick]) for name, values in period.columns.items()}
    segments = {name: values[pick] for name, values in period.segments.items()}
    alert = period.alert[pick]
    days = np.full(rows, np.datetime64("2026-12-01", "D"))
    limits = load_thresholds()
    cpu0, t0 = time.process_time(), time.perf_counter()
    drift = compute_drift(model_set.reference, columns, alert, segments, days, limits)
    t_drift = time.perf_counter() - t0
    write_html(out / "drift.html", render_drift(drift, limits))
    (out / "drift.json").write_text(json.dumps(drift.to_dict(), default=str))
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"drift of one day, {rows:,} scored transactions x {len(columns)} columns: compute {t_drift:.2f} s, "
          f"with HTML and JSON {total:.2f} s ({cpu:.2f} s CPU); status {drift.status}, worst PSI "
          f"{drift.worst_psi.name} {drift.worst_psi.psi:.3f}")


def bench_backtest(model_set, data: Path, out: Path) -> None:
    from amlscore.models.rules.config import DEFAULT_CONFIG_PATH
    from amlscore.monitoring.backtest import compare
    from amlscore.monitoring.html import render_backtest, write_html
    from amlscore.training.replay import replay, with_rules
    from amlscore.training.scoring import load_folder

    old = '- {feature: near_threshold_cash_cnt_7d, op: ">=", threshold: 3}'
    rules = out / "rules_new.yaml"
    rules.write_text(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8").replace(old, old.replace("3}", "1}")))
    cpu0, t0 = time.process_time(), time.perf_counter()
    folder = load_folder(data)
    end = folder.dataset.transactions["timestamp"].max().date()
    start = end - dt.timedelta(days=89)
    candidate = with_rules(model_set, rules)
    frame = replay(model_set, candidate, folder, start=start, end=end)
    report = compare(frame, base="model set", candidate="model set with the new rules")
    write_html(out / "backtest.html", render_backtest(report))
    (out / "backtest.json").write_text(json.dumps(report.to_dict(), default=str))
    total, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    print(f"backtest of {report.days} days ({report.period}), {report.rows:,} transactions replayed twice, "
          f"{len(folder.dataset.transactions):,} in the folder: {total:.1f} s ({cpu:.1f} s CPU); "
          f"+{report.added:,} / -{report.removed:,} alerts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "default")
    parser.add_argument("--skip-backtest", action="store_true")
    args = parser.parse_args()

    from amlscore.training.train import TrainConfig, train

    data = _bank(args.data)
    print("training a model set (not timed)")
    model_set = train(TrainConfig(data=data, seed=0, **FAST)).model_set
    with tempfile.TemporaryDirectory(prefix="bench-monitoring-") as tmp:
        bench_drift(model_set, data, args.rows, Path(tmp))
        if not args.skip_backtest:
            bench_backtest(model_set, data, Path(tmp))
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
