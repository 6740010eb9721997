"""Backtests: a rules change that moves a threshold, replayed over the bank, and the ``amlscore backtest`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.contract.errors import AmlError
from amlscore.models.model_set import ModelSet
from amlscore.models.rules.config import DEFAULT_CONFIG_PATH
from amlscore.monitoring.backtest import compare
from amlscore.training.replay import replay, with_rules
from amlscore.training.scoring import load_folder

STRUCTURING = '- {feature: near_threshold_cash_cnt_7d, op: ">=", threshold: 3}'


def _rules(tmp_path: Path, old: str, new: str) -> Path:
    text = Path(DEFAULT_CONFIG_PATH).read_text(encoding="utf-8")
    assert text.count(old) == 1
    path = tmp_path / "rules_new.yaml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def folder(bank_dir):
    return load_folder(bank_dir)


def test_lowering_a_rule_threshold_only_adds_alerts(model_set_dir, folder, tmp_path):
    base = ModelSet.load(model_set_dir)
    candidate = with_rules(base, _rules(tmp_path, STRUCTURING, STRUCTURING.replace("threshold: 3", "threshold: 1")))
    frame = replay(base, candidate, folder)
    report = compare(frame, base="champion", candidate="new rules")
    # the fusion is monotone in the rule score: a rule that fires more often can only add alerts
    assert report.removed == 0
    assert report.added > 0
    # the replay's alerts are those of scoring the folder with each model set directly
    feats = folder.features_for(base)
    expected = candidate.score_frame(feats, reasons="none")["alert"].to_numpy()
    assert report.metrics["candidate"]["alerts"] == int(expected.sum())
    assert report.metrics["candidate"]["alerts"] - report.metrics["base"]["alerts"] == report.added
    # the per-day, per-channel and per-typology tables add up
    assert report.daily["added"].sum() == report.added == report.per_channel["added"].sum()
    assert report.per_customer_type["candidate_alerts"].sum() == report.metrics["candidate"]["alerts"]
    assert (report.per_typology["candidate_recall"] >= report.per_typology["base_recall"]).all()
    assert report.metrics["candidate"]["recall_reports"] >= report.metrics["base"]["recall_reports"]
    added = frame["candidate_alert"] & ~frame["base_alert"]
    assert (frame.loc[added, "candidate_score"] >= base.alert_threshold).all()
    assert (frame.loc[added, "base_score"] < base.alert_threshold).all()


def test_raising_a_rule_threshold_only_removes_alerts(model_set_dir, folder, tmp_path):
    base = ModelSet.load(model_set_dir)
    candidate = with_rules(base, _rules(tmp_path, STRUCTURING, STRUCTURING.replace("threshold: 3", "threshold: 1000")))
    report = compare(replay(base, candidate, folder), base="champion", candidate="new rules")
    assert report.added == 0
    assert report.removed > 0  # the bank's structuring scenarios tripped the rule
    assert report.metrics["candidate"]["alerts"] == report.metrics["base"]["alerts"] - report.removed
    days = report.daily
    assert np.array_equal(days["candidate_alerts"].to_numpy(),
                          (days["base_alerts"] - days["removed"]).to_numpy())


def test_backtest_command_writes_html_and_json(model_set_dir, bank_dir, tmp_path):
    rules = _rules(tmp_path, STRUCTURING, STRUCTURING.replace("threshold: 3", "threshold: 1"))
    out = tmp_path / "bt" / "backtest.html"
    result = CliRunner().invoke(app, ["backtest", "--data", str(bank_dir), "--base", str(model_set_dir),
                                      "--rules", str(rules), "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["alerts_removed"] == 0 and summary["alerts_added"] > 0
    assert summary["metrics"]["candidate"]["alerts"] == summary["metrics"]["base"]["alerts"] + summary["alerts_added"]
    assert len(summary["daily"]) == summary["days"]
    html = out.read_text()
    assert html.count("<svg") == 2 and "Per typology" in html


def test_backtest_needs_something_to_compare(bank_dir, model_set_dir):
    result = CliRunner().invoke(app, ["backtest", "--data", str(bank_dir), "--base", str(model_set_dir)])
    assert isinstance(result.exception, AmlError) and "nothing to compare" in str(result.exception)


def test_a_missing_rules_file_is_named(model_set_dir, tmp_path):
    with pytest.raises(AmlError, match="nope.yaml does not exist"):
        with_rules(ModelSet.load(model_set_dir), tmp_path / "nope.yaml")
