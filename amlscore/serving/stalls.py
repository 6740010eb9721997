"""Where the event loop was when it stalled: an opt-in report for finding latency spikes.

The service scores on its event loop, so anything that holds the loop (a long computation, a
collection, a blocking call) delays every request queued behind it. With ``AML_STALL_REPORT_MS``
set (say 20), a watchdog thread checks a heartbeat that the loop updates every few milliseconds;
when the heartbeat is older than the threshold it logs, once per stall, the loop thread's Python
stack at that moment, and when the loop comes back, how long the stall lasted. A stall inside C
code that keeps the GIL (numba, a pickle) is reported when the GIL is next released, with the
stack that was running it.

Off by default: the heartbeat costs a callback every ``tick_ms`` (~2 µs each) and the watchdog wakes
as often.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import traceback

log = logging.getLogger("amlscore.serving.stalls")


class StallReporter:
    """Log the event loop's stack whenever it stalls for longer than ``threshold_ms``.

    Parameters
    ----------
    threshold_ms : a stall longer than this is reported.
    tick_ms : how often the loop beats and the watchdog looks.
    """

    def __init__(self, threshold_ms: float, tick_ms: float = 5.0) -> None:
        if threshold_ms <= 0 or tick_ms <= 0:
            raise ValueError(f"threshold_ms and tick_ms must be > 0; got {threshold_ms!r} and {tick_ms!r}")
        self.threshold = threshold_ms / 1000
        self.tick = tick_ms / 1000
        self.stalls = 0  # stalls reported
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._beat_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        """Start watching the running loop (from a coroutine on it); later calls do nothing."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._beat_at = time.perf_counter()
        self._loop.call_soon(self._beat)
        self._thread = threading.Thread(target=self._watch, name="stall-reporter", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        self._beat_at = time.perf_counter()
        if not self._stop.is_set() and self._loop is not None:
            self._loop.call_later(self.tick, self._beat)

    def _watch(self) -> None:
        stalled_since: float | None = None
        while not self._stop.wait(self.tick):
            beat = self._beat_at
            lag = time.perf_counter() - beat
            if lag > self.threshold + self.tick:
                if stalled_since != beat:  # a new stall: report where the loop is now
                    stalled_since = beat
                    self.stalls += 1
                    frame = sys._current_frames().get(self._loop_thread)
                    where = "".join(traceback.format_stack(frame, limit=14)) if frame is not None else "(no frame)\n"
                    log.warning("event loop stalled for %.0f ms so far, in:\n%s", lag * 1000, where.rstrip())
            elif stalled_since is not None and beat != stalled_since:
                log.warning("event loop stall over: %.0f ms", (beat - stalled_since) * 1000)
                stalled_since = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
