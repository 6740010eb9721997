"""Replaying a period with two model sets: the rows a backtest compares.

The batch scoring path of ``amlscore score`` / ``evaluate`` (:mod:`amlscore.training.scoring`: the folder with
its feedback merged, the features with each model set's own parameters, :meth:`ModelSet.score_frame`)
run for a *base* model set (the champion) and a *candidate* (the champion under a new ``rules.yaml``, or
another version), with each transaction's day, channel, customer type, labels and typology beside the
two scores. :mod:`amlscore.monitoring.backtest` turns that frame into the backtest report.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.models.model_set import ModelSet
from amlscore.models.rules import load_rules_config
from amlscore.training.evaluate import evaluation_labels
from amlscore.training.labels import bank_days, derive_labels
from amlscore.training.scoring import FolderData, ProgressFn, period_mask

__all__ = ["REPLAY_COLUMNS", "replay", "with_rules"]

REPLAY_COLUMNS = ("txn_id", "day", "channel", "customer_type", "typology", "reported", "disposition",
                  "base_score", "base_alert", "candidate_score", "candidate_alert")


def with_rules(model_set: ModelSet, rules_path: str | Path) -> ModelSet:
    """``model_set`` with the rule configuration of ``rules_path`` (validated); everything else unchanged.

    The fusion keeps its weights, so the fused score moves exactly as far as the new rule score moves it:
    what the change would do in production without retraining.
    """
    path = Path(rules_path)
    if not path.is_file():
        raise AmlError(f"Rules file {path} does not exist.")
    rules = load_rules_config(path)
    metadata = {**model_set.metadata, "rules_config_hash": rules.hash, "rules_source": str(path)}
    return ModelSet(model_set.classifier, model_set.detector, model_set.fusion, model_set.thresholds, rules,
                    model_set.feature_params, model_set.feature_names, metadata, reference=model_set.reference)


def _scores(model_set: ModelSet, data: FolderData, start: Any, end: Any, progress: ProgressFn | None) -> pd.DataFrame:
    feats = data.features_for(model_set, progress)
    mask = period_mask(feats["timestamp"], start, end, model_set.feature_params.bank_utc_offset_hours)
    scores = model_set.score_frame(feats.iloc[np.flatnonzero(mask)], reasons="none")
    return pd.DataFrame({"txn_id": scores["txn_id"].astype(str).to_numpy(dtype=object),
                         "score": scores["suspicion_score"].to_numpy(dtype=np.float64),
                         "alert": scores["alert"].to_numpy(dtype=bool),
                         "timestamp": feats["timestamp"].to_numpy()[mask]})


def replay(base: ModelSet, candidate: ModelSet, data: FolderData, *, start: dt.date | None = None,
           end: dt.date | None = None, progress: ProgressFn | None = None) -> pd.DataFrame:
    """One row per transaction dated in ``[start, end]`` with both scores and alerts (:data:`REPLAY_COLUMNS`).

    ``reported`` is 1 when a suspicious report filed in the folder (or its feedback) covers the
    transaction; ``disposition`` is ``suspicious`` / ``not_suspicious`` from reports and analysts'
    feedback, else ``""``; ``typology`` names the laundering typology of a positive (from the ground
    truth when the folder has one, else from the reports).
    """
    a = _scores(base, data, start, end, progress)
    if len(a) == 0:
        raise AmlError(f"No transaction of {data.folder} is dated in {start or 'the beginning'}..{end or 'the end'}.")
    b = _scores(candidate, data, start, end, progress)
    b = b.set_index("txn_id").reindex(a["txn_id"])
    txns = data.dataset.transactions
    txns = txns.set_index(txns["txn_id"].astype(str)).reindex(a["txn_id"])
    offset = base.feature_params.bank_utc_offset_hours
    labels = evaluation_labels(a["txn_id"], data.dataset.transactions, data.dataset.reports, data.ground_truth,
                               cutoff=None, utc_offset_hours=offset)
    status = derive_labels(data.dataset.transactions, data.dataset.reports, cutoff=None, utc_offset_hours=offset)
    status = status.set_index(status["txn_id"].astype(str))["status"].reindex(a["txn_id"]).astype(str)
    customers = data.dataset.customers.set_index(data.dataset.customers["customer_id"].astype(str))["customer_type"]
    return pd.DataFrame({
        "txn_id": a["txn_id"].to_numpy(dtype=object),
        "day": bank_days(a["timestamp"], offset),
        "channel": txns["channel"].astype(str).to_numpy(dtype=object),
        "customer_type": customers.astype(str).reindex(txns["customer_id"].astype(str)).fillna("unknown")
        .to_numpy(dtype=object),
        "typology": labels.typology,
        "reported": labels.y_reports.astype(np.int8),
        "disposition": np.where(status.isin(["suspicious", "not_suspicious"]).to_numpy(), status.to_numpy(), ""),
        "base_score": a["score"].to_numpy(), "base_alert": a["alert"].to_numpy(),
        "candidate_score": b["score"].to_numpy(dtype=np.float64),
        "candidate_alert": b["alert"].to_numpy(dtype=bool),
    })
