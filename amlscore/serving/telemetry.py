"""The service's own Prometheus metrics, served on ``/metrics`` beside BentoML's request metrics.

``amlscore_audit_commit_seconds``
    How long each audit-log commit took, its fsync included. Every response waits for the commit
    that holds its decision, so a disk whose fsyncs stall shows here first: request latencies rise
    while the service's CPU time per request does not.
``amlscore_audit_commit_writes``
    Writes (decisions, replays, explanations) per commit: the group commit's batching.
``amlscore_alert_rate``, ``amlscore_reference_alert_rate``
    The share of the latest bank day's decisions that alerted, and the served model set's reference rate.
``amlscore_score_quantile{quantile}``
    The 0.5, 0.9 and 0.99 quantiles of that day's suspicion scores (to 0.1).
``amlscore_psi{column}``, ``amlscore_worst_psi``
    Each feature's and score's population stability index on that day against the model set's training
    reference, and the largest (:mod:`amlscore.serving.drift_watch`; updated every 1,000 decisions).
``amlscore_shadow_dropped_total``
    Rows whose shadow (``AML_SHADOW``) score was dropped because the shadow's queue was full
    (:mod:`amlscore.serving.shadow`): the shadow falls behind the traffic; the champion is not slowed.

Built with ``prometheus_client`` (``bentoml.metrics`` is deprecated in BentoML 1.4). Under
``bentoml serve`` the client runs in multiprocess mode and BentoML's ``/metrics`` collects it. The
metrics are created once per process, at the first call, so that the multiprocess settings are in
place and a process that builds several services (the tests) does not register them twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_COMMIT_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.015, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_COMMIT_WRITES_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

_lock = threading.Lock()
_metrics: dict[str, Any] = {}


def _audit_metrics() -> tuple[Any, Any]:
    with _lock:
        if not _metrics:
            from prometheus_client import Histogram  # noqa: PLC0415 - after BentoML set up multiprocess mode

            _metrics["seconds"] = Histogram("amlscore_audit_commit_seconds",
                                            "Duration of each audit-log commit, its fsync included (seconds).",
                                            buckets=_COMMIT_SECONDS_BUCKETS)
            _metrics["writes"] = Histogram("amlscore_audit_commit_writes",
                                           "Writes (decisions, replays, explanations) per audit-log commit.",
                                           buckets=_COMMIT_WRITES_BUCKETS)
    return _metrics["seconds"], _metrics["writes"]


def _drift_metrics() -> dict[str, Any]:
    with _lock:
        if "alert_rate" not in _metrics:
            from prometheus_client import Gauge  # noqa: PLC0415

            mode = {"multiprocess_mode": "mostrecent"}
            _metrics["alert_rate"] = Gauge("amlscore_alert_rate", "Share of the latest bank day's decisions that "
                                           "alerted.", **mode)
            _metrics["reference_alert_rate"] = Gauge("amlscore_reference_alert_rate", "Alert rate of the served "
                                                     "model set's training reference.", **mode)
            _metrics["quantile"] = Gauge("amlscore_score_quantile", "Quantiles of the latest bank day's suspicion "
                                         "scores.", ["quantile"], **mode)
            _metrics["psi"] = Gauge("amlscore_psi", "Population stability index of a feature or score on the latest "
                                    "bank day against the training reference.", ["column"], **mode)
            _metrics["worst_psi"] = Gauge("amlscore_worst_psi", "The largest amlscore_psi.", **mode)
    return _metrics


def drift_gauges() -> Callable[[dict[str, Any]], None]:
    """A function for :meth:`amlscore.serving.scoring.ScoringEngine.observe_drift` that sets the drift gauges."""
    metrics = _drift_metrics()

    def publish(summary: dict[str, Any]) -> None:
        metrics["alert_rate"].set(summary.get("alert_rate", 0.0))
        metrics["reference_alert_rate"].set(summary.get("reference_alert_rate", 0.0))
        for name, value in summary.get("score_quantiles", {}).items():
            metrics["quantile"].labels(quantile=name.lstrip("q")).set(value)
        for column, value in summary.get("psi", {}).items():
            metrics["psi"].labels(column=column).set(value)
        metrics["worst_psi"].set((summary.get("worst_psi") or {}).get("psi") or 0.0)

    return publish


def audit_commit_observer() -> Callable[[float, int], None]:
    """A function for :attr:`amlscore.core.audit.AuditLog.on_commit` that records each commit in the metrics."""
    seconds, writes = _audit_metrics()

    def observe(duration: float, n_writes: int) -> None:
        seconds.observe(duration)
        writes.observe(n_writes)

    return observe


def shadow_drop_counter() -> Callable[[int], None]:
    """A function for :attr:`amlscore.serving.shadow.ShadowScorer.on_drop` that counts the dropped shadow scores."""
    with _lock:
        if "shadow_dropped" not in _metrics:
            from prometheus_client import Counter  # noqa: PLC0415

            _metrics["shadow_dropped"] = Counter("amlscore_shadow_dropped", "Shadow scores dropped because the "
                                                 "shadow's queue was full.")
    counter = _metrics["shadow_dropped"]

    def count(n: int) -> None:
        counter.inc(n)

    return count
