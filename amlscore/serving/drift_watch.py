"""What the service scored, per bank day, on the served model set's reference bins (:mod:`amlscore.models.daily`).

Every decision adds its features, its four scores, its alert, its channel and its customer type to the
day's counts (30-70 µs; :mod:`amlscore.models.daily`). The counts are written to ``<state>/monitoring/daily/<model version>/<day>.json``
every ``save_every`` decisions and when the service stops, and read back when it starts, so a day's
figures survive a restart. Every ``publish_every`` decisions the day's summary (alert rate, score
quantiles, every column's PSI against the reference) goes to ``on_summary``: the service points it at
its Prometheus gauges (:func:`amlscore.serving.telemetry.drift_gauges`). ``POST /v1/admin/drift`` returns
a day's summary. A model set without a reference (trained before amlscore wrote one) is served without
this.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from amlscore.models.daily import DailyDistributions

__all__ = ["DriftWatch"]

log = logging.getLogger(__name__)
SCORE_FIELDS = ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score")
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class DriftWatch:
    """Per-day distributions of one served model set (see the module docstring)."""

    def __init__(self, model_set: Any, version: str, state_dir: Path, *, publish_every: int = 1000,
                 save_every: int = 5000, on_summary: Callable[[dict[str, Any]], None] | None = None) -> None:
        columns = list(model_set.feature_names) + list(SCORE_FIELDS)
        self.daily = DailyDistributions(model_set.reference, columns)
        self.folder = Path(state_dir) / "monitoring" / "daily" / _SAFE.sub("_", str(version))
        self.loaded_days = self.daily.load(self.folder)
        self.publish_every = publish_every
        self.save_every = save_every
        self.on_summary = on_summary
        self._n = 0
        self._last_day: str | None = None

    @classmethod
    def for_model(cls, model_set: Any, version: str, state_dir: Path, **options: Any) -> "DriftWatch | None":
        """A watch for ``model_set``, or None when it carries no training reference."""
        if getattr(model_set, "reference", None) is None:
            log.warning("model version %s carries no training reference: no per-day drift figures", version)
            return None
        return cls(model_set, version, state_dir, **options)

    def observe(self, day: str, features: np.ndarray, scores: tuple[float, float, float, float], alert: bool,
                channel: str, customer_type: str) -> None:
        """Count one decision."""
        values = np.concatenate([np.asarray(features, dtype=np.float64).reshape(-1),
                                 np.asarray(scores, dtype=np.float64)])
        self.daily.add(day, values, alert, {"channel": channel, "customer_type": customer_type})
        self._last_day = day
        self._n += 1
        if self.on_summary is not None and self._n % self.publish_every == 0:
            self.publish()
        if self._n % self.save_every == 0:
            self.save()

    def publish(self) -> None:
        if self.on_summary is not None and self._last_day is not None:
            self.on_summary(self.daily.summary(self._last_day))

    def summary(self, day: str | None = None) -> dict[str, Any]:
        """A day's summary (default: the latest day seen), with the days kept."""
        days = self.daily.days
        chosen = day or (days[-1] if days else None)
        out = self.daily.summary(chosen) if chosen else {"day": None, "rows": 0}
        out["days"] = days
        return out

    def save(self) -> None:
        try:
            self.daily.save(self.folder)
        except OSError as exc:  # figures are not decisions: a full disk must not fail scoring
            log.error("cannot save the per-day drift counts to %s: %s", self.folder, exc)
