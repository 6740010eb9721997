"""End to end on a public data set: convert, train, score and evaluate with its authors' split (issue 16).

Usage::

    .venv/bin/python benchmarks/bench_external.py amlsim ../shared/external/amlsim-20K_fanin200cycle200
    .venv/bin/python benchmarks/bench_external.py amlworld HI-Small_Trans.csv --patterns HI-Small_Patterns.txt

Converts the source with ``amlscore import`` (into ``--work``, a temporary folder by default), trains
with :func:`amlscore.training.train.train` on the temporal 60/20/20 split the AMLworld paper uses
(train on the first 60 % of transactions in time, validate on the next 20 %, test on the last
20 %), logging to a temporary MLflow store, and evaluates the test period against the ground truth:

* minority-class F1 (AMLworld's metric) per source payment: a payment's score is the highest of its
  rows (a payment between two customers is two rows), at the model set's alert threshold and, as an
  upper bound no deployed model has, at the best threshold on the test period itself;
* PR-AUC and recall at a 1 % alert rate of the fused score and its components (per contract row,
  as ``amlscore evaluate``), and per-typology recall at 1 %.

The published anchors (AMLworld HI-Small, minority-class F1 in %, arXiv 2306.16424 and 2402.08593)
are printed beside the figures: they are the same metric on the same split only for AMLworld.
The models train on the bank-held reports the adapter derives from the labels (a share of the
laundering customers, reported late), not on the full labels the published models see.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: AMLworld HI-Small, minority-class F1 (%).
ANCHORS = {"LightGBM on raw features": 21.3, "LightGBM + IBM Graph Feature Preprocessor": 62.9, "Multi-GNN": 68.2}


def payment_f1(txn_ids: np.ndarray, scores: np.ndarray, laundering: np.ndarray, threshold: float) -> dict[str, float]:
    """Minority-class F1 per source payment (rows ``<prefix><line>.o``/``.i`` are one payment)."""
    payment = np.array([t.rsplit(".", 1)[0] for t in txn_ids], dtype=object)
    keys, inverse = np.unique(payment, return_inverse=True)
    best = np.full(len(keys), -np.inf)
    np.maximum.at(best, inverse, scores)
    y = np.zeros(len(keys), dtype=bool)
    np.logical_or.at(y, inverse, laundering)
    out = {"payments": float(len(keys)), "laundering_payments": float(y.sum()),
           "f1_at_alert_threshold": _f1(y, best >= threshold)}
    order = np.argsort(-best, kind="stable")
    tp = np.cumsum(y[order])
    k = np.arange(1, len(order) + 1)
    f1 = 2 * tp / (k + y.sum()) if y.sum() else np.zeros(len(k))
    out["f1_best_threshold_oracle"] = float(f1.max()) if len(f1) else float("nan")
    return out


def _f1(y: np.ndarray, alert: np.ndarray) -> float:
    tp = float((y & alert).sum())
    return 2 * tp / (alert.sum() + y.sum()) if (alert.sum() + y.sum()) else float("nan")


def run(fmt: str, src: Path, work: Path, *, seed: int = 42, bank: str = "all", patterns: Path | None = None,
        n_jobs: int = 1, train_overrides: dict | None = None, report_share: float | None = None) -> dict:
    """Convert, train and evaluate; return the figures as a dict (also what ``--json`` writes)."""
    from amlscore.adapters import ReportPolicy, import_data
    from amlscore.training.evaluate import read_ground_truth
    from amlscore.training.pipeline import train_and_register
    from amlscore.training.train import TrainConfig

    data = work / "data"
    t0 = time.perf_counter()
    policy = ReportPolicy() if report_share is None else ReportPolicy(report_share=report_share)
    summary = import_data(fmt, src, data, seed=seed, bank=bank, patterns=patterns, policy=policy)
    convert_s = time.perf_counter() - t0
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    t0 = time.perf_counter()
    config = TrainConfig(data=data, seed=seed, fractions=(0.6, 0.2, 0.2), n_jobs=n_jobs, **(train_overrides or {}))
    result = train_and_register(config, experiment="bench-external")
    train_s = time.perf_counter() - t0
    report = result.test_report
    scores = result.test_scores
    truth = read_ground_truth(data)
    ids = scores["txn_id"].astype(str).to_numpy(dtype=object)
    laundering = np.isin(ids, truth["txn_id"].astype(str).to_numpy()) if truth is not None else np.zeros(len(ids), bool)
    fused = scores["suspicion_score"].to_numpy(dtype=np.float64)
    c = report.components
    return {
        "format": fmt, "source": str(src), "seed": seed, "bank": bank, "report_share": policy.report_share,
        "convert_seconds": convert_s, "train_seconds": train_s,
        "customers": summary.customers, "transactions": summary.transactions,
        "laundering_transactions": summary.laundering_transactions, "reports": summary.reports,
        "split": result.prepared.split.describe(), "label_source": report.label_source,
        "test_rows": int(len(ids)), "test_laundering_rows": int(laundering.sum()),
        "pr_auc": report.overall["pr_auc"], "recall_at_1pct": report.overall["recall_at_1pct"],
        "components_pr_auc": {k: v["pr_auc"] for k, v in c.items()},
        "components_recall_at_1pct": {k: v["recall_at_1pct"] for k, v in c.items()},
        "minority_f1": payment_f1(ids, fused, laundering, result.model_set.alert_threshold),
        "per_typology_recall_at_1pct": {r.typology: r.recall_at_1pct for r in report.per_typology.itertuples()},
        "anchors_amlworld_hi_small_f1_pct": ANCHORS,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("format", choices=("amlworld", "amlsim", "saml-d"))
    ap.add_argument("src", type=Path)
    ap.add_argument("--bank", default="all")
    ap.add_argument("--patterns", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--report-share", type=float, default=None,
                    help="Share of laundering customers the bank reports (default: ReportPolicy's 0.6); 1 is a "
                         "diagnostic: how much of the gap to the published figures is the labels' incompleteness.")
    ap.add_argument("--work", type=Path, default=None, help="Folder for the converted data and MLflow (default: temporary).")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = ap.parse_args()
    tmp = None
    if args.work is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-external-")
        args.work = Path(tmp.name)
    args.work.mkdir(parents=True, exist_ok=True)
    r = run(args.format, args.src, args.work, seed=args.seed, bank=args.bank, patterns=args.patterns, n_jobs=args.n_jobs,
            report_share=args.report_share)
    print(f"{r['format']} {r['source']}: {r['transactions']:,} transactions ({r['laundering_transactions']:,} laundering), "
          f"{r['customers']:,} customers, {r['reports']:,} reports (report share {r['report_share']}); convert {r['convert_seconds']:.0f} s, "
          f"train+evaluate {r['train_seconds']:.0f} s")
    s = r["split"]
    print(f"test period {s['test_start']}..{s['test_end']}: {r['test_rows']:,} rows, {r['test_laundering_rows']:,} "
          f"laundering ({r['label_source']} labels)")
    print(f"  PR-AUC fused {r['pr_auc']:.3f}  (" + ", ".join(f"{k} {v:.3f}" for k, v in r["components_pr_auc"].items()
                                                      if k != "fused") + ")")
    print(f"  recall at a 1 % alert rate {r['recall_at_1pct']:.3f}")
    f = r["minority_f1"]
    print(f"  minority-class F1 per payment ({f['payments']:,.0f} payments, {f['laundering_payments']:,.0f} laundering): "
          f"{100 * f['f1_at_alert_threshold']:.1f} at the alert threshold, "
          f"{100 * f['f1_best_threshold_oracle']:.1f} at the test-period best threshold (oracle)")
    print("  per-typology recall at 1 %: " + ", ".join(f"{k} {v:.3f}" for k, v in r["per_typology_recall_at_1pct"].items()))
    print("  published anchors, AMLworld HI-Small minority F1 (%): " + ", ".join(f"{k} {v}" for k, v in ANCHORS.items()))
    if args.json:
        args.json.write_text(json.dumps(r, indent=2, default=str) + "\n", encoding="utf-8")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
