"""The anomaly score's floor gated on evidence: how well the anomaly score alone ranks the bank's reports."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import FAST

from amlscore.contract.errors import AmlError
from amlscore.training.few_labels import anomaly_evidence
from amlscore.training.report import fusion_card_lines, model_card_md
from amlscore.training.train import TrainConfig, floor_decision, fusion_of, train


def test_the_evidence_is_the_weighted_roc_auc_of_the_anomaly_score_alone():
    a, y = np.array([0.1, 0.5, 0.4, 0.9]), np.array([0, 0, 1, 1])
    assert anomaly_evidence(a, y, np.ones(4)) == pytest.approx(0.75)
    # an unlabelled row standing for three: the one negative above a positive counts three times
    assert anomaly_evidence(a, y, np.array([1.0, 3.0, 1.0, 1.0])) == pytest.approx(5 / 8)
    # weight 0 drops the row
    assert anomaly_evidence(a, y, np.array([1.0, 0.0, 1.0, 1.0])) == pytest.approx(1.0)
    assert anomaly_evidence(-a, y, np.array([1.0, 0.0, 1.0, 1.0])) == pytest.approx(0.0)
    assert math.isnan(anomaly_evidence(a, y, np.array([1.0, 1.0, 0.0, 0.0])))


@pytest.mark.parametrize("gate, evidence, applied", [
    (None, 0.55, True),            # ungated: the floor always applies
    (0.8, 0.85, True),
    (0.8, 0.8, True),              # the bar itself passes
    (0.8, 0.79, False),
    (0.8, float("nan"), False),    # no evidence is not evidence
])
def test_the_gate_decides_whether_the_floor_reaches_the_fusion(tmp_path, gate, evidence, applied):
    config = TrainConfig(data=tmp_path, fusion_anomaly_floor=1.0, fusion_anomaly_gate=gate)
    decision = floor_decision(config, evidence)
    assert decision["applied"] is applied and decision["floor"] == 1.0 and decision["gate"] == gate
    assert fusion_of(config, evidence).min_log_odds_per_sd == ((0.0, 0.0, 1.0) if applied else None)


@pytest.mark.parametrize("most, reported, applied", [(None, 10_000, True), (120, 119, True), (120, 120, False)])
def test_the_floor_stops_once_enough_customers_are_reported(tmp_path, most, reported, applied):
    config = TrainConfig(data=tmp_path, fusion_anomaly_floor=1.0, fusion_anomaly_gate=0.8,
                         fusion_anomaly_max_reported=most)
    decision = floor_decision(config, 0.9, reported)
    assert decision["applied"] is applied and decision["reported_customers"] == reported
    assert fusion_of(config, 0.9, reported).min_log_odds_per_sd == ((0.0, 0.0, 1.0) if applied else None)
    # the evidence gate still has its say below the count
    assert floor_decision(config, 0.7, 1)["applied"] is False


@pytest.mark.parametrize("most", [0, -5, 2.5, True])
def test_a_count_that_is_not_a_whole_number_of_customers_is_refused(tmp_path, most):
    with pytest.raises(AmlError, match=r"'fusion_anomaly_max_reported' parameter must be a whole number >= 1 or None"):
        TrainConfig(data=tmp_path, fusion_anomaly_max_reported=most)


def test_without_a_floor_the_gate_changes_nothing(tmp_path):
    config = TrainConfig(data=tmp_path, fusion_anomaly_floor=0.0, fusion_anomaly_gate=0.6)
    assert floor_decision(config, 0.99)["applied"] is False
    assert fusion_of(config, 0.99).min_log_odds_per_sd is None


@pytest.mark.parametrize("gate", [0.4, 1.0, True, "0.8"])
def test_a_gate_that_is_not_a_roc_auc_bar_is_refused(tmp_path, gate):
    with pytest.raises(AmlError, match=r"'fusion_anomaly_gate' parameter must be a ROC-AUC in \[0.5, 1\) or None"):
        TrainConfig(data=tmp_path, fusion_anomaly_floor=1.0, fusion_anomaly_gate=gate)


def test_the_model_card_says_whether_the_floor_applied_and_why():
    base = {"fit": "oof", "folds": 3, "rows": 10, "positives": 2, "components": []}
    held = fusion_card_lines({**base, "anomaly_floor": {"floor": 1.0, "gate": 0.8, "evidence_roc_auc": 0.91,
                                                        "applied": True}})
    assert any("floor (1 log-odds per standard deviation) applies: the anomaly score alone ranks the bank's "
               "reported rows with a ROC-AUC of 0.910 (the bar is 0.800: met)" in line for line in held)
    off = fusion_card_lines({**base, "anomaly_floor": {"floor": 1.0, "gate": 0.8, "evidence_roc_auc": 0.7,
                                                       "applied": False}})
    assert any("does not apply" in line and "0.700 (the bar is 0.800: not met)" in line for line in off)
    assert not any("floor" in line for line in fusion_card_lines({**base, "anomaly_floor": {"floor": 0.0}}))
    many = fusion_card_lines({**base, "anomaly_floor": {"floor": 1.0, "gate": 0.8, "evidence_roc_auc": 0.91,
                                                        "max_reported": 150, "reported_customers": 1_204,
                                                        "applied": False}})
    assert any("does not apply" in line and "(the bar is 0.800: met); 1,204 customers are reported (the floor "
               "stops at 150, from where the fit's own weights are trusted: reached)" in line for line in many)


def test_training_applies_the_floor_only_above_the_bar(bank_dir):
    ungated = TrainConfig(data=bank_dir, seed=0, fusion_anomaly_floor=1.0, fusion_anomaly_gate=None,
                          fusion_anomaly_max_reported=None, **FAST)
    first = train(ungated)
    decision = first.diagnostics["fusion"]["anomaly_floor"]
    evidence = decision["evidence_roc_auc"]
    assert decision["applied"] and 0.5 < evidence < 0.99 and decision["reported_customers"] > 0
    assert list(first.model_set.fusion.min_log_odds_per_sd) == [0.0, 0.0, 1.0]
    assert "applies ungated" in model_card_md(first, ungated)

    gated = TrainConfig(data=bank_dir, seed=0, fusion_anomaly_floor=1.0, fusion_anomaly_gate=evidence + 0.005,
                        fusion_anomaly_max_reported=None, **FAST)
    second = train(gated)
    decision = second.diagnostics["fusion"]["anomaly_floor"]
    assert not decision["applied"] and decision["evidence_roc_auc"] == pytest.approx(evidence)
    assert second.model_set.fusion.min_log_odds_per_sd is None
    assert "does not apply" in model_card_md(second, gated)

    reported = first.diagnostics["fusion"]["anomaly_floor"]["reported_customers"]
    counted = TrainConfig(data=bank_dir, seed=0, fusion_anomaly_floor=1.0, fusion_anomaly_gate=None,
                          fusion_anomaly_max_reported=reported, **FAST)
    third = train(counted)
    assert not third.diagnostics["fusion"]["anomaly_floor"]["applied"]
    assert third.model_set.fusion.min_log_odds_per_sd is None
    assert f"{reported:,} customers are reported (the floor stops at {reported:,}" in model_card_md(third, counted)


def test_the_train_command_passes_the_gate_on(tmp_path, train_command_configs, capsys):
    from amlscore.cli import run

    assert run(["train", "--data", str(tmp_path), "--fusion-anomaly-floor", "1", "--fusion-anomaly-gate", "0.85"]) != 0
    assert (train_command_configs[-1].fusion_anomaly_floor, train_command_configs[-1].fusion_anomaly_gate) == (1.0, 0.85)
    assert run(["train", "--data", str(tmp_path), "--fusion-anomaly-max-reported", "150"]) != 0
    assert train_command_configs[-1].fusion_anomaly_max_reported == 150
    assert run(["train", "--data", str(tmp_path), "--fusion-anomaly-gate", "1.5"]) == 2
    assert "'fusion_anomaly_gate' parameter must be a ROC-AUC" in capsys.readouterr().err
