"""The out-of-fold fusion sample: every probability comes from a model that did not see the row;
the explanation tells an informative component from a useless one; the PU round returns a model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.fusion import SuspicionFusion
from amlscore.training.few_labels import describe_component, explain_fusion, oof_fusion_sample, time_blocks


class _RandomDetector:
    """An anomaly score that carries no information (seeded)."""

    def anomaly_score(self, X: np.ndarray) -> np.ndarray:
        return np.random.default_rng(len(X)).uniform(0.3, 0.7, len(X))


@pytest.fixture(scope="module")
def rows() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    n = 6_000
    feats = pd.DataFrame(rng.normal(size=(n, len(FEATURE_NAMES))), columns=list(FEATURE_NAMES))
    signal = feats[FEATURE_NAMES[3]].to_numpy() + 0.5 * feats[FEATURE_NAMES[7]].to_numpy()
    y = (signal + rng.normal(0, 0.5, n) > 2.3).astype(int)
    rule = np.clip(50 + 10 * feats[FEATURE_NAMES[7]].to_numpy(), 0, 100)
    return feats, y, rule


def test_time_blocks_are_contiguous_and_cover_the_rows() -> None:
    blocks = time_blocks(np.arange(10)[::-1], 3)
    assert [b.tolist() for b in blocks] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def _sample(rows, pu: bool):
    feats, y, rule = rows
    pos = np.flatnonzero(y == 1)
    unl = np.flatnonzero(y == 0)
    customers = np.array([f"C{i % 50}" for i in range(len(y))], dtype=object)
    params = {"n_estimators": 60, "learning_rate": 0.1, "min_rounds": 5, "early_stopping_rounds": 10,
              "random_state": 0}
    return oof_fusion_sample(feats, rule, _RandomDetector(), positives=pos, confirmed_negatives=np.array([], int),
                             unlabelled=unl, unlabelled_rate=1.0, customers=customers, lgbm_params=params,
                             n_trees=60, folds=3, pu=pu, refit=pu)


def test_oof_probabilities_are_out_of_fold_and_explained(rows) -> None:
    sample, model = _sample(rows, pu=False)
    feats, y, _ = rows
    assert model is None and sample.folds == 3  # refit=False
    assert np.array_equal(sample.rows, np.arange(len(y)))
    # held-out probabilities rank well but are not the in-sample fit (which is near-perfect on train rows)
    from sklearn.metrics import roc_auc_score

    assert 0.85 < roc_auc_score(sample.y, sample.lgbm_probability) < 0.999
    fusion = SuspicionFusion().fit(sample.rule_score, sample.lgbm_probability, sample.anomaly_score, sample.y,
                                   sample_weight=sample.weight)
    why = {c["component"]: c for c in explain_fusion(fusion, sample)}
    assert why["lgbm_probability"]["log_loss_increase_without"] > 10 * max(
        why["anomaly_score"]["log_loss_increase_without"], 1e-6)
    assert why["anomaly_score"]["log_loss_increase_without"] < 0.002
    assert "log-loss" in describe_component(why["rule_score"])


def test_pu_round_reweights_unlabelled_rows_and_refits(rows) -> None:
    sample, model = _sample(rows, pu=True)
    assert model is not None and model.best_iteration_ == 60
    assert 0 < sample.pu["label_frequency"] <= 1
    assert sample.pu["unlabelled_weighted_rows"] > 0


@pytest.mark.parametrize(("kwargs", "words"), [({"pu_weight_scale": 0.0}, ["pu_weight_scale", "(0, 1]", "0.0"]),
                                               ({"fusion_fit": "valid"}, ["'pu'", "fusion_fit='oof'", "'valid'"]),
                                               ({"fusion_folds": 1}, ["fusion_folds", "[2, 10]", "1"])])
def test_few_label_settings_are_checked(kwargs: dict, words: list[str]) -> None:
    from pathlib import Path

    from amlscore.contract.errors import AmlError
    from amlscore.training.result import TrainConfig

    with pytest.raises(AmlError) as err:
        TrainConfig(data=Path("x"), **kwargs)
    for w in words:
        assert w in str(err.value), str(err.value)
