"""Time split: order, whole bank days, label cut-offs, no leakage of later reports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.contract.errors import AmlError
from amlscore.training.labels import bank_days, derive_labels
from amlscore.training.split import make_split


def _timestamps(days=100, per_day=20, seed=0):
    rng = np.random.default_rng(seed)
    base = pd.Timestamp("2025-01-01", tz="UTC")
    secs = np.sort(rng.integers(0, days * 86400, days * per_day))
    return pd.Series(base + pd.to_timedelta(secs, unit="s"))


def test_periods_are_in_time_order_on_whole_bank_days():
    ts = _timestamps()
    split = make_split(ts, fractions=(0.6, 0.2, 0.2), utc_offset_hours=8)
    codes = split.codes(ts)
    day = bank_days(ts, 8)
    assert set(np.unique(codes)) == {0, 1, 2}
    # every train row is before every validation row, which is before every test row
    assert ts[codes == 0].max() < ts[codes == 1].min() and ts[codes == 1].max() < ts[codes == 2].min()
    # a bank day is never split across periods
    for d in np.unique(day):
        assert len(set(codes[day == d])) == 1
    shares = np.bincount(codes) / len(codes)
    assert np.allclose(shares, [0.6, 0.2, 0.2], atol=0.02)
    assert day[codes == 1].min() == np.datetime64(split.valid_start)
    assert day[codes == 2].min() == np.datetime64(split.test_start)


def test_label_cutoffs_per_period_and_training_cutoff():
    ts = _timestamps()
    split = make_split(ts, valid_start="2025-03-01", test_start="2025-03-21")
    assert str(split.label_cutoff("train")) == "2025-03-01"
    assert str(split.label_cutoff("valid")) == "2025-03-21"
    assert split.label_cutoff("test") is None
    early = make_split(ts, valid_start="2025-03-01", test_start="2025-03-21", cutoff="2025-03-10")
    assert str(early.label_cutoff("train")) == "2025-03-01"
    assert str(early.label_cutoff("valid")) == "2025-03-10"
    assert str(early.label_cutoff("test")) == "2025-03-10"
    with pytest.raises(ValueError, match="'split'"):
        split.label_cutoff("holdout")


def test_no_report_filed_after_a_period_ends_labels_that_period():
    ts = _timestamps(days=60, per_day=5)
    txns = pd.DataFrame({"txn_id": [f"T{i}" for i in range(len(ts))], "customer_id": "C1", "timestamp": ts})
    split = make_split(txns["timestamp"], valid_start="2025-02-01", test_start="2025-02-15")
    first_train = txns["txn_id"].iat[0]
    reports = pd.DataFrame({
        "report_id": ["R1", "R2", "R3"], "customer_id": ["C1"] * 3, "txn_id": [first_train, first_train, None],
        "period_start": pd.to_datetime([None, None, "2025-01-01"]), "period_end": pd.to_datetime([None, None, "2025-01-31"]),
        # R1 filed during training, R2 in the validation period, R3 (a period report about training days) in the test period
        "report_date": pd.to_datetime(["2025-01-20", "2025-02-03", "2025-02-20"]),
        "label": ["suspicious", "not_suspicious", "suspicious"], "typology": [None] * 3,
    })
    codes = split.codes(txns["timestamp"])
    train_labels = derive_labels(txns, reports, cutoff=split.label_cutoff("train"), utc_offset_hours=8)
    # only R1 may label training rows: R2's disposition and R3's period report come later
    assert train_labels["label"].iat[0] == 1
    assert train_labels.loc[codes == 0, "label"].sum() == 1
    valid_labels = derive_labels(txns, reports, cutoff=split.label_cutoff("valid"), utc_offset_hours=8)
    assert valid_labels["status"].iat[0] == "not_suspicious" and valid_labels["label"].sum() == 0
    test_labels = derive_labels(txns, reports, cutoff=split.label_cutoff("test"), utc_offset_hours=8)
    assert test_labels.loc[codes == 0, "label"].sum() > 1


def test_bad_splits_are_refused_clearly():
    ts = _timestamps()
    with pytest.raises(AmlError, match="three positive shares summing to 1"):
        make_split(ts, fractions=(0.5, 0.2, 0.2))
    with pytest.raises(AmlError, match="time order"):
        make_split(ts, valid_start="2025-03-01", test_start="2025-02-01")
    with pytest.raises(AmlError, match="date YYYY-MM-DD"):
        make_split(ts, valid_start="March")
