"""Single-feature ROC-AUC of the component features against the single-identifier counts, per typology
(its rows against innocent rows), on two of the protocol's banks; writes feature_auc.txt's lines.

    PYTHONPATH=. .venv/bin/python benchmarks/results/generalisation/idcomp_3k/feature_auc.py [BANKS_FOLDER]
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from amlscore.contract import load_dataset
from amlscore.features.events import TxnColumns
from amlscore.features.offline import entity_customer_counts, id_component_matrix, ordered_transactions
from amlscore.features.params import load_feature_params
from amlscore.features.registry import CustomerRegistry


def main(banks: str) -> None:
    p = load_feature_params()
    for key in ["c3000_d180_s3_default", "c3000_d180_s2_hard"]:
        d = load_dataset(f"{banks}/{key}", require_reports=False)
        t = ordered_transactions(d.transactions)
        reg = CustomerRegistry.from_customers(d.customers, 8)
        tx = TxnColumns.from_frame(t)
        cust = reg.codes(t.customer_id.astype(str).to_numpy(dtype=object))
        m = id_component_matrix(tx, cust, reg, d.reports, p)
        ip7, = entity_customer_counts(tx.ip_address.codes, tx.t_ns, cust, len(reg), ("7d",))
        dv7, = entity_customer_counts(tx.device_id.codes, tx.t_ns, cust, len(reg), ("7d",))
        agent = reg.other_customers("agent", cust, reg.local_day(tx.t_ns))
        gt = pd.read_csv(f"{banks}/{key}/ground_truth.csv")
        lab = t.txn_id.astype(str).map(gt.set_index(gt.txn_id.astype(str)).typology).fillna("none").to_numpy()
        feats = {"id_component_size": m[:, 0], "id_component_growth": m[:, 1], "id_component_reported": m[:, 2],
                 "ip_customers_7d": ip7, "device_customers_7d": dv7, "agent_other_customers": agent}
        for typ in ["shared_ip_device", "agent_ring"]:
            mask = (lab == typ) | (lab == "none")
            print(key, typ, int((lab == typ).sum()), "rows;",
                  ", ".join(f"{n} {roc_auc_score(lab[mask] == typ, v[mask]):.3f}" for n, v in feats.items()))
        print(key, "size percentiles 50/90/99 of innocent rows", np.percentile(m[lab == "none", 0], [50, 90, 99]),
              "share at 64", round(float((m[lab == "none", 0] >= 64).mean()), 3))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results/banks")
