"""Drift of a scored period against the model set's training reference.

For every feature and score column: the **population stability index** (PSI) over the reference
bins (:mod:`amlscore.models.reference`), with missing values as one more bin,

    PSI = sum_b (cur_b - ref_b) * ln(cur_b / ref_b)        (shares floored at 1e-4)

and the change of the missing-value share. Then the alert rate overall, per channel and per
customer type against the reference alert rates (a segment's reference rate floored at a tenth of the
overall one, so that a segment without a reference alert gets a finite ratio; judged only with
``min_rows`` rows and ``min_alerts`` alerts seen or expected), and per day the alert rate and the PSI of the
fused score. Each figure is judged against :class:`amlscore.monitoring.config.DriftThresholds` as
``ok``, ``warning`` or ``action``; every warning and action becomes a :class:`Finding` that says
what to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from amlscore.contract.errors import AmlError
from amlscore.models.reference import ColumnReference, ModelReference, bin_shares, psi_of_shares

__all__ = ["ColumnDrift", "DriftReport", "Finding", "SCORE_COLUMNS", "SegmentRate", "compute_drift", "psi",
           "require_reference"]

SCORE_COLUMNS = ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score")
_LEVEL_ORDER = {"ok": 0, "warning": 1, "action": 2}
QUANTILES = (0.5, 0.9, 0.99, 0.999)


def require_reference(model_set: Any) -> ModelReference:
    """The model set's training reference, or an error saying how to get one."""
    reference = getattr(model_set, "reference", None)
    if reference is None:
        version = (getattr(model_set, "metadata", {}) or {}).get("model_version")
        raise AmlError(f"The model set{f' (version {version})' if version else ''} carries no training reference "
                       "(reference.json): it was trained before amlscore wrote one. Retrain it with "
                       "`amlscore train` to monitor drift against it.")
    return reference


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """Population stability index of two share vectors over the same bins (each sums to 1; see
    :func:`amlscore.models.reference.psi_of_shares`)."""
    return psi_of_shares(expected, actual)


def _with_missing(shares: np.ndarray, missing: float) -> np.ndarray:
    """Bin shares of all rows: the non-missing bins scaled by the present share, then the missing bin."""
    return np.append(np.asarray(shares, dtype=np.float64) * (1.0 - missing), missing)


@dataclass
class ColumnDrift:
    """One column's drift: PSI, missing shares, their levels and both binned distributions."""

    name: str
    kind: str  # "feature" or "score"
    psi: float
    psi_level: str
    missing_reference: float
    missing_current: float
    missing_level: str
    edges: list[float]
    reference_shares: list[float]
    current_shares: list[float]

    @property
    def level(self) -> str:
        return max(self.psi_level, self.missing_level, key=_LEVEL_ORDER.__getitem__)


@dataclass
class SegmentRate:
    """Alert rate of a segment (``overall``, a channel, a customer type, a day) against the reference."""

    segment: str
    value: str
    rows: int
    alerts: int
    rate: float
    reference_rate: float | None
    ratio: float | None
    level: str


@dataclass
class Finding:
    """A warning or an action: what moved, by how much, and what to do."""

    level: str
    subject: str
    message: str
    action: str


@dataclass
class DriftReport:
    """Drift of one period against the training reference (see the module docstring)."""

    period: str
    rows: int
    reference_period: str
    reference_rows: int
    alert_threshold: float
    columns: list[ColumnDrift]
    alert_rates: list[SegmentRate]
    daily: list[dict[str, Any]]
    score_quantiles: dict[str, dict[str, float]]
    findings: list[Finding]
    model: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The worst level of any finding (``ok`` when there is none)."""
        return max((f.level for f in self.findings), key=_LEVEL_ORDER.__getitem__, default="ok")

    @property
    def worst_psi(self) -> ColumnDrift | None:
        return max(self.columns, key=lambda c: c.psi, default=None)

    def column(self, name: str) -> ColumnDrift:
        return next(c for c in self.columns if c.name == name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (bins included)."""
        worst = self.worst_psi
        return {
            "status": self.status, "period": self.period, "rows": self.rows,
            "reference_period": self.reference_period, "reference_rows": self.reference_rows,
            "alert_threshold": self.alert_threshold, "model": self.model,
            "worst_psi": {"column": worst.name, "psi": worst.psi} if worst else None,
            "columns": [asdict(c) | {"level": c.level} for c in self.columns],
            "alert_rates": [asdict(s) for s in self.alert_rates],
            "daily": self.daily, "score_quantiles": self.score_quantiles,
            "findings": [asdict(f) for f in self.findings],
        }


def _column_drift(name: str, kind: str, values: np.ndarray, ref: ColumnReference, thresholds: Any) -> ColumnDrift:
    edges = np.asarray(ref.edges, dtype=np.float64)
    shares, missing = bin_shares(values, edges)
    value = psi(_with_missing(ref.shares, ref.missing_share), _with_missing(shares, missing))
    return ColumnDrift(name, kind, value, thresholds.psi.level(value), ref.missing_share, missing,
                       thresholds.missing_share_change.level(abs(missing - ref.missing_share)), ref.edges,
                       ref.shares, [float(s) for s in shares])


def _rate(segment: str, value: str, alert: np.ndarray, reference_rate: float | None, thresholds: Any,
          floor: float) -> SegmentRate:
    """``floor``: the smallest reference rate a ratio is taken against (a segment without a single reference
    alert would otherwise give an infinite ratio on its first alert)."""
    rows, alerts = int(len(alert)), int(alert.sum())
    rate = alerts / rows if rows else 0.0
    ratio = None
    level = "ok"
    if reference_rate is not None:
        base = max(reference_rate, floor)
        ratio = rate / base if base > 0 else 1.0
        deviation = max(ratio, 1.0 / ratio) if ratio > 0 else float("inf")
        if rows >= thresholds.min_rows and max(alerts, rows * base) >= thresholds.min_alerts:
            level = thresholds.alert_rate_ratio.level(deviation)
    return SegmentRate(segment, value, rows, alerts, rate, reference_rate, ratio, level)


def _segment_rates(alert: np.ndarray, segments: Mapping[str, np.ndarray], reference: ModelReference,
                   thresholds: Any) -> list[SegmentRate]:
    floor = 0.1 * reference.alert_rate
    out = [_rate("overall", "all", alert, reference.alert_rate, thresholds, floor)]
    for name, values in segments.items():
        keys, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
        ref = reference.alert_rate_by.get(name, {})
        for k, key in enumerate(keys):
            rows = order[bounds[k]:bounds[k + 1]]
            out.append(_rate(name, str(key), alert[rows], ref.get(str(key)), thresholds, floor))
    return out


def _daily(days: np.ndarray, alert: np.ndarray, score: np.ndarray, ref: ColumnReference,
           thresholds: Any) -> list[dict[str, Any]]:
    """Per bank day: rows, alerts, alert rate and the PSI of the fused score (judged from ``min_rows`` rows)."""
    keys, inverse = np.unique(days, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
    edges = np.asarray(ref.edges, dtype=np.float64)
    expected = _with_missing(ref.shares, ref.missing_share)
    out = []
    for k, key in enumerate(keys):
        rows = order[bounds[k]:bounds[k + 1]]
        shares, missing = bin_shares(score[rows], edges)
        value = psi(expected, _with_missing(shares, missing))
        n = len(rows)
        out.append({"day": str(key), "rows": int(n), "alerts": int(alert[rows].sum()),
                    "alert_rate": float(alert[rows].mean()) if n else 0.0, "score_psi": value,
                    "score_psi_level": thresholds.psi.level(value) if n >= thresholds.min_rows else "ok"})
    return out


def _findings(columns: list[ColumnDrift], rates: list[SegmentRate], daily: list[dict[str, Any]],
              thresholds: Any) -> list[Finding]:
    found: list[Finding] = []
    for c in sorted(columns, key=lambda c: -c.psi):
        if c.psi_level != "ok" and c.kind == "feature":
            found.append(Finding(c.psi_level, c.name, f"PSI {c.psi:.3f} against the training reference",
                                 "Find the cause (data feed, product launch, customer or channel mix). If the shift is "
                                 "genuine and lasting, retrain the model set on recent data and backtest it "
                                 "(amlscore backtest) before promoting." if c.psi_level == "action" else
                                 "Watch it in the next periods; check the feed's own volumes for the same days."))
        elif c.psi_level != "ok":
            found.append(Finding(c.psi_level, c.name, f"score distribution PSI {c.psi:.3f}",
                                 "The scores moved: agree the expected alert volume with the investigation desk, and "
                                 "backtest a new threshold or a retrained model set before changing production."
                                 if c.psi_level == "action" else "Watch the score and alert volumes in the next periods."))
        if c.missing_level != "ok":
            found.append(Finding(c.missing_level, c.name, f"missing share {c.missing_reference:.1%} at training, "
                                 f"{c.missing_current:.1%} now",
                                 "Check the data feed and the contract mapping of the fields this feature reads: "
                                 "missing values there are usually a broken extract, not a change in behaviour."))
    for r in rates:
        if r.level != "ok":
            what = "overall" if r.segment == "overall" else f"{r.segment} {r.value}"
            found.append(Finding(r.level, f"alert rate {what}",
                                 f"alert rate {r.rate:.3%} against {r.reference_rate:.3%} at training "
                                 f"(x{r.ratio:.2f}, {r.rows:,} transactions)",
                                 "Tell the investigation desk the expected workload; look for the features that "
                                 "moved in this segment; backtest the threshold (amlscore backtest) before moving it."
                                 if r.level == "action" else "Watch this segment's alert rate in the next periods."))
    bad_days = [d for d in daily if d["score_psi_level"] != "ok"]
    if bad_days:
        worst = max(bad_days, key=lambda d: d["score_psi"])
        level = "action" if any(d["score_psi_level"] == "action" for d in bad_days) else "warning"
        found.append(Finding(level, "daily score PSI",
                             f"{len(bad_days)} of {len(daily)} days drift (worst {worst['day']}: PSI "
                             f"{worst['score_psi']:.3f})",
                             "Look at those days' volumes and feeds: a one-day spike is often a batch or a holiday; "
                             "a run of days is a change in the population."))
    found.sort(key=lambda f: -_LEVEL_ORDER[f.level])
    return found


def compute_drift(reference: ModelReference, columns: Mapping[str, np.ndarray], alert: np.ndarray,
                  segments: Mapping[str, np.ndarray], days: np.ndarray, thresholds: Any, *,
                  alert_threshold: float | None = None, model: dict[str, Any] | None = None) -> DriftReport:
    """The drift report of the rows given.

    Parameters
    ----------
    reference : ModelReference
        The model set's training reference.
    columns : mapping of name to float array
        Features and score columns of the period (same length). A reference column absent here is an
        error (the period must be scored with the model set the reference belongs to).
    alert : bool array
    segments : mapping of segment name (``channel``, ``customer_type``) to each row's value
    days : array of bank days (``datetime64[D]``)
    thresholds : DriftThresholds
    """
    missing = [name for name in reference.columns if name not in columns]
    if missing:
        raise AmlError(f"The period lacks {len(missing)} column(s) of the reference, e.g. {', '.join(missing[:5])}: "
                       "score it with the model set the reference belongs to.")
    alert = np.asarray(alert, dtype=bool)
    drifts = [_column_drift(name, "score" if name in SCORE_COLUMNS else "feature",
                            np.asarray(columns[name], dtype=np.float64), ref, thresholds)
              for name, ref in reference.columns.items()]
    rates = _segment_rates(alert, segments, reference, thresholds)
    days = np.asarray(days).astype("datetime64[D]")
    daily = _daily(days, alert, np.asarray(columns["suspicion_score"], dtype=np.float64),
                   reference.columns["suspicion_score"], thresholds)
    quantiles = {name: {f"q{q:g}": float(np.nanquantile(np.asarray(columns[name], dtype=np.float64), q))
                        for q in QUANTILES} for name in SCORE_COLUMNS if len(alert)}
    period = f"{days.min()}..{days.max()}" if len(days) else ""
    return DriftReport(period=period, rows=int(len(alert)), reference_period=reference.period,
                       reference_rows=reference.rows,
                       alert_threshold=float(reference.alert_threshold if alert_threshold is None else alert_threshold),
                       columns=drifts, alert_rates=rates, daily=daily, score_quantiles=quantiles,
                       findings=_findings(drifts, rates, daily, thresholds), model=model or {})
