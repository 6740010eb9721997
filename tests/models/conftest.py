"""Fixtures for model tests: a small model set fitted on random feature rows (no data folder needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from model_rows import IDX, random_features  # noqa: E402

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.params import load_feature_params
from amlscore.models.anomaly import BehaviourAnomalyDetector
from amlscore.models.fusion import SuspicionFusion, choose_thresholds
from amlscore.models.model_set import ModelSet
from amlscore.models.rules import evaluate_rules, load_rules_config
from amlscore.models.supervised import SuspicionClassifier

@pytest.fixture(scope="session")
def fitted_parts():
    X = random_features(4000, seed=0)
    rng = np.random.default_rng(1)
    signal = np.nan_to_num(X[:, IDX["near_threshold_cash_cnt_7d"]]) + 2 * X[:, IDX["is_high_risk_country"]]
    y = (signal + rng.normal(0, 0.7, len(X)) > 2.0).astype(int)
    tr, va = np.arange(0, 3000), np.arange(3000, 4000)
    clf = SuspicionClassifier(n_estimators=40, min_child_samples=10, min_rounds=5, random_state=0)
    clf.fit(X[tr], y[tr], eval_set=(X[va], y[va]))
    det = BehaviourAnomalyDetector(n_estimators=50, random_state=0).fit(X[tr])
    config = load_rules_config()
    import pandas as pd

    frame = pd.DataFrame(X[va], columns=list(FEATURE_NAMES))
    r = evaluate_rules(frame, config)["rule_score"].to_numpy()
    p = clf.predict_proba(X[va])[:, 1]
    a = det.anomaly_score(X[va])
    fusion = SuspicionFusion().fit(r, p, a, y[va])
    thresholds = choose_thresholds(fusion.score(r, p, a), y[va], target_alert_rate=0.05, target_precision=0.5)
    return X, y, clf, det, fusion, thresholds, config


@pytest.fixture(scope="session")
def model_set(fitted_parts) -> ModelSet:
    X, y, clf, det, fusion, thresholds, config = fitted_parts
    return ModelSet(clf, det, fusion, thresholds, config, load_feature_params(), FEATURE_NAMES,
                    {"data_fingerprint": "test", "seed": 0})
