"""Choose the evidence bar of the anomaly score's floor (``fusion_anomaly_gate``) on tuning banks.

Usage::

    .venv/bin/python benchmarks/choose_anomaly_gate.py benchmarks/results/generalisation/gate_tuning_3k \
        benchmarks/results/generalisation/gate_tuning_default_data [--without peer --with peer_floor]

Each folder holds a protocol's ``cells.csv`` with the same cells run without the floor (``--without``)
and with it (``--with``). Per cell it prints the anomaly score's ROC-AUC on the reports the cell kept
(the gate's input, the same with and without the floor) and what the floor changed: PR-AUC and
customers caught at 1 %. The rule, fixed before the tuning banks were run: **the bar is the lowest
evidence among the cells where the floor raised PR-AUC, rounded down to a multiple of 0.05**, so the
floor stays on wherever the tuning banks say it helps; a cell where it hurt above the bar is printed,
not hidden (the evidence cannot tell it apart). The bar is then judged on banks it was not chosen
on (seeds 1-3, the public AMLSim run).
"""

from __future__ import annotations

import argparse
import math
import sys
from functools import lru_cache
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def paired_cells(folder: Path, without: str, with_: str) -> pd.DataFrame:
    """One row per cell: the evidence and the two configurations' metrics side by side."""
    cells = pd.read_csv(folder / "cells.csv")
    base = cells[cells["config"] == without].copy()
    floor = cells[cells["config"] == with_].copy()
    base["key"] = base["cell"].str.removesuffix(f"_{without}")
    floor["key"] = floor["cell"].str.removesuffix(f"_{with_}")
    cols = ["key", "anomaly_evidence_roc_auc", "pr_auc", "customer_recall_at_1pct", "recall_at_1pct", "customers",
            "days", "seed", "variant", "label_share", "leave_out"]
    pair = base[cols].merge(floor[cols[:1] + cols[2:5]], on="key", suffixes=("", "_floor"), validate="one_to_one")
    if len(pair) != len(base) or len(pair) != len(floor):
        raise SystemExit(f"{folder}: the cells of {without!r} and {with_!r} do not pair up")
    pair["pr_auc_gain"] = pair["pr_auc_floor"] - pair["pr_auc"]
    pair["customers_gain"] = pair["customer_recall_at_1pct_floor"] - pair["customer_recall_at_1pct"]
    return pair


@lru_cache(maxsize=4)
def _bank(folder: Path):
    from amlscore.contract.load import load_dataset
    from amlscore.features.params import load_feature_params
    from amlscore.training.evaluate import read_ground_truth
    from amlscore.training.split import make_split

    dataset = load_dataset(folder)
    split = make_split(dataset.transactions["timestamp"],
                       utc_offset_hours=load_feature_params(None).bank_utc_offset_hours)
    return dataset.reports, read_ground_truth(folder), split.label_cutoff("valid")


def reported_at_valid_cutoff(cache: Path, row: pd.Series) -> int:
    """Customers with a suspicious report at the validation cut-off in a cell's kept reports: what the
    training counts for ``fusion_anomaly_max_reported`` (computed again from the cached bank, for cells run
    before the count was recorded)."""
    from amlscore.training.labels import reported_customers
    from amlscore.training.protocol import subsample_reports

    folder = cache / f"c{int(row['customers'])}_d{int(row['days'])}_s{int(row['seed'])}_{row['variant']}"
    reports, truth, cutoff = _bank(folder)
    leave_out = row["leave_out"] if isinstance(row["leave_out"], str) and row["leave_out"] else None
    left = frozenset(truth.loc[truth["typology"] == leave_out, "customer_id"].astype(str)) if leave_out else frozenset()
    kept = subsample_reports(reports, float(row["label_share"]), int(row["seed"]), leave_out_customers=left)
    return len(reported_customers(kept, cutoff))


def choose_count_bar(pairs: pd.DataFrame) -> int | None:
    """The geometric mean of the largest reported-customer count among cells where the floor raised PR-AUC
    and the smallest among cells where it lowered it, rounded to a multiple of 10; None when they overlap
    (the count does not separate them) or one side is empty."""
    helped = pairs.loc[pairs["pr_auc_gain"] > 0, "reported_customers"]
    hurt = pairs.loc[pairs["pr_auc_gain"] <= 0, "reported_customers"]
    if helped.empty or hurt.empty or helped.max() >= hurt.min():
        return None
    return int(round(math.sqrt(helped.max() * hurt.min()) / 10.0)) * 10


def choose_bar(pairs: pd.DataFrame) -> float:
    """The lowest evidence among cells where the floor raised PR-AUC, rounded down to 0.05 (0.5 if none)."""
    helped = pairs.loc[pairs["pr_auc_gain"] > 0, "anomaly_evidence_roc_auc"].dropna()
    if helped.empty:
        return 0.5
    return max(0.5, math.floor(float(helped.min()) / 0.05 + 1e-9) * 0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="protocol result folders (cells.csv)")
    ap.add_argument("--without", default="peer", help="the configuration without the floor")
    ap.add_argument("--with", dest="with_", default="peer_floor", help="the configuration with the floor")
    ap.add_argument("--cache", type=Path, help="the protocol's bank cache: also count each cell's reported "
                    "customers and choose the count's bar (fusion_anomaly_max_reported)")
    args = ap.parse_args(argv)
    pairs = pd.concat([paired_cells(f, args.without, args.with_) for f in args.folders], ignore_index=True)
    pairs = pairs.sort_values("anomaly_evidence_roc_auc")
    columns = ["key", "anomaly_evidence_roc_auc", "pr_auc", "pr_auc_floor", "pr_auc_gain",
               "customer_recall_at_1pct", "customer_recall_at_1pct_floor", "customers_gain"]
    if args.cache is not None:
        pairs["reported_customers"] = [reported_at_valid_cutoff(args.cache, row) for _, row in pairs.iterrows()]
        pairs = pairs.sort_values("reported_customers")
        columns.insert(1, "reported_customers")
    show = pairs[columns]
    print("| " + " | ".join(show.columns) + " |\n|" + "---|" * len(show.columns))
    for row in show.itertuples(index=False):
        print("| " + " | ".join(v if isinstance(v, str) else str(v) if isinstance(v, int) else f"{v:.3f}"
                                for v in row) + " |")
    bar = choose_bar(pairs)
    hurt = pairs[(pairs["pr_auc_gain"] <= 0) & (pairs["anomaly_evidence_roc_auc"] >= bar)]
    print(f"\nfloor raised PR-AUC in {int((pairs['pr_auc_gain'] > 0).sum())} of {len(pairs)} cells "
          f"(mean gain {pairs['pr_auc_gain'].mean():+.3f}; customers caught {pairs['customers_gain'].mean():+.3f})")
    print(f"bar (lowest evidence where the floor helped, rounded down to 0.05): {bar:.2f}")
    if len(hurt):
        print(f"cells above the bar where the floor did not help: {', '.join(hurt['key'])}")
    if args.cache is not None:
        count_bar = choose_count_bar(pairs)
        print("count bar (geometric mean of the most reported customers where the floor helped and the fewest "
              f"where it did not, rounded to 10): {count_bar if count_bar is not None else 'none: they overlap'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
