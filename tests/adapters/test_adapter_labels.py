"""Labels into bank-held reports: shares, lags, period reports, determinism, the ground truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.adapters.labels import ReportPolicy, bank_reports, local_days
from amlscore.contract.errors import AmlError


def _laundering(n_customers: int = 300, per_customer: int = 4, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cust = np.repeat([f"C{i:04d}" for i in range(n_customers)], per_customer)
    ts = pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 90 * 86400, len(cust)), unit="s")
    return pd.DataFrame({"txn_id": [f"T{i:06d}" for i in range(len(cust))], "customer_id": cust, "timestamp": ts,
                         "typology": rng.choice(["fan_in", "cycle", None], len(cust)), "scenario_id": None})


def _cleared(n: int = 50) -> pd.DataFrame:
    ts = pd.Timestamp("2024-02-01", tz="UTC") + pd.to_timedelta(np.arange(n) * 3600, unit="s")
    return pd.DataFrame({"txn_id": [f"N{i:04d}" for i in range(n)], "customer_id": [f"X{i}" for i in range(n)],
                         "timestamp": ts})


def test_reports_are_filed_on_or_after_the_activity_within_the_lags() -> None:
    lau = _laundering()
    policy = ReportPolicy()
    reports, truth = bank_reports(lau, _cleared(), policy, seed=1)
    by_txn = reports.dropna(subset=["txn_id"]).merge(
        pd.concat([lau, _cleared()]).assign(day=lambda f: local_days(f["timestamp"]))[["txn_id", "day"]], on="txn_id")
    lag = (by_txn["report_date"] - by_txn["day"]).dt.days
    assert lag.between(policy.min_lag_days, policy.max_lag_days).all()
    period = reports[reports["txn_id"].isna()]
    assert len(period) and (period["report_date"] >= period["period_end"]).all()
    days = lau.assign(day=local_days(lau["timestamp"])).groupby("customer_id")["day"].agg(["min", "max"])
    assert (days.loc[period["customer_id"], "min"].to_numpy() == period["period_start"].to_numpy()).all()
    assert (days.loc[period["customer_id"], "max"].to_numpy() == period["period_end"].to_numpy()).all()
    assert reports["report_id"].is_unique and list(reports["report_id"][:2]) == ["R00000001", "R00000002"]
    assert len(truth) == len(lau) and set(truth["typology"]) <= {"fan_in", "cycle", "unknown"}


def test_shares_of_customers_reported_by_period_missed_and_cleared() -> None:
    lau = _laundering(n_customers=2000, per_customer=2)
    reports, truth = bank_reports(lau, _cleared(), ReportPolicy(report_share=0.6, period_share=0.3,
                                                                missed_share=0.15), seed=2)
    reported = truth.groupby("customer_id")["reported"].first()
    assert reported.mean() == pytest.approx(0.6, abs=0.04)
    suspicious = reports[reports["label"] == "suspicious"]
    assert set(suspicious["customer_id"]) == set(reported.index[reported])
    period_customers = suspicious.loc[suspicious["txn_id"].isna(), "customer_id"].nunique()
    assert period_customers / reported.sum() == pytest.approx(0.3, abs=0.05)
    missed = reports[(reports["label"] == "not_suspicious") & reports["customer_id"].str.startswith("C")]
    assert missed["customer_id"].is_unique and not set(missed["customer_id"]) & set(suspicious["customer_id"])
    assert missed["customer_id"].nunique() / (~reported).sum() == pytest.approx(0.15, abs=0.04)
    assert (reports["customer_id"].str.startswith("X")).sum() == 50  # every cleared candidate, none laundering


def test_the_same_seed_gives_the_same_reports_whatever_the_row_order() -> None:
    lau = _laundering()
    a, ta = bank_reports(lau, _cleared(), ReportPolicy(), seed=9)
    b, tb = bank_reports(lau.sample(frac=1.0, random_state=4), _cleared().iloc[::-1], ReportPolicy(), seed=9)
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    c, _ = bank_reports(lau, _cleared(), ReportPolicy(), seed=10)
    assert not a.equals(c)


def test_report_share_zero_and_one() -> None:
    lau = _laundering(n_customers=50)
    none, truth = bank_reports(lau, _cleared(0), ReportPolicy(report_share=0.0, missed_share=0.0), seed=1)
    assert len(none) == 0 and not truth["reported"].any()
    every, truth = bank_reports(lau, _cleared(0), ReportPolicy(report_share=1.0), seed=1)
    assert truth["reported"].all() and set(every["customer_id"]) == set(lau["customer_id"])


@pytest.mark.parametrize("kwargs", [{"report_share": 1.5}, {"cleared_rate": -0.1}, {"min_lag_days": 5, "max_lag_days": 2}])
def test_policy_out_of_range_is_refused(kwargs: dict) -> None:
    with pytest.raises(AmlError, match="ReportPolicy"):
        ReportPolicy(**kwargs)
