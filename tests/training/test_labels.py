"""Label derivation: transaction and period reports, cut-off, confirmed negatives."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.training.labels import derive_labels, reported_customers


def _txns():
    # C1 and C2; timestamps UTC; bank clock UTC+8
    rows = [
        ("T1", "C1", "2025-03-01T02:00:00Z"),   # local 03-01 10:00
        ("T2", "C1", "2025-03-01T17:00:00Z"),   # local 03-02 01:00 (a different bank day than its UTC day)
        ("T3", "C1", "2025-03-05T03:00:00Z"),   # local 03-05
        ("T4", "C1", "2025-03-10T03:00:00Z"),   # local 03-10
        ("T5", "C2", "2025-03-02T03:00:00Z"),   # other customer, inside C1's period
        ("T6", "C2", "2025-03-20T03:00:00Z"),
    ]
    return pd.DataFrame(rows, columns=["txn_id", "customer_id", "timestamp"]).assign(
        timestamp=lambda f: pd.to_datetime(f["timestamp"], utc=True))


def _reports(rows):
    f = pd.DataFrame(rows, columns=["report_id", "customer_id", "txn_id", "period_start", "period_end", "report_date",
                                    "label", "typology"])
    for c in ("period_start", "period_end", "report_date"):
        f[c] = pd.to_datetime(f[c])
    return f


def _by_id(lab):
    return lab.set_index("txn_id")


def test_transaction_report_labels_only_that_transaction():
    rep = _reports([("R1", "C1", "T3", None, None, "2025-03-20", "suspicious", "structuring")])
    lab = _by_id(derive_labels(_txns(), rep, cutoff=None, utc_offset_hours=8))
    assert lab.loc["T3", "label"] == 1 and lab.loc["T3", "status"] == "suspicious"
    assert lab.loc["T3", "source"] == "transaction" and lab.loc["T3", "typology"] == "structuring"
    assert lab.drop(index="T3")["label"].eq(0).all()
    assert lab.drop(index="T3")["status"].eq("unlabelled").all()


def test_period_report_labels_the_customers_transactions_in_the_period_on_the_bank_clock():
    # period 03-02..03-05 (bank days): T2 (local 03-02) and T3 (03-05) in; T1 (local 03-01) out; C2 never
    rep = _reports([("R1", "C1", None, "2025-03-02", "2025-03-05", "2025-03-25", "suspicious", None)])
    lab = _by_id(derive_labels(_txns(), rep, cutoff=None, utc_offset_hours=8))
    assert lab["label"].to_dict() == {"T1": 0, "T2": 1, "T3": 1, "T4": 0, "T5": 0, "T6": 0}
    assert lab.loc["T2", "source"] == "period" and lab.loc["T2", "bag"] == "R1"
    # on UTC days T2 would fall on 03-01, outside the period: the offset matters
    lab_utc = _by_id(derive_labels(_txns(), rep, cutoff=None, utc_offset_hours=0))
    assert lab_utc.loc["T2", "label"] == 0


def test_only_reports_filed_before_the_cutoff_count():
    rep = _reports([
        ("R1", "C1", "T1", None, None, "2025-03-09", "suspicious", None),
        ("R2", "C1", "T3", None, None, "2025-03-10", "suspicious", None),   # filed on the cut-off day: excluded
        ("R3", "C2", None, "2025-03-01", "2025-03-31", "2025-04-15", "suspicious", None),
    ])
    lab = _by_id(derive_labels(_txns(), rep, cutoff="2025-03-10", utc_offset_hours=8))
    assert lab["label"].to_dict() == {"T1": 1, "T2": 0, "T3": 0, "T4": 0, "T5": 0, "T6": 0}
    lab_all = _by_id(derive_labels(_txns(), rep, cutoff=None, utc_offset_hours=8))
    assert lab_all["label"].sum() == 4
    assert reported_customers(rep, "2025-03-10") == {"C1"}
    assert reported_customers(rep, None) == {"C1", "C2"}


@pytest.mark.parametrize("order", ["negative_first", "negative_last"])
def test_not_suspicious_is_a_confirmed_negative_that_overrides(order):
    pos = ("R1", "C1", None, "2025-03-01", "2025-03-10", "2025-03-20", "suspicious", "fan_in")
    neg_txn = ("R2", "C1", "T3", None, None, "2025-03-18" if order == "negative_first" else "2025-03-22",
               "not_suspicious", None)
    neg_period = ("R3", "C2", None, "2025-03-01", "2025-03-31", "2025-04-02", "not_suspicious", None)
    rep = _reports([pos, neg_txn, neg_period])
    lab = _by_id(derive_labels(_txns(), rep, cutoff=None, utc_offset_hours=8))
    assert lab.loc["T3", "label"] == 0 and lab.loc["T3", "status"] == "not_suspicious"
    assert lab.loc[["T1", "T2", "T4"], "label"].eq(1).all()
    assert lab.loc[["T5", "T6"], "status"].eq("not_suspicious").all()
    assert lab.loc[["T5", "T6"], "label"].eq(0).all()


def test_transaction_report_wins_the_source_and_empty_reports_label_nothing():
    rep = _reports([
        ("R1", "C1", None, "2025-03-01", "2025-03-10", "2025-03-20", "suspicious", None),
        ("R2", "C1", "T3", None, None, "2025-03-21", "suspicious", "cycle"),
    ])
    lab = _by_id(derive_labels(_txns(), rep, cutoff=None, utc_offset_hours=8))
    assert lab.loc["T3", "source"] == "transaction" and lab.loc["T3", "bag"] == ""
    assert lab.loc["T1", "source"] == "period" and lab.loc["T1", "bag"] == "R1"
    empty = derive_labels(_txns(), rep.iloc[:0], cutoff=None, utc_offset_hours=8)
    assert empty["label"].sum() == 0 and empty["status"].eq("unlabelled").all()
