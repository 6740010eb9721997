"""The shadow (challenger) model set: scored off the response path, recorded, never returned.

With ``AML_SHADOW`` set, the engine hands each decided transaction's feature row (the one the
online state computed for the champion: features are never computed twice, and the state counts
each transaction once) to a :class:`ShadowScorer`. One background thread takes the rows from a
bounded queue, scores them with the shadow model set (several waiting rows in one model call) and
submits the scores to the audit log's ``shadow_scores`` table. Nothing waits for it: when the queue
is full the row's shadow score is dropped and counted (``on_drop``, the service's
``amlscore_shadow_dropped_total``), so a slow shadow never holds up a response. No route reads the
table; ``amlscore compare`` does.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from amlscore.core.audit import AuditLog, ShadowScore, utc_now_iso
from amlscore.core.decision import components_of, finite_or_none
from amlscore.serving.registry import LoadedModel

log = logging.getLogger(__name__)
_MAX_ROWS_PER_CALL = 256  # waiting rows scored together: one model call, one audit write
# After the first row, the worker sleeps this long (without the GIL) to let more rows arrive: scoring
# several rows in one call costs little more than one, so the shadow takes the GIL from the event
# loop less often and costs less CPU per request.
LINGER_SECONDS = 0.05


@dataclass(frozen=True)
class ShadowItem:
    """One decided transaction waiting for the shadow: its ids and the champion's feature row."""

    request_id: str
    txn_id: str
    features: np.ndarray


_STOP = object()


class ShadowScorer:
    """A single worker thread scoring queued feature rows with the shadow model set.

    Parameters
    ----------
    model : the shadow model set as loaded from the registry (:meth:`swap` replaces it at a reload).
    audit : the audit log the scores go to.
    max_queue : rows waiting at most; :meth:`offer` drops the rest.
    on_drop : called with the number of rows dropped (the service's Prometheus counter).
    linger : seconds the worker waits after a first row for more to score with it.

    The thread starts with :meth:`start`; until then rows only queue (what the tests use to fill
    the queue deterministically).
    """

    def __init__(self, model: LoadedModel, audit: AuditLog, max_queue: int = 10_000,
                 on_drop: Callable[[int], None] | None = None, linger: float = LINGER_SECONDS) -> None:
        self.model = model
        self.linger = linger
        self.audit = audit
        self.on_drop = on_drop
        self.dropped = 0  # rows whose shadow score was dropped (queue full)
        self.scored = 0  # rows scored and submitted to the audit log
        self.failed = 0  # rows the shadow model set failed on (logged)
        self._queue: queue.Queue[ShadowItem | object] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._model_lock = threading.Lock()

    # -- the response path: never blocks ---------------------------------------------------------
    def offer(self, items: list[ShadowItem]) -> int:
        """Queue rows for the shadow without waiting; returns how many were dropped (queue full)."""
        dropped = 0
        for item in items:
            try:
                self._queue.put_nowait(item)
            except queue.Full:
                dropped += 1
        if dropped:
            self.dropped += dropped
            if self.on_drop is not None:
                self.on_drop(dropped)
        return dropped

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="shadow-scorer", daemon=True)
            self._thread.start()

    def swap(self, model: LoadedModel) -> None:
        """Score the rows not yet taken with another shadow model set (a reload)."""
        with self._model_lock:
            self.model = model

    def drain(self) -> None:
        """Wait until every queued row is scored and its score submitted (tests, shutdown)."""
        self._queue.join()

    def close(self) -> None:
        """Score what is queued, then stop the thread (before the audit log closes)."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None

    # -- the worker ---------------------------------------------------------------------------------
    def _take(self) -> tuple[list[ShadowItem], bool]:
        """The next rows to score (waiting for the first, taking the others already queued), and whether to stop."""
        first = self._queue.get()
        if first is _STOP:
            self._queue.task_done()
            return [], True
        items = [first]
        stop = False
        if self.linger > 0 and self._queue.qsize() < _MAX_ROWS_PER_CALL:
            time.sleep(self.linger)
        while len(items) < _MAX_ROWS_PER_CALL:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                break
            if nxt is _STOP:
                self._queue.task_done()
                stop = True
                break
            items.append(nxt)
        return items, stop  # type: ignore[return-value]

    def _run(self) -> None:
        while True:
            items, stop = self._take()
            try:
                if items:
                    self._score(items)
            finally:
                for _ in items:
                    self._queue.task_done()
            if stop:
                return

    def _score(self, items: list[ShadowItem]) -> None:
        with self._model_lock:
            model = self.model
        try:
            scores = model.model_set.score_vector(np.vstack([it.features for it in items]))
        except Exception:  # noqa: BLE001 - the shadow must never take the service down; the champion answered
            log.exception("the shadow model %s v%s failed on %d rows; their shadow scores are lost",
                          model.name, model.version, len(items))
            self.failed += len(items)
            return
        now = utc_now_iso()
        rows = [ShadowScore(request_id=it.request_id, txn_id=it.txn_id, model_name=model.name,
                            model_version=model.version, suspicion_score=finite_or_none(scores.suspicion_score[i]),
                            alert=bool(scores.alert[i]), components=dict(components_of(scores, i)), scored_at=now)
                for i, it in enumerate(items)]
        try:
            self.audit.submit_shadow(rows).result()
        except Exception:  # noqa: BLE001 - e.g. the audit log closed under it
            log.exception("recording %d shadow scores in the audit log failed", len(rows))
            self.failed += len(rows)
            return
        self.scored += len(rows)
