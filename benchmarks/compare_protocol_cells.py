"""Two protocol runs on the same cells side by side: per cell and mean / worst over the cells.

    .venv/bin/python benchmarks/compare_protocol_cells.py BEFORE/cells.csv AFTER/cells.csv [--label-share 0.25]
        [--before-config NAME] [--after-config NAME]

Cells are matched on (customers, days, seed, variant, label share, left-out typology), whatever their
configuration's name; ``--before-config`` / ``--after-config`` pick one configuration of a run that
holds several (both may then name the same file). Prints Markdown: the fused and anomaly PR-AUC, recall at 1 %, the worst typology
(transactions and customers caught), and per typology the customers caught at 1 % (mean / worst).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

KEY = ["customers", "days", "seed", "variant", "label_share", "leave_out"]
FIGURES = ["pr_auc", "anomaly_pr_auc", "recall_at_1pct", "worst_typology_recall_1pct", "customer_recall_at_1pct",
           "worst_typology_customer_recall_1pct", "fusion_weight_2"]


def load(path: Path, label_share: float | None, config: str | None) -> pd.DataFrame:
    cells = pd.read_csv(path)
    if config is not None:
        cells = cells[cells["config"] == config]
    cells["leave_out"] = cells["leave_out"].astype(object).fillna("")
    if label_share is not None:
        cells = cells[cells["label_share"] == label_share]
    return cells.set_index(KEY)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--label-share", type=float, default=None)
    parser.add_argument("--before-config", default=None)
    parser.add_argument("--after-config", default=None)
    args = parser.parse_args()
    before = load(args.before, args.label_share, args.before_config)
    after = load(args.after, args.label_share, args.after_config)
    common = before.index.intersection(after.index)
    if not len(common):
        raise SystemExit("the two runs have no cell in common")
    before, after = before.loc[common], after.loc[common]
    print(f"{len(common)} cells in common.\n")
    print("| cell | " + " | ".join(f"{f} before / after" for f in FIGURES) + " |")
    print("|---|" + "---|" * len(FIGURES))
    for key in common:
        name = f"s{key[2]} {key[3]}" + (f" -{key[5]}" if key[5] else "")
        print(f"| {name} | " + " | ".join(f"{before.loc[key, f]:.3f} / {after.loc[key, f]:.3f}" for f in FIGURES) + " |")
    print("\n| figure | before mean | before worst | after mean | after worst |\n|---|---|---|---|---|")
    for f in FIGURES:
        print(f"| {f} | {before[f].mean():.3f} | {before[f].min():.3f} | {after[f].mean():.3f} | {after[f].min():.3f} |")
    typ = sorted(c for c in before.columns
                 if c.startswith("customer_recall_1pct_") and before[c].notna().any())
    print("\n| typology (customers caught at 1 %) | before mean / worst | after mean / worst |\n|---|---|---|")
    for c in typ:
        b, a = before[c].dropna(), after[c].dropna()
        print(f"| {c.removeprefix('customer_recall_1pct_')} | {b.mean():.2f} / {b.min():.2f} | "
              f"{a.mean():.2f} / {a.min():.2f} |")


if __name__ == "__main__":
    main()
