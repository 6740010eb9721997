"""Per-day distributions on the reference bins: the same PSI as the batch drift, row by row or at once."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from amlscore.models.daily import DailyDistributions
from amlscore.models.model_set import ModelSet
from amlscore.monitoring.batch import score_period
from amlscore.monitoring.config import load_thresholds
from amlscore.monitoring.drift import SCORE_COLUMNS, compute_drift


@pytest.fixture(scope="module")
def scored(model_set_dir, bank_dir):
    ms = ModelSet.load(model_set_dir)
    start = dt.date.fromisoformat(ms.metadata["split"]["test_start"])
    return ms, score_period(ms, bank_dir, start=start, end=start + dt.timedelta(days=2))


def _matrix(ms, period, rows):
    columns = list(ms.feature_names) + list(SCORE_COLUMNS)
    return columns, np.column_stack([period.columns[c][rows] for c in columns])


def test_daily_psi_equals_the_batch_drift_of_the_day(scored):
    ms, period = scored
    columns, values = _matrix(ms, period, np.arange(len(period)))
    daily = DailyDistributions(ms.reference, columns)
    days = period.days.astype(str)
    daily.add_many(days, values, period.alert, period.segments)
    assert daily.days == sorted(set(days))
    for day in daily.days:
        rows = np.flatnonzero(days == day)
        batch = compute_drift(ms.reference, {c: period.columns[c][rows] for c in columns}, period.alert[rows],
                              {k: v[rows] for k, v in period.segments.items()}, period.days[rows], load_thresholds())
        summary = daily.summary(day)
        assert summary["rows"] == len(rows) and summary["alerts"] == int(period.alert[rows].sum())
        for c in columns:
            assert summary["psi"][c] == pytest.approx(batch.column(c).psi, abs=1e-12), (day, c)
        worst = batch.worst_psi
        assert summary["worst_psi"] == {"column": worst.name, "psi": pytest.approx(worst.psi)}
        for name, table in summary["segments"].items():
            for value, cell in table.items():
                rate = next(r for r in batch.alert_rates if r.segment == name and r.value == value)
                assert (cell["rows"], cell["alerts"]) == (rate.rows, rate.alerts)
        scores = period.columns["suspicion_score"][rows]
        for q, got in summary["score_quantiles"].items():
            exact = np.quantile(scores, float(q[1:]), method="inverted_cdf")
            assert exact <= got <= exact + 0.1 + 1e-9  # the upper edge of the 0.1-wide bin holding it


def test_row_by_row_equals_all_at_once_and_survives_a_restart(scored, tmp_path):
    ms, period = scored
    rows = np.arange(0, len(period), 7)
    columns, values = _matrix(ms, period, rows)
    days = period.days[rows].astype(str)
    segments = {k: v[rows] for k, v in period.segments.items()}
    at_once = DailyDistributions(ms.reference, columns)
    at_once.add_many(days, values, period.alert[rows], segments)
    one_by_one = DailyDistributions(ms.reference, columns)
    for i in range(len(rows)):
        one_by_one.add(days[i], values[i], bool(period.alert[rows][i]), {k: v[i] for k, v in segments.items()})
    assert one_by_one.save(tmp_path / "daily") == len(set(days))
    assert one_by_one.save(tmp_path / "daily") == 0  # nothing changed since
    restarted = DailyDistributions(ms.reference, columns)
    assert restarted.load(tmp_path / "daily") == len(set(days))
    for day in at_once.days:
        assert one_by_one.summary(day) == at_once.summary(day) == restarted.summary(day)


def test_days_of_another_reference_are_not_read(scored, tmp_path):
    ms, period = scored
    columns, values = _matrix(ms, period, np.arange(10))
    daily = DailyDistributions(ms.reference, columns)
    daily.add_many(period.days[:10].astype(str), values, period.alert[:10], {})
    daily.save(tmp_path)
    ms.reference.rows += 1  # another reference (fingerprint)
    try:
        assert DailyDistributions(ms.reference, columns).load(tmp_path) == 0
    finally:
        ms.reference.rows -= 1


def test_batch_scoring_keeps_the_same_counts_as_the_monitor(model_set_dir, bank_dir, scored, tmp_path):
    from amlscore.contract.load import load_dataset
    from amlscore.features.offline import build_features
    from amlscore.monitoring.batch import daily_counts

    ms, period = scored
    dataset = load_dataset(bank_dir, require_reports=False)
    feats = build_features(dataset, ms.feature_params)
    counts = daily_counts(ms, dataset, feats, ms.score_frame(feats, reasons="none"))
    assert counts.save(tmp_path) == len(counts.days) == 150  # the bank's 150 days (bank clock)
    assert sum(counts.summary(day)["rows"] for day in counts.days) == len(feats)
    columns, values = _matrix(ms, period, np.arange(len(period)))
    direct = DailyDistributions(ms.reference, columns)
    direct.add_many(period.days.astype(str), values, period.alert, period.segments)
    for day in direct.days:  # the monitor's days are a subset of the batch's, with the same figures
        assert counts.summary(day) == direct.summary(day)
