"""Stand-ins for the model set and the service's audit log, for the report tests only.

``FakeModelSet`` has the interface reports use (``score_frame``, ``explain_vector``, ``metadata``,
``alert_threshold``, ``rules_config``) with fixed, readable formulas; its explanation has the shape
of the real one (``base_value``, ``contributions`` of feature/value/contribution, ``anomaly``).
``fake_audit_log`` writes decisions through :class:`amlscore.core.audit.AuditLog` into a temporary file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.params import load_feature_params
from amlscore.models.rules import evaluate_rules, load_rules_config, score_transaction_rules

_IDX = {n: i for i, n in enumerate(FEATURE_NAMES)}
EXPLAINED = ("amount", "is_cash", "peer_cash_ratio_30d", "in_cnt_24h", "out_sum_24h", "is_cross_border",
             "account_age_days", "channel_code", "days_since_prev_txn", "fan_in_7d", "is_night", "hour_local")


class FakeExplanation:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        return self.data


class FakeModelSet:
    """Rule score from the packaged rules; 'probability' and 'anomaly' from the log amount; fused 0..100."""

    def __init__(self, threshold: float = 45.0) -> None:
        self.feature_names = tuple(FEATURE_NAMES)
        self.alert_threshold = threshold
        self.rules_config = load_rules_config()
        self.metadata = {
            "feature_set_version": FEATURE_SET_VERSION,
            "feature_params_hash": load_feature_params().hash,
            "rules_config_hash": self.rules_config.hash,
            "data_fingerprint": "fake-training-data",
            "fusion_weights": {"rule_score": 0.4, "lgbm_probability": 0.4, "anomaly_score": 0.2},
        }

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        amount = np.maximum(x[:, _IDX["amount"]], 1.0)
        p = 1.0 / (1.0 + np.exp(-(np.log10(amount) - 4.0) * 2))
        return p, np.clip(np.log10(amount) / 7.0, 0, 1)

    def score_frame(self, features: pd.DataFrame, *, reasons: str = "alerts", top_k_reasons: int = 3) -> pd.DataFrame:
        x = features[list(FEATURE_NAMES)].to_numpy(dtype=float)
        rule = evaluate_rules(features, self.rules_config)["rule_score"].to_numpy()
        p, anomaly = self._parts(x)
        fused = np.clip(0.4 * rule + 40 * p + 20 * anomaly, 0, 100)
        return pd.DataFrame({"suspicion_score": fused, "rule_score": rule, "lgbm_probability": p, "anomaly_score": anomaly,
                             "alert": fused >= self.alert_threshold, "top_reasons": [""] * len(x)}, index=features.index)

    def explain_vector(self, x: np.ndarray, top_k: int = 8, lang: str = "en") -> FakeExplanation:
        """The shape of :meth:`amlscore.models.model_set.Explanation.to_dict`."""
        row = np.asarray(x, dtype=float).reshape(1, -1)[0]
        p, anomaly = self._parts(row[None, :])
        rule = score_transaction_rules(row, self.rules_config)
        contributions = [{"feature": n, "label": n, "value": float(row[_IDX[n]]),
                          "contribution": round((0.6 - 0.1 * k) * (-1) ** (k // 4), 4), "direction": "raises"}
                         for k, n in enumerate(EXPLAINED)]
        return FakeExplanation({
            "suspicion_score": 50.0, "alert": True, "alert_threshold": self.alert_threshold,
            "components": {"rule_score": rule.score, "lgbm_probability": float(p[0]), "anomaly_score": float(anomaly[0])},
            "fusion_intercept": -4.0, "fusion_terms": {"rule_score": 1.2, "lgbm_probability": 2.1, "anomaly_score": 0.3},
            "lgbm_expected_value": -2.5,
            "lgbm_contributions": contributions[:top_k],
            "anomaly_attribution": [{"feature": "log_amount", "label": "log_amount", "value": float(row[_IDX["log_amount"]]),
                                     "share": 0.6},
                                    {"feature": "fan_in_7d", "label": "fan_in_7d", "value": float(row[_IDX["fan_in_7d"]]),
                                     "share": 0.4}][:top_k],
            "rules_fired": [{"rule_id": f.rule_id, "name": f.rule_id, "weight": f.weight, "text": f.rule_id,
                             "conditions": [{"feature": c.feature, "op": c.op, "threshold": c.threshold, "value": c.value}
                                            for c in f.conditions]} for f in rule.fired],
            "rules_summary": [], "lang": lang, "model": {"model_version": "3"},
        })


def fake_audit_log(path: Path, store: Any, customer_id: str) -> Any:
    """An audit log with two decisions on ``customer_id``'s transactions: one with an explanation, one without."""
    from amlscore.core.audit import AuditLog, AuditRecord, input_hash, new_ulid

    model = FakeModelSet()
    cfg = model.rules_config
    feats = store.features(customer_id)
    txns = store.transactions(customer_id)
    scores = model.score_frame(feats)
    order = np.argsort(-scores["suspicion_score"].to_numpy())[:2]
    log = AuditLog(path, sync="normal")
    records = []
    for k, i in enumerate(order):
        t = txns.iloc[int(i)]
        x = feats[list(FEATURE_NAMES)].iloc[int(i)].to_numpy(dtype=float)
        record = {c: (None if pd.isna(t[c]) else (t[c].isoformat() if c == "timestamp" else
                      float(t[c]) if c == "amount" else str(t[c]))) for c in txns.columns}
        rule = score_transaction_rules(x, cfg)
        decision = {
            "suspicion_score": float(scores["suspicion_score"].iat[int(i)]), "alert": bool(scores["alert"].iat[int(i)]),
            "components": {"rule_score": float(scores["rule_score"].iat[int(i)]),
                           "lgbm_probability": float(scores["lgbm_probability"].iat[int(i)]),
                           "anomaly_score": float(scores["anomaly_score"].iat[int(i)])},
            "alert_threshold": model.alert_threshold,
            "rules_fired": [{"rule_id": f.rule_id, "weight": f.weight,
                             "conditions": [{"feature": c.feature, "op": c.op, "threshold": c.threshold, "value": c.value}
                                            for c in f.conditions]} for f in rule.fired],
            "explanation": model.explain_vector(x[None, :]).to_dict() if k == 0 else None,
            "versions": {"model_name": "aml-model-set", "model_version": "3", "model_alias": "champion"},
        }
        records.append(AuditRecord(
            request_id=new_ulid() + str(k), txn_id=str(t["txn_id"]), customer_id=customer_id,
            decided_at="2026-01-05T10:00:00.000000Z", caller_key_id="test-compliance", caller_role="compliance",
            endpoint="score", batch_id=None, input_hash=input_hash(record), input=record, features=x,
            suspicion_score=decision["suspicion_score"], alert=decision["alert"], model_name="aml-model-set",
            model_version="3", feature_set_version=FEATURE_SET_VERSION, feature_params_hash=load_feature_params().hash,
            rules_config_hash=cfg.hash, decision=decision))
    log.append(records)
    return log
