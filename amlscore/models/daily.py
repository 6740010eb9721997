"""Per-day distributions of what a model set scored, kept on the reference bins so drift is a lookup.

The service adds every decision (:meth:`DailyDistributions.add`); batch scoring can add a whole frame
(:meth:`DailyDistributions.add_many`). Per bank day it counts, for every feature and score of the model
set's training reference (:mod:`amlscore.models.reference`), the rows in each reference bin and the
missing ones; the rows and alerts overall and per segment (channel, customer type); and the fused score
in 1,000 bins of 0.1 on 0..100, for its quantiles. From these counts :meth:`summary` gives the day's PSI
of every column against the reference, the worst one, the alert rates and the score quantiles without
keeping a single transaction. Adding a row is a few vectorised numpy operations (30-70 µs on the
project's busy 2-core VM, against 4-5 ms of CPU per explained decision).

Days are written to ``<folder>/<YYYY-MM-DD>.json`` by :meth:`save` and read back by :meth:`load`, so a
restarted service keeps its days.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from amlscore.models.reference import ModelReference, psi_of_shares

__all__ = ["SCORE_BINS", "DailyDistributions"]

SCORE_BINS = 1000  # the fused score's histogram: bins of 0.1 on 0..100
_QUANTILES = (0.5, 0.9, 0.99)


class _Day:
    """One day's counts."""

    def __init__(self, n_columns: int, width: int) -> None:
        self.counts = np.zeros((n_columns, width), dtype=np.int64)
        self.rows = 0
        self.alerts = 0
        self.score_hist = np.zeros(SCORE_BINS, dtype=np.int64)
        self.segments: dict[str, dict[str, list[int]]] = {}  # name -> value -> [rows, alerts]
        self.dirty = False


class DailyDistributions:
    """Per-day counts on a reference's bins (see the module docstring).

    Parameters
    ----------
    reference : ModelReference
    columns : sequence of str
        The order of the values given to :meth:`add` (the model set's features, then the scores);
        a column the reference does not know is an error.
    keep_days : int
        The most recent days kept in memory.
    """

    def __init__(self, reference: ModelReference, columns: Sequence[str], keep_days: int = 120) -> None:
        unknown = [c for c in columns if c not in reference.columns]
        if unknown:
            raise ValueError(f"columns without a reference: {', '.join(unknown[:5])}")
        self.reference = reference
        self.columns = tuple(columns)
        self.keep_days = keep_days
        n_edges = [len(reference.columns[c].edges) for c in self.columns]
        self._n_edges = np.array(n_edges, dtype=np.int64)
        width = max(n_edges, default=0)
        self._edges = np.full((len(self.columns), max(width, 1)), np.inf)
        for i, c in enumerate(self.columns):
            self._edges[i, :n_edges[i]] = reference.columns[c].edges
        self._missing_slot = width + 1  # bins 0..width for values, then the missing slot
        self._width = width + 2
        self._rows = np.arange(len(self.columns))
        self._base = self._rows * self._width  # row offsets into a day's flattened counts
        self._score_col = self.columns.index("suspicion_score") if "suspicion_score" in self.columns else None
        self._days: dict[str, _Day] = {}
        self._lock = threading.Lock()

    # -- adding -----------------------------------------------------------------------------------
    def _bins(self, values: np.ndarray) -> np.ndarray:
        """Bin of each value on its column's edges (``(-inf, e0], (e0, e1], ...``), missing in the last slot."""
        bins = (values[..., None] > self._edges).sum(axis=-1)  # NaN compares False: bin 0 until set below
        missing = np.isnan(values)
        if missing.any():
            bins[missing] = self._missing_slot
        return bins

    def _day(self, day: str) -> _Day:
        found = self._days.get(day)
        if found is None:
            found = self._days[day] = _Day(len(self.columns), self._width)
            for old in sorted(self._days)[:-self.keep_days]:
                del self._days[old]
        return found

    def add(self, day: str, values: np.ndarray, alert: bool, segments: Mapping[str, str]) -> None:
        """Count one scored row: ``values`` in :attr:`columns` order."""
        v = np.asarray(values, dtype=np.float64)
        bins = self._bins(v)
        with self._lock:
            d = self._day(day)
            d.counts.reshape(-1)[self._base + bins] += 1  # one index per column, no repeats
            d.rows += 1
            d.alerts += int(bool(alert))
            if self._score_col is not None and not np.isnan(v[self._score_col]):
                d.score_hist[min(int(v[self._score_col] * SCORE_BINS / 100.0), SCORE_BINS - 1)] += 1
            for name, value in segments.items():
                cell = d.segments.setdefault(name, {}).setdefault(str(value), [0, 0])
                cell[0] += 1
                cell[1] += int(bool(alert))
            d.dirty = True

    def add_many(self, days: np.ndarray, values: np.ndarray, alert: np.ndarray,
                 segments: Mapping[str, np.ndarray]) -> None:
        """Count many rows: ``values`` of shape (n, len(columns)), one bank day (``YYYY-MM-DD``) per row."""
        days = np.asarray(days).astype(str)
        values = np.asarray(values, dtype=np.float64)
        alert = np.asarray(alert, dtype=bool)
        for day in np.unique(days):
            rows = np.flatnonzero(days == day)
            bins = self._bins(values[rows])
            with self._lock:
                d = self._day(str(day))
                np.add.at(d.counts, (np.broadcast_to(self._rows, bins.shape), bins), 1)
                d.rows += len(rows)
                d.alerts += int(alert[rows].sum())
                if self._score_col is not None:
                    s = values[rows, self._score_col]
                    s = s[~np.isnan(s)]
                    d.score_hist += np.bincount(np.minimum((s * SCORE_BINS / 100.0).astype(int), SCORE_BINS - 1),
                                                minlength=SCORE_BINS)
                for name, vals in segments.items():
                    keys, inverse = np.unique(np.asarray(vals)[rows].astype(str), return_inverse=True)
                    n = np.bincount(inverse, minlength=len(keys))
                    hits = np.bincount(inverse, weights=alert[rows].astype(float), minlength=len(keys))
                    table = d.segments.setdefault(name, {})
                    for k, c, h in zip(keys, n, hits):
                        cell = table.setdefault(str(k), [0, 0])
                        cell[0] += int(c)
                        cell[1] += int(h)
                d.dirty = True

    # -- reading ----------------------------------------------------------------------------------
    @property
    def days(self) -> list[str]:
        with self._lock:
            return sorted(self._days)

    def psi(self, day: str) -> dict[str, float]:
        """PSI of every column on ``day`` against the reference (missing values as one more bin)."""
        with self._lock:
            d = self._days.get(day)
            if d is None or d.rows == 0:
                return {}
            counts = d.counts.copy()
            rows = d.rows
        out = {}
        for i, name in enumerate(self.columns):
            ref = self.reference.columns[name]
            k = int(self._n_edges[i]) + 1
            present = counts[i, :k]
            current = np.append(present / rows, counts[i, self._missing_slot] / rows)
            expected = np.append(np.asarray(ref.shares) * (1.0 - ref.missing_share), ref.missing_share)
            out[name] = psi_of_shares(expected, current)
        return out

    def summary(self, day: str) -> dict[str, Any]:
        """The day's rows, alerts, alert rate (overall and per segment), score quantiles and worst PSI."""
        values = self.psi(day)
        with self._lock:
            d = self._days.get(day)
            if d is None:
                return {"day": day, "rows": 0}
            hist = d.score_hist.copy()
            rows, alerts = d.rows, d.alerts
            segments = {name: {k: {"rows": c[0], "alerts": c[1], "alert_rate": c[1] / c[0] if c[0] else 0.0}
                               for k, c in table.items()} for name, table in d.segments.items()}
        cum = np.cumsum(hist)
        quantiles = {}
        if cum[-1] > 0:
            for q in _QUANTILES:
                b = int(np.searchsorted(cum, q * cum[-1]))
                quantiles[f"q{q:g}"] = (b + 1) * 100.0 / SCORE_BINS  # upper edge of the bin holding the quantile
        worst = max(values.items(), key=lambda kv: kv[1], default=(None, 0.0))
        return {"day": day, "rows": rows, "alerts": alerts, "alert_rate": alerts / rows if rows else 0.0,
                "reference_alert_rate": self.reference.alert_rate, "score_quantiles": quantiles,
                "worst_psi": {"column": worst[0], "psi": worst[1]}, "psi": values, "segments": segments}

    # -- persistence ------------------------------------------------------------------------------
    def save(self, folder: Path) -> int:
        """Write the days changed since the last save to ``folder/<day>.json`` (each whole); returns how many."""
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            changed = [(day, d) for day, d in self._days.items() if d.dirty]
            payloads = [(day, {"reference": self.reference.fingerprint, "columns": list(self.columns), "rows": d.rows, "alerts": d.alerts,
                               "counts": d.counts.tolist(), "score_hist": d.score_hist.tolist(),
                               "segments": d.segments}) for day, d in changed]
            for _, d in changed:
                d.dirty = False
        for day, payload in payloads:
            tmp = folder / f".{day}.json.partial"
            tmp.write_text(json.dumps(payload), encoding="utf-8")
            tmp.replace(folder / f"{day}.json")
        return len(payloads)

    def load(self, folder: Path) -> int:
        """Read the most recent saved days written with the same columns and bins; returns how many."""
        if not folder.is_dir():
            return 0
        loaded = 0
        for path in sorted(folder.glob("*.json"))[-self.keep_days:]:
            raw = json.loads(path.read_text(encoding="utf-8"))
            counts = np.asarray(raw["counts"], dtype=np.int64)
            if (raw.get("reference") != self.reference.fingerprint or raw.get("columns") != list(self.columns)
                    or counts.shape != (len(self.columns), self._width)):
                continue  # another model set's days: its bins are not these
            d = _Day(len(self.columns), self._width)
            d.counts, d.rows, d.alerts = counts, int(raw["rows"]), int(raw["alerts"])
            d.score_hist = np.asarray(raw["score_hist"], dtype=np.int64)
            d.segments = {k: {s: [int(c[0]), int(c[1])] for s, c in v.items()} for k, v in raw["segments"].items()}
            with self._lock:
                self._days[path.stem] = d
            loaded += 1
        return loaded
