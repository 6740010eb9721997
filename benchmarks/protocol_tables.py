"""One Markdown summary of several protocol runs (their ``cells.csv``), for the README and docs.

    .venv/bin/python benchmarks/protocol_tables.py results/before_after_3k_default results/before_after_10k ...

Prints the mean / worst table per group (training configuration, size, days, variant, label share,
left-out typology) of all the cells together, and per configuration the worst recall per typology.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    import pandas as pd  # noqa: PLC0415

    from amlscore.training.protocol import summarise_frame, summary_table_md  # noqa: PLC0415

    frames = [pd.read_csv(Path(folder) / "cells.csv") for folder in sys.argv[1:]]
    cells = pd.concat(frames, ignore_index=True)
    print("\n".join(summary_table_md(summarise_frame(cells))))
    typ = [c for c in cells.columns if c.startswith("recall_1pct_")]
    worst = cells.groupby("config")[typ].min().T
    worst.index = [i.removeprefix("recall_1pct_") for i in worst.index]
    mean = cells.groupby("config")[typ].mean().T
    mean.index = worst.index
    print("\nRecall at 1 % per typology over all cells (mean / worst):\n")
    configs = list(worst.columns)
    print("| typology | " + " | ".join(configs) + " |")
    print("|---|" + "---|" * len(configs))
    for name in worst.index:
        print(f"| {name} | " + " | ".join(f"{mean.loc[name, c]:.2f} / {worst.loc[name, c]:.2f}" for c in configs) + " |")
    print(f"\n{len(cells)} cells; seconds per cell, mean by config: "
          + ", ".join(f"{k} {v:.0f}" for k, v in cells.groupby("config")["seconds"].mean().items()))


if __name__ == "__main__":
    main()
