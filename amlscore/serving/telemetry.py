"""The service's own Prometheus metrics, served on ``/metrics`` beside BentoML's request metrics.

``amlscore_audit_commit_seconds``
    How long each audit-log commit took, its fsync included. Every response waits for the commit
    that holds its decision, so a disk whose fsyncs stall shows here first: request latencies rise
    while the service's CPU time per request does not.
``amlscore_audit_commit_writes``
    Writes (decisions, replays, explanations) per commit: the group commit's batching.

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


def audit_commit_observer() -> Callable[[float, int], None]:
    """A function for :attr:`amlscore.core.audit.AuditLog.on_commit` that records each commit in the metrics."""
    seconds, writes = _audit_metrics()

    def observe(duration: float, n_writes: int) -> None:
        seconds.observe(duration)
        writes.observe(n_writes)

    return observe
