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
from pathlib import Path

import pandas as pd


def paired_cells(folder: Path, without: str, with_: str) -> pd.DataFrame:
    """One row per cell: the evidence and the two configurations' metrics side by side."""
    cells = pd.read_csv(folder / "cells.csv")
    base = cells[cells["config"] == without].copy()
    floor = cells[cells["config"] == with_].copy()
    base["key"] = base["cell"].str.removesuffix(f"_{without}")
    floor["key"] = floor["cell"].str.removesuffix(f"_{with_}")
    cols = ["key", "anomaly_evidence_roc_auc", "pr_auc", "customer_recall_at_1pct", "recall_at_1pct"]
    pair = base[cols].merge(floor[cols[:1] + cols[2:]], on="key", suffixes=("", "_floor"), validate="one_to_one")
    if len(pair) != len(base) or len(pair) != len(floor):
        raise SystemExit(f"{folder}: the cells of {without!r} and {with_!r} do not pair up")
    pair["pr_auc_gain"] = pair["pr_auc_floor"] - pair["pr_auc"]
    pair["customers_gain"] = pair["customer_recall_at_1pct_floor"] - pair["customer_recall_at_1pct"]
    return pair


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
    args = ap.parse_args(argv)
    pairs = pd.concat([paired_cells(f, args.without, args.with_) for f in args.folders], ignore_index=True)
    pairs = pairs.sort_values("anomaly_evidence_roc_auc")
    show = pairs[["key", "anomaly_evidence_roc_auc", "pr_auc", "pr_auc_floor", "pr_auc_gain",
                  "customer_recall_at_1pct", "customer_recall_at_1pct_floor", "customers_gain"]]
    print("| " + " | ".join(show.columns) + " |\n|" + "---|" * len(show.columns))
    for row in show.itertuples(index=False):
        print("| " + " | ".join(v if isinstance(v, str) else f"{v:.3f}" for v in row) + " |")
    bar = choose_bar(pairs)
    hurt = pairs[(pairs["pr_auc_gain"] <= 0) & (pairs["anomaly_evidence_roc_auc"] >= bar)]
    print(f"\nfloor raised PR-AUC in {int((pairs['pr_auc_gain'] > 0).sum())} of {len(pairs)} cells "
          f"(mean gain {pairs['pr_auc_gain'].mean():+.3f}; customers caught {pairs['customers_gain'].mean():+.3f})")
    print(f"bar (lowest evidence where the floor helped, rounded down to 0.05): {bar:.2f}")
    if len(hurt):
        print(f"cells above the bar where the floor did not help: {', '.join(hurt['key'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
