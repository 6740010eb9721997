"""The training reference of a model set: what its inputs and scores looked like when it was fitted.

Drift monitoring (:mod:`amlscore.monitoring`) compares a later period with this reference, so it is
written into the model set folder at training time (``reference.json``, hashed with the other files)
and travels with every registered version. It holds, for every feature and every score column:

* the **bin edges**: the distinct deciles of the column's non-missing reference values. The bins are
  ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` (``searchsorted(edges, v, side="left")``), so a value
  that fills several deciles (the zeros of a count, the 0 of a flag) gets a bin of its own, apart from
  the values above it, instead of ten empty-or-full ones;
* the **share** of the non-missing reference rows in each bin and the **missing share** (NaN);

and the reference alert rate, overall and per segment (channel, customer type).

The reference period is the validation period: the last one before the test period, on which the
fusion and the alert threshold were fitted, so its alert rate is the one the threshold was chosen
for and its score distribution is the calibrated one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

__all__ = ["REFERENCE_FILE", "REFERENCE_VERSION", "ColumnReference", "ModelReference", "bin_shares",
           "build_reference", "decile_edges", "psi_of_shares"]

REFERENCE_FILE = "reference.json"
REFERENCE_VERSION = 1
_DECILES = np.linspace(0.1, 0.9, 9)
_FLOOR = 1e-4


def psi_of_shares(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins (each sums to 1):
    ``sum((actual - expected) * ln(actual / expected))``, shares floored at 1e-4 so an empty bin counts
    as rare rather than infinitely surprising."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), _FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def decile_edges(values: np.ndarray) -> np.ndarray:
    """The distinct deciles of the non-missing ``values`` (empty when every value is missing)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return np.zeros(0)
    return np.unique(np.quantile(v, _DECILES))


def bin_shares(values: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, float]:
    """Shares of the non-missing ``values`` in the ``len(edges) + 1`` bins, and the share missing.

    With no non-missing value the bin shares are all zero.
    """
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    missing = np.isnan(v)
    n_missing = int(missing.sum())
    present = v[~missing] if n_missing else v
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=len(edges) + 1)
    shares = counts / len(present) if len(present) else np.zeros(len(edges) + 1)
    return shares.astype(np.float64), (n_missing / n if n else 0.0)


@dataclass
class ColumnReference:
    """One column's reference: bin edges, the share of non-missing rows per bin, the missing share."""

    edges: list[float]
    shares: list[float]
    missing_share: float

    @classmethod
    def of(cls, values: np.ndarray) -> "ColumnReference":
        edges = decile_edges(values)
        shares, missing = bin_shares(values, edges)
        return cls([float(e) for e in edges], [float(s) for s in shares], float(missing))


@dataclass
class ModelReference:
    """Reference distributions of a model set (see the module docstring).

    ``columns`` maps each feature and score column to its :class:`ColumnReference`; ``alert_rate``
    is the reference share of alerts and ``alert_rate_by`` the same per segment
    (``{"channel": {"atm": 0.004, ...}, "customer_type": {...}}``); ``rows`` the reference rows and
    ``period`` their first..last bank day.
    """

    period: str
    rows: int
    alert_threshold: float
    alert_rate: float
    columns: dict[str, ColumnReference]
    alert_rate_by: dict[str, dict[str, float]] = field(default_factory=dict)
    version: int = REFERENCE_VERSION

    @property
    def fingerprint(self) -> str:
        """Tells two references apart (period, rows, threshold): counts kept on one's bins are not the other's."""
        return f"{self.period}|{self.rows}|{self.alert_threshold:.12g}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able (the layout of ``reference.json``)."""
        return {
            "version": self.version, "period": self.period, "rows": self.rows,
            "alert_threshold": self.alert_threshold, "alert_rate": self.alert_rate,
            "alert_rate_by": self.alert_rate_by,
            "columns": {name: {"edges": c.edges, "shares": c.shares, "missing_share": c.missing_share}
                        for name, c in self.columns.items()},
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> "ModelReference":
        """Read :meth:`to_dict`'s layout; a version this code does not know is refused."""
        if raw.get("version") != REFERENCE_VERSION:
            raise ValueError(f"reference.json has version {raw.get('version')!r}; this code reads version "
                             f"{REFERENCE_VERSION}.")
        columns = {name: ColumnReference([float(e) for e in c["edges"]], [float(s) for s in c["shares"]],
                                         float(c["missing_share"])) for name, c in raw["columns"].items()}
        return cls(period=str(raw["period"]), rows=int(raw["rows"]), alert_threshold=float(raw["alert_threshold"]),
                   alert_rate=float(raw["alert_rate"]), columns=columns,
                   alert_rate_by={k: {s: float(r) for s, r in v.items()} for k, v in raw.get("alert_rate_by", {}).items()})


def build_reference(columns: Mapping[str, np.ndarray], alert: np.ndarray, segments: Mapping[str, np.ndarray], *,
                    period: str, alert_threshold: float) -> ModelReference:
    """The reference of the rows given: every column's bins, the alert rate overall and per segment.

    ``columns`` maps a column name to its float values (features and scores, same length);
    ``segments`` maps a segment name (``channel``, ``customer_type``) to each row's value.
    """
    alert = np.asarray(alert, dtype=bool)
    refs = {name: ColumnReference.of(values) for name, values in columns.items()}
    by: dict[str, dict[str, float]] = {}
    for name, values in segments.items():
        keys, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        n = np.bincount(inverse, minlength=len(keys))
        hits = np.bincount(inverse, weights=alert.astype(np.float64), minlength=len(keys))
        by[name] = {str(k): float(h / c) for k, h, c in zip(keys, hits, n) if c}
    return ModelReference(period=period, rows=int(len(alert)), alert_threshold=float(alert_threshold),
                          alert_rate=float(alert.mean()) if len(alert) else 0.0, columns=refs, alert_rate_by=by)
