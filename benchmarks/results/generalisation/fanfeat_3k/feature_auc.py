"""Per bank of the fanfeat_3k grid: ROC-AUC of single features for fan_in / fan_out laundering rows (whole history,
by direction) against the innocent customers' rows. Run from a checkout: PYTHONPATH=. python feature_auc.py
(banks from bench_generalisation.py --cache /tmp/fanfeat_banks)."""
import sys, numpy as np, pandas as pd
from pathlib import Path
from amlscore.contract import load_dataset
from amlscore.features.offline import build_features
def auc(pos, neg):
    pos = np.nan_to_num(pos, nan=-1.0); neg = np.nan_to_num(neg, nan=-1.0)
    allv = np.r_[pos, neg]; r = pd.Series(allv).rank().to_numpy()
    return (r[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
names = ["cp_fan_in_7d", "fan_in_30d", "cp_new_payers_30d", "cp_new_payees_30d", "cp_pass_through_30d", "pair_new_30d",
         "out_to_collectors_share_30d", "in_from_distributors_share_30d"]
rows = []
for folder in sorted(Path("/tmp/fanfeat_banks").iterdir()):
    ds = load_dataset(folder, require_reports=False)
    f = build_features(ds)
    gt = pd.read_csv(folder / "ground_truth.csv")
    typ = f["txn_id"].astype(str).map(dict(zip(gt.txn_id.astype(str), gt.typology))).fillna("none").to_numpy()
    launder = set(gt.customer_id.astype(str))
    innocent = (typ == "none") & ~f["customer_id"].astype(str).isin(launder).to_numpy()
    for t in ("fan_in", "fan_out"):
        for direction in ("out", "in"):
            m = (typ == t) & (f["is_in"].to_numpy() == (direction == "in"))
            if m.sum() < 5:
                continue
            neg = innocent & (f["is_in"].to_numpy() == (direction == "in"))
            r = {"bank": folder.name, "typology": t, "dir": direction, "rows": int(m.sum())}
            for n in names:
                r[n] = auc(f.loc[m, n].to_numpy(float), f.loc[neg, n].to_numpy(float))
            rows.append(r)
df = pd.DataFrame(rows)
pd.set_option("display.width", 250)
print(df.round(2).to_string(index=False))
print(df.groupby(["typology", "dir"])[names].mean().round(2).to_string())
