"""The one stand-in for :class:`amlscore.models.model_set.ModelSet` in the tests (serving and reports).

It has every member of :class:`amlscore.core.decision.ModelSetLike` (a test checks it against the
real class) and returns the real result types (:class:`ScoreBatch`, :class:`Explanation`), so the
code under test reads it exactly as it reads a trained model set, with fixed, readable formulas and
no LightGBM, MLflow or training:

* rule score: the packaged transaction rules;
* "probability": a logistic of ``log10(amount)`` around ``midpoint`` (steepness ``2 * weight``);
* "anomaly": ``log10(amount) / 7`` clipped to 0..1;
* fused score: ``0.4 * rule + 40 * probability + 20 * anomaly`` clipped to 0..100.

The explanation lists :data:`EXPLAINED` with fixed contributions (times ``weight``), an expected
value of -2.5 and fusion terms 1.2, 2.1, 0.3 around an intercept of -4.0.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.core import decision as schema
from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.labels import feature_label
from amlscore.features.params import load_feature_params
from amlscore.models.rules import (
    evaluate_rules,
    explain_rules,
    load_rules_config,
    score_transaction_rules,
)

_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}
EXPLAINED = ("amount", "is_cash", "peer_cash_ratio_30d", "in_cnt_24h", "out_sum_24h", "is_cross_border",
             "account_age_days", "channel_code", "days_since_prev_txn", "fan_in_7d", "is_night", "hour_local")
EXPECTED_VALUE = -2.5
FUSION_INTERCEPT = -4.0
FUSION_TERMS = {"rule_score": 1.2, "lgbm_probability": 2.1, "anomaly_score": 0.3}


class FakeModelSet:
    """A model set with fixed formulas (see the module docstring).

    Parameters
    ----------
    version : str
        Recorded in ``metadata`` and in each explanation's ``model``.
    weight : float
        Steepness of the "probability" and scale of the contributions (another version scores otherwise).
    threshold : float
        The alert threshold on the 0..100 score.
    midpoint : float
        ``log10(amount)`` where the "probability" is one half.
    """

    def __init__(self, version: str = "1", weight: float = 1.0, threshold: float = 50.0, midpoint: float = 4.5) -> None:
        self.version = version
        self.weight = weight
        self.midpoint = midpoint
        self.feature_names: tuple[str, ...] = tuple(FEATURE_NAMES)
        self.alert_threshold = threshold
        self.rules_config = load_rules_config()
        self.metadata: dict[str, Any] = {
            "feature_set_version": FEATURE_SET_VERSION,
            "feature_params_hash": load_feature_params().hash,
            "rules_config_hash": self.rules_config.hash,
            "data_fingerprint": "fake-training-data",
            "thresholds": {"alert_threshold": threshold},
            "fusion_weights": {"rule_score": 0.4, "lgbm_probability": 0.4, "anomaly_score": 0.2},
            "registered_model_name": "aml-model-set",
            "model_version": version,
        }
        self.explain_calls = 0
        self.one_pass_calls = 0

    # -- scores -----------------------------------------------------------------------------------
    def check_features(self, names: Iterable[str], *, require_order: bool = True) -> None:
        got = tuple(names)
        same = got == self.feature_names if require_order else sorted(got) == sorted(self.feature_names)
        if not same:
            raise ValueError("feature names differ")

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        amount = np.maximum(np.nan_to_num(x[:, _IDX["amount"]], nan=1.0), 1.0)
        p = 1.0 / (1.0 + np.exp(-(np.log10(amount) - self.midpoint) * 2 * self.weight))
        return p, np.clip(np.log10(amount) / 7.0, 0, 1)

    def _fuse(self, rule: np.ndarray, p: np.ndarray, anomaly: np.ndarray) -> np.ndarray:
        return np.clip(0.4 * rule + 40 * p + 20 * anomaly, 0, 100)

    def score_vector(self, x: np.ndarray) -> schema.ScoreBatch:
        x = np.asarray(x, dtype=np.float64).reshape(-1, len(self.feature_names))
        rules = [score_transaction_rules(row, self.rules_config) for row in x]
        rule = np.array([r.score for r in rules], dtype=np.float64)
        p, anomaly = self._parts(x)
        fused = self._fuse(rule, p, anomaly)
        return schema.ScoreBatch(suspicion_score=fused, rule_score=rule, lgbm_probability=p, anomaly_score=anomaly,
                          alert=fused >= self.alert_threshold, rules_fired=[r.rule_ids for r in rules],
                          alert_threshold=self.alert_threshold, rules=rules)

    def score_frame(self, features: pd.DataFrame, *, reasons: str = "alerts", top_k_reasons: int = 3,
                    chunk_rows: int = 200_000) -> pd.DataFrame:
        x = features[list(FEATURE_NAMES)].to_numpy(dtype=float)
        rule = evaluate_rules(features, self.rules_config)["rule_score"].to_numpy()
        p, anomaly = self._parts(x)
        fused = self._fuse(rule, p, anomaly)
        return pd.DataFrame({"suspicion_score": fused, "rule_score": rule, "lgbm_probability": p, "anomaly_score": anomaly,
                             "alert": fused >= self.alert_threshold, "top_reasons": [""] * len(x)}, index=features.index)

    # -- explanations -----------------------------------------------------------------------------
    def _explanation(self, batch: schema.ScoreBatch, row: np.ndarray, top_k: int, lang: str) -> schema.Explanation:
        contributions = [
            schema.FeatureContribution(n, feature_label(n, lang), schema.finite_or_none(row[_IDX[n]]),
                                round((0.6 - 0.1 * k) * (-1) ** (k // 4) * self.weight, 4), "raises" if k // 4 % 2 == 0 else "lowers")
            for k, n in enumerate(EXPLAINED)]
        anomaly = [schema.AnomalyAttribution(n, feature_label(n, lang), schema.finite_or_none(row[_IDX[n]]), share)
                   for n, share in (("log_amount", 0.6), ("fan_in_7d", 0.4))]
        rule = batch.rules[0]
        texts = explain_rules(rule, self.rules_config, lang)
        fired = [schema.RuleReason(f.rule_id, f.rule_id, float(f.weight),
                            [{"feature": c.feature, "op": c.op, "threshold": float(c.threshold), "value": schema.finite_or_none(c.value)}
                             for c in f.conditions], texts[i + 1]) for i, f in enumerate(rule.fired)]
        score = float(batch.suspicion_score[0])
        return schema.Explanation(
            suspicion_score=score, alert=bool(batch.alert[0]), alert_threshold=float(self.alert_threshold),
            components={"rule_score": float(batch.rule_score[0]), "lgbm_probability": float(batch.lgbm_probability[0]),
                        "anomaly_score": float(batch.anomaly_score[0])},
            fusion_intercept=FUSION_INTERCEPT, fusion_terms=dict(FUSION_TERMS), lgbm_expected_value=EXPECTED_VALUE,
            lgbm_contributions=contributions[:top_k], anomaly_attribution=anomaly[:top_k], rules_fired=fired,
            rules_summary=texts[:1], lang=lang,
            model={"registered_model_name": "aml-model-set", "model_version": self.version},
        )

    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> schema.Explanation:
        self.explain_calls += 1
        row = np.asarray(x, dtype=np.float64).reshape(-1)
        return self._explanation(self.score_vector(row[None, :]), row, top_k, lang)

    def score_and_explain(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> tuple[schema.ScoreBatch, schema.Explanation]:
        self.one_pass_calls += 1
        row = np.asarray(x, dtype=np.float64).reshape(-1)
        batch = self.score_vector(row[None, :])
        return batch, self._explanation(batch, row, top_k, lang)


def save_small_model_set(folder: Path) -> Path:
    """A real model set, tiny and fitted on random rows (the packaged rules and feature parameters), saved in
    ``folder``: for what needs the saved form (a Bento, ``AML_MODEL_DIR``) and not its quality."""
    from amlscore.models.anomaly import BehaviourAnomalyDetector
    from amlscore.models.fusion import SuspicionFusion, choose_thresholds
    from amlscore.models.model_set import ModelSet
    from amlscore.models.supervised import SuspicionClassifier

    rng = np.random.default_rng(0)
    X = np.abs(rng.normal(size=(1500, len(FEATURE_NAMES))))
    y = (X[:, 0] + rng.normal(0, 1, len(X)) > 2).astype(int)
    clf = SuspicionClassifier(n_estimators=10, min_child_samples=10, min_rounds=3, random_state=0)
    clf.fit(X[:1000], y[:1000], eval_set=(X[1000:], y[1000:]))
    det = BehaviourAnomalyDetector(n_estimators=10, random_state=0).fit(X[:1000])
    rules = load_rules_config()
    r = evaluate_rules(pd.DataFrame(X[1000:], columns=list(FEATURE_NAMES)), rules)["rule_score"].to_numpy()
    p, a = clf.predict_proba(X[1000:])[:, 1], det.anomaly_score(X[1000:])
    fusion = SuspicionFusion().fit(r, p, a, y[1000:])
    thresholds = choose_thresholds(fusion.score(r, p, a), y[1000:], target_alert_rate=0.05, target_precision=0.5)
    ModelSet(clf, det, fusion, thresholds, rules, load_feature_params(), FEATURE_NAMES, {}).save(folder)
    return folder
