"""Drift detection end to end: a bank whose cash share is doubled, and the ``amlscore monitor`` command."""

from __future__ import annotations

import datetime as dt
import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.models.model_set import ModelSet
from amlscore.monitoring.batch import score_period
from amlscore.monitoring.config import load_thresholds
from amlscore.monitoring.drift import compute_drift

# Behavioural cash features that a doubled cash share must move, and features that have nothing to do with cash.
CASH = ("cash_wd_cnt_30d", "cash_wd_cnt_7d")
UNRELATED = ("is_cross_border", "is_high_risk_country", "is_ip_abroad", "hour_local", "is_corporate", "is_night",
             "is_round_amount", "amount")


def _drift(model_set: ModelSet, folder, start):
    period = score_period(model_set, folder, start=start)
    return compute_drift(model_set.reference, period.columns, period.alert, period.segments, period.days,
                         load_thresholds())


@pytest.fixture(scope="module")
def drifts(model_set_dir, bank_dir, doubled_cash_dir):
    ms = ModelSet.load(model_set_dir)
    start = dt.date.fromisoformat(ms.metadata["split"]["test_start"])  # the days after the reference
    return _drift(ms, bank_dir, start), _drift(ms, doubled_cash_dir, start)


def test_the_doubled_bank_has_twice_the_cash_share(bank_dir, doubled_cash_dir):
    def share(folder):
        return pd.read_parquet(folder / "transactions.parquet")["txn_type"].astype(str).isin(
            ["cash_deposit", "cash_withdrawal"]).mean()

    assert share(doubled_cash_dir) == pytest.approx(2 * share(bank_dir), rel=1e-3)


def test_doubled_cash_share_is_action_level_on_cash_features_only(drifts):
    same, doubled = drifts
    for name in CASH:
        assert same.column(name).psi_level != "action", name  # the same bank is not flagged on cash
        assert doubled.column(name).psi_level == "action", name
    assert doubled.column("cash_share_30d").psi > 2 * same.column("cash_share_30d").psi
    for name in UNRELATED:
        assert doubled.column(name).psi_level == "ok", (name, doubled.column(name).psi)
    flagged = {f.subject for f in doubled.findings if f.level == "action"}
    assert set(CASH) <= flagged


def test_monitor_command_writes_the_html_report_and_the_json_summary(model_set_dir, doubled_cash_dir, tmp_path):
    out = tmp_path / "reports" / "drift.html"
    result = CliRunner().invoke(app, ["monitor", "--data", str(doubled_cash_dir), "--model-dir", str(model_set_dir),
                                      "--out", str(out), "--fail-on", "action"])
    assert result.exit_code == 1, result.output  # the status is action, and --fail-on action says so
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["status"] == "action"
    assert {c["name"] for c in summary["columns"] if c["level"] == "action"} >= set(CASH)
    html = out.read_text()
    assert html.count("<svg") >= 3 and "What to do" in html and "cash_wd_cnt_30d" in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # nothing fetched from elsewhere
    assert not list(out.parent.glob("*.partial"))


def test_monitor_refuses_a_model_set_without_reference(model_set_dir, bank_dir, tmp_path):
    from amlscore.cli import main  # noqa: F401 - the same app main() runs

    ms = ModelSet.load(model_set_dir)
    ms.reference = None
    ms.save(tmp_path / "old")
    result = CliRunner().invoke(app, ["monitor", "--data", str(bank_dir), "--model-dir", str(tmp_path / "old"),
                                      "--out", str(tmp_path / "d.html")])
    assert result.exit_code != 0
    assert "carries no training reference" in str(result.exception)
    assert not (tmp_path / "d.html").exists()
