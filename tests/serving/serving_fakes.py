"""A tiny stand-in for :class:`amlscore.models.model_set.ModelSet` and the registry, for unit tests only.

It implements the interface serving relies on (``feature_names``, ``metadata``, ``alert_threshold``,
``score_vector``, ``explain_vector``, ``check_features``) with fixed, readable formulas, so tests
can run without MLflow or a trained model. The service itself never imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.params import load_feature_params
from amlscore.models.rules import load_rules_config, score_transaction_rules
from amlscore.serving.registry import unknown_model
from amlscore.core.registry import LoadedModel

_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}


@dataclass
class FakeScores:
    suspicion_score: np.ndarray
    rule_score: np.ndarray
    lgbm_probability: np.ndarray
    anomaly_score: np.ndarray
    alert: np.ndarray

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k).tolist() for k in ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert")}


class FakeExplanation:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class FakeModelSet:
    """Scores: rule score from the packaged rules; 'probability' and 'anomaly' from log amount; fused."""

    def __init__(self, version: str = "1", weight: float = 1.0, threshold: float = 50.0) -> None:
        self.version = version
        self.weight = weight
        self.feature_names = tuple(FEATURE_NAMES)
        self.alert_threshold = threshold
        self.rules_config = load_rules_config()
        self.metadata = {
            "feature_set_version": FEATURE_SET_VERSION,
            "feature_params_hash": load_feature_params().hash,
            "rules_config_hash": self.rules_config.hash,
            "data_fingerprint": "fake-data",
            "thresholds": {"alert": threshold},
            "model_name": "aml-model-set",
            "model_version": version,
        }
        self.explain_calls = 0

    def check_features(self, names: Any) -> None:
        if tuple(names) != self.feature_names:
            raise ValueError("feature names differ")

    def score_vector(self, x: np.ndarray) -> FakeScores:
        x = np.asarray(x, dtype=np.float64)
        assert x.ndim == 2 and x.shape[1] == len(FEATURE_NAMES)
        amount = np.maximum(np.nan_to_num(x[:, _IDX["amount"]], nan=1.0), 1.0)
        rule = np.array([score_transaction_rules(row, self.rules_config).score for row in x])
        p = 1.0 / (1.0 + np.exp(-(np.log10(amount) - 4.5) * 2 * self.weight))
        anomaly = np.clip(np.log10(amount) / 7.0, 0, 1)
        fused = np.clip(0.4 * rule + 40 * p + 20 * anomaly, 0, 100)
        return FakeScores(fused, rule, p, anomaly, fused >= self.alert_threshold)

    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> FakeExplanation:
        self.explain_calls += 1
        row = np.asarray(x, dtype=np.float64)[0]
        names = ["amount", "is_cash", "peer_cash_ratio_30d", "in_cnt_24h", "out_cnt_24h", "is_cross_border",
                 "account_age_days", "days_since_prev_txn"][:top_k]
        contributions = [{"feature": n, "value": float(row[_IDX[n]]),
                          "contribution": round(0.01 * (k + 1) * self.weight, 6)} for k, n in enumerate(names)]
        return FakeExplanation({
            "model_version": self.version,
            "lang": lang,
            "lgbm_contributions": contributions,
            "anomaly_attribution": [{"feature": "amount", "value": float(row[_IDX["amount"]]), "share": 1.0}],
            "base_value": -2.0,
        })


class FakeLoader:
    """Registry stand-in: aliases point at versions; ``promote`` moves an alias."""

    def __init__(self, versions: dict[str, FakeModelSet] | None = None, aliases: dict[str, str] | None = None) -> None:
        self.versions = versions or {"1": FakeModelSet("1")}
        self.aliases = aliases or {"champion": "1"}
        self.name = "aml-model-set"
        self.loads: list[str] = []

    def promote(self, alias: str, version: str) -> None:
        self.aliases[alias] = version

    def resolve(self, alias: str | None = None, version: str | None = None) -> tuple[str, str | None]:
        v = version or self.aliases.get(alias or "")
        if v is None or v not in self.versions:  # as the real loader (amlscore.serving.registry) answers
            raise unknown_model(self.name, alias, version)
        return v, None

    def load(self, alias: str | None = None, version: str | None = None) -> LoadedModel:
        v, _ = self.resolve(alias, version)
        self.loads.append(v)
        return LoadedModel(model_set=self.versions[v], name=self.name, version=v, alias=None if version else alias,
                           source=f"models:/{self.name}/{v}")


class _FakeClassifier:
    """Stand-in for the LightGBM classifier's single-row TreeSHAP call."""

    def contributions_one(self, x: np.ndarray) -> np.ndarray:
        row = np.nan_to_num(np.asarray(x, dtype=np.float64).reshape(-1))
        return np.append(np.round(row * 1e-4, 6), -2.0)


class OnePassModelSet(FakeModelSet):
    """A fake model set with the one-pass call (``score_and_explain``) and a classifier, as the real one has."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.classifier = _FakeClassifier()
        self.one_pass_calls = 0

    def _explain_with(self, x: np.ndarray, contrib: np.ndarray, top_k: int, lang: str) -> FakeExplanation:
        row = np.asarray(x, dtype=np.float64).reshape(-1)
        top = [int(j) for j in np.argsort(-np.abs(contrib[:-1]), kind="stable")[:top_k]]
        return FakeExplanation({
            "model_version": self.version, "lang": lang, "base_value": float(contrib[-1]),
            "lgbm_contributions": [{"feature": FEATURE_NAMES[j], "value": float(np.nan_to_num(row[j])),
                                    "contribution": float(contrib[j])} for j in top],
            "anomaly_attribution": [{"feature": "amount", "value": float(row[_IDX["amount"]]), "share": 1.0}],
        })

    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> FakeExplanation:
        self.explain_calls += 1
        return self._explain_with(x, self.classifier.contributions_one(x), top_k, lang)

    def score_and_explain(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> tuple[FakeScores, FakeExplanation]:
        self.one_pass_calls += 1
        return self.score_vector(x), self._explain_with(x, self.classifier.contributions_one(x), top_k, lang)
