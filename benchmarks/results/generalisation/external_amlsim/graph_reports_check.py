"""Check: do the protocol's label-share cells see the reports they do not train on through the graph features?

    flock /tmp/heavy.lock nice -n 5 .venv/bin/python benchmarks/results/generalisation/external_amlsim/graph_reports_check.py \
        results/banks/external/amlsim_20k_s1 results/banks/external/amlsim_20k_s2 --share 0.1

The protocol builds the features once per bank from every report of the bank (``run_protocol`` ->
``prepare``), then trains each cell on a share of the reports. The "reported neighbour" graph features
(``cp_reported``, ``reported_cps_30d``, ...) read the reports, so a cell at 10 % of the labels is scored
with features that know the other 90 %. This script scores the same cell both ways on converted banks:
features from every report (as the protocol does) and features from the cell's own reports (as a bank
holding only those would), same training, same labels, same test period and ground truth.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("banks", type=Path, nargs="+", help="converted external sets (<cache>/external/<name>_s<seed>)")
    ap.add_argument("--share", type=float, default=0.1)
    args = ap.parse_args()

    from amlscore.contract.load import load_dataset
    from amlscore.training.protocol import Cell, ProtocolGrid, external_bank, run_cell, subsample_reports
    from amlscore.training.train import prepare

    print("| bank | share | features from | suspicious reports in features | PR-AUC | recall@1% | customers caught@1% |")
    print("|---|---|---|---|---|---|---|")
    for folder in args.banks:
        seed = int(folder.name.rsplit("_s", 1)[1])
        grid = ProtocolGrid(seeds=[seed], external=[{"name": folder.name.rsplit("_s", 1)[0], "format": "amlsim",
                                                     "path": str(folder)}])
        dataset = load_dataset(folder)
        bank = external_bank(grid.external[0], seed, dataset)
        config = grid.train_config(folder, seed)
        kept = subsample_reports(dataset.reports, args.share, seed)
        for what, data, share in (("every report", dataset, args.share),
                                  ("the cell's reports", dataclasses.replace(dataset, reports=kept), 1.0)):
            # with the cell's reports in the data set, share 1.0 of them is the same training labels
            prep = prepare(config, dataset=data)
            r = run_cell(prep, Cell(bank, share, None), config)
            used = int((data.reports["label"].astype(str) == "suspicious").sum())
            print(f"| {folder.name} | {args.share} | {what} | {used:,} | {r.metrics['pr_auc']:.3f} "
                  f"| {r.metrics['recall_at_1pct']:.3f} | {r.metrics['customer_recall_at_1pct']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
