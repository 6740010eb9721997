"""A period of a data folder scored for monitoring: its features, scores, segments and bank days.

The same path as batch scoring (``amlscore score``): the contract loader, the offline features with the
model set's own feature parameters, :meth:`ModelSet.score_frame`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract.load import Dataset, load_dataset
from amlscore.features.offline import build_features
from amlscore.models.daily import DailyDistributions
from amlscore.monitoring.drift import SCORE_COLUMNS

__all__ = ["ScoredPeriod", "bank_days", "daily_counts", "score_period"]

ProgressFn = Callable[[str, float], None]


def bank_days(timestamps: pd.Series, utc_offset_hours: float) -> np.ndarray:
    """The date of each timestamp on the bank's clock (``datetime64[D]``)."""
    ts = pd.to_datetime(pd.Series(timestamps), utc=True)
    local = ts.dt.tz_convert(None) + pd.Timedelta(hours=float(utc_offset_hours))
    return local.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


@dataclass
class ScoredPeriod:
    """Features and scores of a period, one entry per transaction."""

    columns: dict[str, np.ndarray]
    alert: np.ndarray
    segments: dict[str, np.ndarray]
    days: np.ndarray

    def __len__(self) -> int:
        return len(self.alert)


def score_period(model_set: Any, data: str | Path, *, start: dt.date | None = None, end: dt.date | None = None,
                 progress: ProgressFn | None = None) -> ScoredPeriod:
    """Load ``data``, build the features with the model set's parameters, score the days in ``[start, end]``."""
    dataset = load_dataset(data, require_reports=False)
    say = progress or (lambda stage, share: None)
    feats = build_features(dataset, model_set.feature_params, progress=lambda s, f: say("features", 0.8 * f))
    days = bank_days(feats["timestamp"], model_set.feature_params.bank_utc_offset_hours)
    mask = np.ones(len(days), dtype=bool)
    if start is not None:
        mask &= days >= np.datetime64(start, "D")
    if end is not None:
        mask &= days <= np.datetime64(end, "D")
    rows = np.flatnonzero(mask)
    if len(rows) == 0:
        raise AmlError(f"No transaction of {data} is dated in {start or 'the beginning'}..{end or 'the end'}.")
    feats = feats.iloc[rows]
    say("scoring", 0.85)
    scores = model_set.score_frame(feats, reasons="none")
    columns = {name: feats[name].to_numpy(dtype=np.float64, na_value=np.nan) for name in model_set.feature_names}
    columns.update({name: scores[name].to_numpy(dtype=np.float64) for name in SCORE_COLUMNS})
    return ScoredPeriod(columns, scores["alert"].to_numpy(dtype=bool), _segments(dataset, feats["txn_id"]), days[rows])


def _segments(dataset: Dataset, txn_ids: pd.Series) -> dict[str, np.ndarray]:
    txns = dataset.transactions.set_index(dataset.transactions["txn_id"].astype(str)).reindex(txn_ids.astype(str))
    customers = dataset.customers.set_index(dataset.customers["customer_id"].astype(str))["customer_type"]
    return {"channel": txns["channel"].astype(str).to_numpy(dtype=object),
            "customer_type": customers.astype(str).reindex(txns["customer_id"].astype(str)).fillna("unknown")
            .to_numpy(dtype=object)}


def daily_counts(model_set: Any, dataset: Dataset, features: pd.DataFrame, scores: pd.DataFrame) -> DailyDistributions:
    """Per-day counts (:mod:`amlscore.models.daily`) of a batch scored with ``model_set`` (same rows, same order):
    what ``amlscore score`` keeps beside its output, as the service keeps them for its decisions."""
    columns = list(model_set.feature_names) + list(SCORE_COLUMNS)
    counts = DailyDistributions(model_set.reference, columns, keep_days=100_000)
    values = np.column_stack([features[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in model_set.feature_names]
                             + [scores[c].to_numpy(dtype=np.float64) for c in SCORE_COLUMNS])
    days = bank_days(features["timestamp"], model_set.feature_params.bank_utc_offset_hours).astype(str)
    counts.add_many(days, values, scores["alert"].to_numpy(dtype=bool), _segments(dataset, features["txn_id"]))
    return counts
