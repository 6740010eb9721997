"""What a change would have done over a past period: alerts added and removed, workload, recall, precision.

Input: the replay frame of :func:`amlscore.training.replay.replay` (one row per transaction with the base
and the candidate score and alert, the day, channel, customer type, typology, report label and
disposition). Output: a :class:`BacktestReport` with

* per day, typology, channel and customer type: alerts of each side, alerts **added** (candidate only)
  and **removed** (base only);
* the analysts' **workload**: alerts per day (mean, 95th percentile, busiest day) of each side;
* **recall and precision on the period's reports** (share of reported transactions alerted, share of
  alerts reported), and precision on **dispositions** (of the alerts with an analyst's or a report's
  verdict, the share found suspicious).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError

__all__ = ["BacktestReport", "compare"]

_NEEDED = ("day", "channel", "customer_type", "typology", "reported", "disposition", "base_alert", "candidate_alert")


def _ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def _side_metrics(alert: np.ndarray, reported: np.ndarray, disposition: np.ndarray, per_day: pd.Series) -> dict[str, Any]:
    judged = alert & (disposition != "")
    return {
        "alerts": int(alert.sum()),
        "alerts_per_day_mean": float(per_day.mean()) if len(per_day) else 0.0,
        "alerts_per_day_p95": float(per_day.quantile(0.95)) if len(per_day) else 0.0,
        "alerts_per_day_max": int(per_day.max()) if len(per_day) else 0,
        "busiest_day": str(per_day.idxmax()) if len(per_day) else None,
        "recall_reports": _ratio((alert & (reported == 1)).sum(), (reported == 1).sum()),
        "precision_reports": _ratio((alert & (reported == 1)).sum(), alert.sum()),
        "alerts_with_disposition": int(judged.sum()),
        "precision_dispositions": _ratio((judged & (disposition == "suspicious")).sum(), judged.sum()),
    }


def _by(frame: pd.DataFrame, key: str) -> pd.DataFrame:
    g = frame.groupby(key, sort=True)
    out = pd.DataFrame({
        "rows": g.size(),
        "base_alerts": g["base_alert"].sum(),
        "candidate_alerts": g["candidate_alert"].sum(),
        "added": g["_added"].sum(),
        "removed": g["_removed"].sum(),
    }).astype(int)
    return out.reset_index()


@dataclass
class BacktestReport:
    """A backtest's figures (see the module docstring); ``base`` and ``candidate`` name the two sides."""

    base: str
    candidate: str
    period: str
    rows: int
    days: int
    metrics: dict[str, dict[str, Any]]
    added: int
    removed: int
    daily: pd.DataFrame
    per_typology: pd.DataFrame
    per_channel: pd.DataFrame
    per_customer_type: pd.DataFrame

    def to_dict(self) -> dict[str, Any]:
        """The machine-readable summary (every table as a list of records)."""
        def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
            return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                    for row in frame.to_dict(orient="records")]

        return {"base": self.base, "candidate": self.candidate, "period": self.period, "rows": self.rows,
                "days": self.days, "alerts_added": self.added, "alerts_removed": self.removed,
                "metrics": self.metrics, "daily": records(self.daily), "per_typology": records(self.per_typology),
                "per_channel": records(self.per_channel), "per_customer_type": records(self.per_customer_type)}


def compare(replayed: pd.DataFrame, *, base: str, candidate: str) -> BacktestReport:
    """The backtest report of a replay frame (:func:`amlscore.training.replay.replay`)."""
    missing = [c for c in _NEEDED if c not in replayed.columns]
    if missing:
        raise AmlError(f"The replay frame lacks the column(s) {', '.join(missing)}.")
    if not len(replayed):
        raise AmlError("The replay has no transaction to compare.")
    frame = replayed.copy()
    frame["day"] = pd.to_datetime(frame["day"]).dt.date.astype(str)
    frame["_added"] = frame["candidate_alert"] & ~frame["base_alert"]
    frame["_removed"] = frame["base_alert"] & ~frame["candidate_alert"]
    daily = _by(frame, "day").drop(columns="rows").rename(columns={"day": "day"})
    reported = frame["reported"].to_numpy()
    disposition = frame["disposition"].astype(str).to_numpy(dtype=object)
    metrics = {
        side: _side_metrics(frame[f"{side}_alert"].to_numpy(dtype=bool), reported, disposition,
                            daily.set_index("day")[f"{side}_alerts"])
        for side in ("base", "candidate")
    }
    typ = frame[frame["typology"].astype(str) != ""]
    per_typology = _by(typ, "typology").rename(columns={"rows": "positives"}) if len(typ) else pd.DataFrame(
        columns=["typology", "positives", "base_alerts", "candidate_alerts", "added", "removed"])
    for side in ("base", "candidate"):
        per_typology[f"{side}_recall"] = (per_typology[f"{side}_alerts"] / per_typology["positives"]).astype(float)
    days = sorted(frame["day"].unique())
    return BacktestReport(base=base, candidate=candidate, period=f"{days[0]}..{days[-1]}", rows=int(len(frame)),
                          days=len(days), metrics=metrics, added=int(frame["_added"].sum()),
                          removed=int(frame["_removed"].sum()), daily=daily, per_typology=per_typology,
                          per_channel=_by(frame, "channel"), per_customer_type=_by(frame, "customer_type"))
