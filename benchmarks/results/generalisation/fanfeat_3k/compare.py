"""Same cells of two protocol runs (cells.csv): per world and overall, mean and worst. Usage: compare.py BEFORE AFTER [LABEL]"""
import sys
import pandas as pd

def md(df):
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        lines.append("| " + " | ".join(f"{v:.3f}" if isinstance(v, float) else str(v) for v in r) + " |")
    return "\n".join(lines)

base = pd.read_csv(sys.argv[1]); new = pd.read_csv(sys.argv[2]); label = sys.argv[3] if len(sys.argv) > 3 else "before"
base = base[(base.label_share == 0.25) & base.leave_out.isna()]
cols = ["pr_auc", "recall_at_1pct", "customer_recall_at_1pct", "worst_typology_recall_1pct",
        "worst_typology_customer_recall_1pct", "recall_1pct_fan_in", "customer_recall_1pct_fan_in",
        "recall_1pct_fan_out", "customer_recall_1pct_fan_out"]
key = ["seed", "variant"]
m = base[key + cols].merge(new[key + cols], on=key, suffixes=("_b", "_a"))
assert len(m) == 6, len(m)
rows = []
for scope, g in [("default", m[m.variant == "default"]), ("hard", m[m.variant == "hard"]), ("all 6", m)]:
    for c in cols:
        rows.append({"cells": scope, "metric": c,
                     f"{label} mean": g[c + "_b"].mean(), f"{label} worst": g[c + "_b"].min(),
                     "fanfeat mean": g[c + "_a"].mean(), "fanfeat worst": g[c + "_a"].min()})
out = pd.DataFrame(rows)
print(md(out))
print()
print(m[key + [c + s for c in ["pr_auc", "customer_recall_1pct_fan_in", "recall_1pct_fan_in", "customer_recall_1pct_fan_out"] for s in ("_b", "_a")]].pipe(md))
