"""HTML of the drift and backtest reports: one self-contained file each, charts as inline SVG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, FileSystemLoader, select_autoescape

from amlscore.monitoring.charts import LEVEL_COLOURS, grouped_bars, hbars, lines
from amlscore.monitoring.backtest import BacktestReport
from amlscore.monitoring.drift import QUANTILES, DriftReport

__all__ = ["render_backtest", "render_drift", "write_html"]

_ENV = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                   autoescape=select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)


def _bin_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["all"]
    return [f"≤{edges[0]:.3g}"] + [f"{a:.3g}–{b:.3g}" for a, b in zip(edges, edges[1:])] + [f">{edges[-1]:.3g}"]


def render_drift(report: DriftReport, thresholds: Any, *, top: int = 25, distributions: int = 6) -> str:
    """The drift report as one HTML page: findings first, then PSI, distributions, alert rates, every column."""
    ranked = sorted(report.columns, key=lambda c: -c.psi)
    shown = ranked[:top]
    psi_chart = hbars([c.name for c in shown], [c.psi for c in shown], [LEVEL_COLOURS[c.psi_level] for c in shown],
                      title=f"PSI against the training reference (top {len(shown)} of {len(ranked)})",
                      marks=[(thresholds.psi.warning, "warning"), (thresholds.psi.action, "action")],
                      cap=4 * thresholds.psi.action)
    picks = [report.column("suspicion_score")] + [c for c in ranked if c.name != "suspicion_score"][:distributions - 1]
    dist_charts = [grouped_bars(_bin_labels(c.edges) + ["missing"],
                                {"training": [s * (1 - c.missing_reference) for s in c.reference_shares]
                                 + [c.missing_reference],
                                 "now": [s * (1 - c.missing_current) for s in c.current_shares] + [c.missing_current]},
                                title=f"{c.name}: share of transactions per reference bin (PSI {c.psi:.3f})")
                   for c in picks]
    overall = report.alert_rates[0]
    daily_chart = lines([d["day"] for d in report.daily],
                        {"alert rate": [d["alert_rate"] for d in report.daily],
                         "training alert rate": [overall.reference_rate or 0.0] * len(report.daily)},
                        title="Alert rate per day")
    model = report.model
    model_name = (f"{model.get('registered_model_name') or 'the model set'} version {model['model_version']}"
                  if model.get("model_version") else "the model set")
    return _ENV.get_template("drift.html.j2").render(
        r=report, t=thresholds, psi_chart=psi_chart, dist_charts=dist_charts, daily_chart=daily_chart,
        columns=ranked, model_name=model_name, quantile_names=[f"q{q:g}" for q in QUANTILES])


def write_html(path: Path, html: str) -> None:
    """Write ``html`` to ``path`` whole (a temporary file renamed into place)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)


_FIGURES = (("alerts", "alerts"), ("alerts_per_day_mean", "alerts per day (mean)"),
            ("alerts_per_day_p95", "alerts per day (95th percentile)"), ("alerts_per_day_max", "alerts on the busiest day"),
            ("recall_reports", "recall on the period's reports"), ("precision_reports", "precision on the period's reports"),
            ("alerts_with_disposition", "alerts with a disposition"),
            ("precision_dispositions", "precision on dispositions (suspicious / judged)"))


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.3f}"
    return str(v)


def render_backtest(report: BacktestReport) -> str:
    """The backtest report as one HTML page: workload and quality, alerts per day, added and removed per segment."""
    daily = report.daily
    daily_chart = lines(list(daily["day"]), {"base alerts": list(daily["base_alerts"]),
                                             "candidate alerts": list(daily["candidate_alerts"])},
                        title="Alerts per day (analysts' workload)")
    seg = report.per_channel
    delta_chart = grouped_bars(list(seg["channel"]), {"added": list(seg["added"]), "removed": list(seg["removed"])},
                               title="Alerts added and removed per channel")
    tables = [("Per typology (positives of the period)", report.per_typology), ("Per channel", report.per_channel),
              ("Per customer type", report.per_customer_type), ("Per day", report.daily)]
    return _ENV.get_template("backtest.html.j2").render(r=report, figures=_FIGURES, fmt=_fmt, daily_chart=daily_chart,
                                                        delta_chart=delta_chart, tables=tables)
