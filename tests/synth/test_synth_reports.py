"""Labels are partial, late, sometimes by period, and only launderers are ever called suspicious."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.contract.load import Dataset
from amlscore.synth.bank import SyntheticBank
from amlscore.synth.config import TYPOLOGIES

from synthbank_helpers import local_days, participants


def _reports(dataset: Dataset) -> pd.DataFrame:
    rep = dataset.reports
    tx = dataset.transactions[["txn_id", "timestamp"]]
    return rep.merge(tx, on="txn_id", how="left")


def test_normal_customers_are_never_reported_suspicious(dataset: Dataset, bank: SyntheticBank) -> None:
    rep = dataset.reports
    suspicious = rep[rep["label"] == "suspicious"]
    assert set(suspicious["customer_id"]) <= participants(bank)
    listed = suspicious["txn_id"].dropna()
    assert listed.isin(bank.ground_truth["txn_id"].astype(str)).all()


def test_reports_lag_the_activity_by_days_to_weeks(dataset: Dataset) -> None:
    rep = _reports(dataset)
    by_txn = rep[rep["txn_id"].notna()]
    lag = (by_txn["report_date"].to_numpy(dtype="datetime64[D]") - local_days(by_txn["timestamp"])).astype(int)
    assert lag.min() >= 3 and lag.max() <= 60 and 7 <= np.median(lag) <= 30
    by_period = rep[rep["txn_id"].isna()]
    lag_p = (by_period["report_date"] - by_period["period_end"]).dt.days
    assert lag_p.min() >= 3 and lag_p.max() <= 60
    assert (by_period["period_start"] <= by_period["period_end"]).all()


def test_some_reports_cover_a_period_and_some_are_not_suspicious(dataset: Dataset, bank: SyntheticBank) -> None:
    rep = dataset.reports
    assert 0.1 < rep["txn_id"].isna().mean() < 0.5
    innocent = rep[rep["label"] == "not_suspicious"]
    assert len(innocent) > 5
    # Mostly unusual-but-innocent normal customers (a few wrongly closed alerts on launderers).
    assert (~innocent["customer_id"].isin(participants(bank))).mean() > 0.7
    assert innocent["typology"].isna().all()


def test_typology_is_written_on_most_suspicious_reports(dataset: Dataset) -> None:
    suspicious = dataset.reports[dataset.reports["label"] == "suspicious"]
    written = suspicious["typology"].dropna()
    assert set(written) <= set(TYPOLOGIES)
    assert 0.5 < len(written) / len(suspicious) < 1.0


def test_only_part_of_the_laundering_is_reported(bank: SyntheticBank) -> None:
    gt = bank.ground_truth
    per_scenario = gt.groupby("scenario_id")["reported"].any()
    assert 0.3 < per_scenario.mean() < 0.85
    assert 0.1 < gt["reported"].mean() < 0.8
    assert gt.groupby("typology")["reported"].any().all()  # every typology has some labels


def test_reported_flag_matches_the_reports(dataset: Dataset, bank: SyntheticBank) -> None:
    gt = bank.ground_truth.astype({"txn_id": str, "customer_id": str})
    rep = dataset.reports[dataset.reports["label"] == "suspicious"]
    listed = set(rep["txn_id"].dropna())
    flagged_by_txn = gt["txn_id"].isin(listed)
    assert gt.loc[flagged_by_txn, "reported"].all()
    periods = rep[rep["txn_id"].isna()]
    tx = dataset.transactions.set_index("txn_id")
    day = pd.Series(local_days(tx.loc[gt["txn_id"], "timestamp"]), index=gt.index)
    in_period = np.zeros(len(gt), dtype=bool)
    for _, r in periods.iterrows():
        in_period |= ((gt["customer_id"] == r["customer_id"]) & (day >= np.datetime64(r["period_start"], "D"))
                      & (day <= np.datetime64(r["period_end"], "D"))).to_numpy()
    assert (gt["reported"].to_numpy() == (flagged_by_txn.to_numpy() | in_period)).all()
