"""Approved decisions become reports rows that the next training reads (as analysts' feedback is)."""

from __future__ import annotations

import pandas as pd
from casework_helpers import person

from amlscore.casework.dispositions import export_dispositions
from amlscore.casework.ingest import ingest_batch


def test_approved_dispositions_are_read_by_training_as_labels(tmp_path, tiny_bank, work):
    import shutil

    from amlscore.contract import load_dataset
    from amlscore.training.feedback import feedback_files, merge_feedback
    from amlscore.training.labels import derive_labels

    data = tmp_path / "data"
    shutil.copytree(tiny_bank, data)
    dataset = load_dataset(data)
    tx = dataset.transactions
    reported = set(dataset.reports["txn_id"].dropna().astype(str))
    chosen = tx[~tx["txn_id"].astype(str).isin(reported)].drop_duplicates("customer_id").iloc[:2]
    scores = pd.DataFrame({"txn_id": chosen["txn_id"].astype(str), "suspicion_score": [91.0, 77.0],
                           "rule_score": [50.0, 40.0], "lgbm_probability": [0.9, 0.7], "anomaly_score": [0.2, 0.1],
                           "alert": [True, True], "top_reasons": ["[]", "[]"]})
    scores.to_parquet(tmp_path / "scores.parquet")
    added, opened = ingest_batch(work, tmp_path / "scores.parquet", tx, dataset.customers)
    assert (added, opened) == (2, 2)
    cases = {r[1]: r[0] for r in work.store.db.execute("SELECT case_id, customer_id FROM cases")}
    sus_txn, neg_txn = (str(t) for t in chosen["txn_id"])
    sus_case, neg_case = (cases[str(c)] for c in chosen["customer_id"])
    day = pd.Timestamp(chosen["timestamp"].max()).tz_convert("UTC") + pd.Timedelta(days=2)
    for cid, decision in ((sus_case, "suspicious"), (neg_case, "not_suspicious")):
        work.triage(cid, person("alice"))
        work.decide(cid, person("alice"), decision, "checked", narrative="n", typology="fan_in",
                    at=day.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    work.approve(sus_case, person("bob"))
    path, n = export_dispositions(work.store, data)
    assert n == 1  # only approved decisions become labels
    work.approve(neg_case, person("carol"))
    path, n = export_dispositions(work.store, data)
    assert path == data / "feedback" / "casework.csv" and n == 2

    rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert set(rows["label"]) == {"suspicious", "not_suspicious"}
    merged, n_feedback = merge_feedback(dataset, feedback_files(data))  # what `amlscore train --data` does
    assert n_feedback == 2
    labels = derive_labels(merged.transactions, merged.reports, cutoff=None, utc_offset_hours=8.0)
    by_txn = dict(zip(merged.transactions["txn_id"].astype(str), labels["label"]))
    assert by_txn[sus_txn] == 1 and by_txn[neg_txn] == 0
    status = dict(zip(merged.transactions["txn_id"].astype(str), labels["status"]))
    assert status[neg_txn] == "not_suspicious" and status[sus_txn] == "suspicious"
