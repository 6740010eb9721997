"""The reports' configuration of the tests' one model-set stand-in (:class:`fakes.FakeModelSet`) and
a stand-in of the service's audit log: ``fake_audit_log`` writes decisions through
:class:`amlscore.core.audit.AuditLog` into a temporary file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fakes import FakeModelSet

from amlscore.core.decision import fired_rules_json
from amlscore.features.catalogue import FEATURE_NAMES, FEATURE_SET_VERSION
from amlscore.features.params import load_feature_params
from amlscore.models.rules import score_transaction_rules


def report_model_set() -> FakeModelSet:
    """The reports' model set: version 3, alerts from 45 on, the "probability" centred on CNY 10,000."""
    return FakeModelSet(version="3", threshold=45.0, midpoint=4.0)


def fake_audit_log(path: Path, store: Any, customer_id: str) -> Any:
    """An audit log with two decisions on ``customer_id``'s transactions: one with an explanation, one without."""
    from amlscore.core.audit import AuditLog, AuditRecord, input_hash, new_ulid

    model = report_model_set()
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
            "rules_fired": fired_rules_json(rule.fired),
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
