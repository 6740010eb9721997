"""Scoring a data folder with a model set: features with the set's own parameters, periods, metrics.

Used by ``amlscore evaluate``, ``amlscore promote`` and ``amlscore score``. Each model set computes
the features with the feature parameters it was trained with (copied inside it), so two versions
trained under different parameters are each scored as they were trained.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract import report_data_warnings
from amlscore.contract.load import Dataset, load_dataset
from amlscore.features.offline import build_features
from amlscore.models.model_set import ModelSet
from amlscore.training.evaluate import EvaluationReport, evaluate_scores, evaluation_labels, read_ground_truth, slice_labels
from amlscore.training.feedback import feedback_files, merge_feedback
from amlscore.training.labels import bank_days, to_day
from amlscore.training.train import high_risk_industries

__all__ = ["FolderData", "evaluate_model_set", "load_folder", "period_mask"]

ProgressFn = Callable[[str, float], None]


@dataclass
class FolderData:
    """A data folder (feedback merged) and its features per feature-parameter hash."""

    dataset: Dataset
    ground_truth: pd.DataFrame | None
    folder: Path
    _features: dict[str, pd.DataFrame] = field(default_factory=dict)

    def features_for(self, model_set: ModelSet, progress: ProgressFn | None = None) -> pd.DataFrame:
        """Feature rows of every transaction (time order), computed with the model set's parameters."""
        key = model_set.feature_params.hash
        if key not in self._features:
            self._features[key] = build_features(self.dataset, model_set.feature_params, progress=progress)
        return self._features[key]


def load_folder(data: str | Path, *, require_reports: bool = True, feedback: tuple[Path, ...] = ()) -> FolderData:
    """Load and validate a data folder; merge ``<data>/feedback/*.csv`` and ``feedback`` files."""
    dataset = load_dataset(data, require_reports=require_reports)
    report_data_warnings(dataset)
    dataset, _ = merge_feedback(dataset, feedback_files(data, feedback))
    return FolderData(dataset, read_ground_truth(data), Path(data))


def period_mask(timestamps: pd.Series, start: dt.date | str | None, end: dt.date | str | None,
                utc_offset_hours: float) -> np.ndarray:
    """Transactions dated (bank clock) in ``[start, end]``, both ends included; None = open."""
    day = bank_days(timestamps, utc_offset_hours)
    mask = np.ones(len(day), dtype=bool)
    if start is not None:
        mask &= day >= to_day(start)
    if end is not None:
        mask &= day <= to_day(end)
    return mask


def evaluate_model_set(model_set: ModelSet, data: FolderData, *, start: dt.date | str | None = None,
                       end: dt.date | str | None = None, progress: ProgressFn | None = None
                       ) -> tuple[EvaluationReport, pd.DataFrame]:
    """Score the transactions of ``data`` dated in ``[start, end]`` and evaluate them.

    Labels: ground truth when the folder has it, else every report in the folder (and the
    feedback): evaluation is retrospective and never feeds a fit.

    Returns
    -------
    (EvaluationReport, DataFrame)
        The report and the scores (txn_id + score columns) of the evaluated rows.
    """
    feats = data.features_for(model_set, progress)
    offset = model_set.feature_params.bank_utc_offset_hours
    rows = np.flatnonzero(period_mask(feats["timestamp"], start, end, offset))
    if len(rows) == 0:
        raise AmlError(f"No transaction of {data.folder} is dated in {start or 'the beginning'}..{end or 'the end'}.")
    sub = feats.iloc[rows]
    scores = model_set.score_frame(sub, reasons="none")
    txns = data.dataset.transactions
    if not np.array_equal(txns["txn_id"].astype(str).to_numpy(dtype=object)[rows],
                          sub["txn_id"].astype(str).to_numpy(dtype=object)):  # pragma: no cover - defensive
        txns = txns.set_index(txns["txn_id"].astype(str)).loc[feats["txn_id"].astype(str)].reset_index(drop=True)
    labels = evaluation_labels(sub["txn_id"], txns, data.dataset.reports, data.ground_truth, cutoff=None,
                               utc_offset_hours=offset)
    slices = slice_labels(txns.iloc[rows], data.dataset.customers, high_risk_industries(model_set.rules_config))
    day = bank_days(sub["timestamp"], offset)
    period = f"{pd.Timestamp(day.min()).date()}..{pd.Timestamp(day.max()).date()}"
    return evaluate_scores(scores, labels, alert_threshold=model_set.alert_threshold, slices=slices, period=period), scores
