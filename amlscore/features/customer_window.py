"""One customer's window state on the online path, and the compiled step that adds an event to it.

:class:`_CustomerState` keeps a customer's events inside the longest window (90 days) with the running
sums after each, its fan-in/fan-out windows of counterparties (:class:`_CountedWindow`), the
counterparties it ever dealt with and the times of its previous transactions; :func:`_customer_step`
(compiled) appends one event and returns its window sums, sums of squares and maxima.

Both classes are pickled into the online state's snapshots under ``amlscore.features.online``, where they
were defined before this module held them (see the end of the module).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from numba import njit

from amlscore.features.catalogue import WINDOWS
from amlscore.features.events import WINDOW_SUMS
from amlscore.features.finalize import N_SUMS, VELOCITY_WINDOWS

WINDOW_NS = {name: seconds * 1_000_000_000 for name, seconds in WINDOWS.items()}
MAX_WINDOW_NS = max(WINDOW_NS.values())
_INITIAL_EVENTS = 8  # per customer; the buffers double when full of events still in the window
assert tuple(VELOCITY_WINDOWS) == tuple(WINDOWS)
_VELOCITY_NS = np.array([WINDOW_NS[w] for w in VELOCITY_WINDOWS], dtype=np.int64)  # == WINDOWS order
_WINDOW_POS = {w: i for i, w in enumerate(VELOCITY_WINDOWS)}
_SUM_WINDOW = np.array([_WINDOW_POS[w] for _, w in WINDOW_SUMS], dtype=np.int64)  # each sum's window


class _CountedWindow:
    """Distinct keys over a time window: a deque of (time, key) and a count per key."""

    __slots__ = ("window", "events", "counts")

    def __init__(self, window: int) -> None:
        self.window = window
        self.events: deque[tuple[int, Any]] = deque()
        self.counts: dict[Any, int] = {}

    def add_and_count(self, t: int, key: Any | None) -> int:
        if key is not None:
            self.events.append((t, key))
            self.counts[key] = self.counts.get(key, 0) + 1
        limit = t - self.window
        events, counts = self.events, self.counts
        while events and events[0][0] <= limit:
            _, old = events.popleft()
            c = counts[old] - 1
            if c:
                counts[old] = c
            else:
                del counts[old]
        return len(counts)


class _CustomerState:
    """One customer's events within the longest window, and what was summed up to each.

    Events ``head .. n-1`` are inside the 90-day window (``ts``, ``amount``, ``is_in``). Row ``e + 1``
    of ``cum`` (integer window sums) and of ``sq_in``/``sq_out`` (sums of amount², added in the same
    order as the offline running sums) holds the totals after event ``e``, so row ``e`` is the total
    before it. Older rows are dropped once they are most of the buffer.
    """

    __slots__ = ("ts", "amount", "is_in", "cum", "sq_in", "sq_out", "n", "head", "fans", "seen_cps", "prev_t",
                 "last_in_t")

    def __init__(self) -> None:
        self.ts = np.zeros(_INITIAL_EVENTS, dtype=np.int64)
        self.amount = np.zeros(_INITIAL_EVENTS, dtype=np.float64)
        self.is_in = np.zeros(_INITIAL_EVENTS, dtype=np.bool_)
        self.cum = np.zeros((_INITIAL_EVENTS + 1, N_SUMS), dtype=np.int64)
        self.sq_in = np.zeros(_INITIAL_EVENTS + 1, dtype=np.float64)
        self.sq_out = np.zeros(_INITIAL_EVENTS + 1, dtype=np.float64)
        self.n = 0
        self.head = 0
        self.fans = {(d, w): _CountedWindow(WINDOW_NS[w]) for d in ("in", "out") for w in ("7d", "30d")}
        self.seen_cps: set[str] = set()
        self.prev_t: int | None = None
        self.last_in_t = -1

    def __getstate__(self) -> dict[str, Any]:
        """Only the events still inside the window go into a snapshot, not the buffers' spare room."""
        h, n = self.head, self.n
        return {"ts": self.ts[h:n].copy(), "amount": self.amount[h:n].copy(), "is_in": self.is_in[h:n].copy(),
                "cum": self.cum[h:n + 1].copy(), "sq_in": self.sq_in[h:n + 1].copy(), "sq_out": self.sq_out[h:n + 1].copy(),
                "fans": self.fans, "seen_cps": self.seen_cps, "prev_t": self.prev_t, "last_in_t": self.last_in_t}

    def __setstate__(self, state: dict[str, Any]) -> None:
        kept = len(state["ts"])
        size = max(_INITIAL_EVENTS, 2 * kept)
        self.ts, self.amount, self.is_in = (_resized(state["ts"], size), _resized(state["amount"], size),
                                            _resized(state["is_in"], size))
        self.cum, self.sq_in, self.sq_out = (_resized(state["cum"], size + 1), _resized(state["sq_in"], size + 1),
                                             _resized(state["sq_out"], size + 1))
        self.n, self.head = kept, 0
        self.fans, self.seen_cps = state["fans"], state["seen_cps"]
        self.prev_t, self.last_in_t = state["prev_t"], state["last_in_t"]

    def reseat(self) -> None:
        """Keep only the events inside the window, in buffers of twice their number (as a restore does)."""
        self.__setstate__(self.__getstate__())

    def step(self, t: int, x: float, incoming: bool, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Write the event at ``t`` (amount ``x``, adding ``values`` to the window sums) as event ``n``; return
        its window sums, sums of squares and maxima (:func:`_customer_step`).

        The caller counts the event (``n += 1``) once its feature row is made.
        """
        self.make_room()
        sums, sqs, mx, self.head = _customer_step(self.ts, self.amount, self.is_in, self.cum, self.sq_in, self.sq_out,
                                                  self.n, self.head, t, x, incoming, values, _VELOCITY_NS, _SUM_WINDOW)
        return sums, sqs, mx

    def fan_counts(self, t: int, is_in: bool, cp: str | None) -> list[int]:
        """Count the counterparty ``cp`` into the fan windows; return fan-in/out 7d, then fan-in/out 30d."""
        fans = self.fans
        key_in, key_out = (cp, None) if is_in else (None, cp)
        return [fans[("in", "7d")].add_and_count(t, key_in), fans[("out", "7d")].add_and_count(t, key_out),
                fans[("in", "30d")].add_and_count(t, key_in), fans[("out", "30d")].add_and_count(t, key_out)]

    def make_room(self) -> None:
        """Room for one more event. When the buffers are full, the expired events are dropped if they
        are at least a quarter of them, else the buffers double; and whenever the events inside the
        window fill under an eighth of the buffers, the expired ones are dropped and the buffers halve
        (as often as that stays true).

        So a customer's buffers have room for 4/3 to 8 times the events inside its window: memory
        follows the window, not the history; it grows only where a window grows, and a burst's room
        comes back once the burst has left the window.
        """
        n, h, size = self.n, self.head, len(self.ts)
        kept = n - h
        oversized = h > 0 and size > _INITIAL_EVENTS and kept * 8 < size
        if n < size and not oversized:
            return
        if not oversized and h * 4 < size:
            self._resize(2 * size)
            return
        while size > _INITIAL_EVENTS and kept * 8 < size:
            size //= 2
        if size == len(self.ts):
            self.ts[:kept] = self.ts[h:n]
            self.amount[:kept] = self.amount[h:n]
            self.is_in[:kept] = self.is_in[h:n]
            self.cum[:kept + 1] = self.cum[h:n + 1]  # row h is the total before the oldest kept event
            self.sq_in[:kept + 1] = self.sq_in[h:n + 1]
            self.sq_out[:kept + 1] = self.sq_out[h:n + 1]
        else:
            self.ts, self.amount, self.is_in = (_resized(self.ts[h:n], size), _resized(self.amount[h:n], size),
                                                _resized(self.is_in[h:n], size))
            self.cum, self.sq_in, self.sq_out = (_resized(self.cum[h:n + 1], size + 1),
                                                 _resized(self.sq_in[h:n + 1], size + 1),
                                                 _resized(self.sq_out[h:n + 1], size + 1))
        self.n, self.head = kept, 0

    def _resize(self, size: int) -> None:
        self.ts, self.amount, self.is_in = (_resized(self.ts, size), _resized(self.amount, size),
                                            _resized(self.is_in, size))
        self.cum, self.sq_in, self.sq_out = (_resized(self.cum, size + 1), _resized(self.sq_in, size + 1),
                                             _resized(self.sq_out, size + 1))


def _resized(arr: np.ndarray, rows: int) -> np.ndarray:
    """``arr`` in a buffer of ``rows`` rows, the spare ones zeroed and touched now.

    ``np.zeros`` would leave the spare rows as untouched pages that become resident only as events
    fill them: the process's RSS would then creep up for a window's worth of transactions after
    every start, which looks like a leak. Touched now, the RSS is what the state holds from the start.
    """
    out = np.empty((rows,) + arr.shape[1:], dtype=arr.dtype)
    out[: len(arr)] = arr
    out[len(arr):] = 0
    return out


@njit(cache=True)
def _customer_step(ts: np.ndarray, amount: np.ndarray, is_in: np.ndarray, cum: np.ndarray, sq_in: np.ndarray,
                   sq_out: np.ndarray, n: int, head: int, t: int, x: float, incoming: bool, values: np.ndarray,
                   windows: np.ndarray, sum_window: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover - compiled
    """Append one event (time ``t``, amount ``x``, the window-sum ``values`` it adds) to a customer's
    buffers as event ``n``; return its window sums (1, sums), sums of squares and maxima (1, 2 x windows:
    incoming then outgoing) and the new ``head`` (first event inside the longest window).

    Uses nothing but its arguments, so its compiled cache cannot go stale when other modules change.
    """
    k = values.shape[0]
    n_windows = windows.shape[0]
    ts[n] = t
    amount[n] = x
    is_in[n] = incoming
    for c in range(k):
        cum[n + 1, c] = cum[n, c] + values[c]
    sq = x * x  # added in the same order as the offline running sums: the same float
    sq_in[n + 1] = sq_in[n] + (sq if incoming else 0.0)
    sq_out[n + 1] = sq_out[n] + (0.0 if incoming else sq)

    h = head
    while ts[h] <= t - windows[n_windows - 1]:  # the newest event is never expired
        h += 1
    starts = np.empty(n_windows, dtype=np.int64)
    for w in range(n_windows):
        starts[w] = h + np.searchsorted(ts[h:n + 1], t - windows[w], side="right")
    sums = np.empty((1, k), dtype=np.int64)
    for c in range(k):
        sums[0, c] = cum[n + 1, c] - cum[starts[sum_window[c]], c]
    sqs = np.empty((1, 2 * n_windows), dtype=np.float64)
    mx = np.empty((1, 2 * n_windows), dtype=np.float64)
    for w in range(n_windows):
        sqs[0, w] = sq_in[n + 1] - sq_in[starts[w]]
        sqs[0, n_windows + w] = sq_out[n + 1] - sq_out[starts[w]]
    # windows are nested and end at t: one backward scan gives every window's maximum (0 when none;
    # amounts are > 0)
    m_in = 0.0
    m_out = 0.0
    j = n
    for w in range(n_windows):
        while j >= starts[w]:
            if is_in[j]:
                m_in = max(m_in, amount[j])
            else:
                m_out = max(m_out, amount[j])
            j -= 1
        mx[0, w] = m_in
        mx[0, n_windows + w] = m_out
    return sums, sqs, mx, h


# Snapshots pickle these classes by module and name: keep naming them where snapshots written before this
# module existed name them (amlscore.features.online re-exports both), so a snapshot loads in either version.
_CountedWindow.__module__ = _CustomerState.__module__ = "amlscore.features.online"
