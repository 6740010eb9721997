"""Compiled window kernels of the offline path.

Every kernel walks rows sorted by (entity, time order) once, with ``seg_first[i]`` the index of the
first row of row ``i``'s entity. Each is a streaming algorithm over one entity's rows, so the same
kernel runs per partition on a distributed engine (e.g. Spark's ``groupBy().applyInPandas``): no
state crosses entities and nothing is global. The online path (:mod:`amlscore.features.online`) keeps the
same per-entity state between calls; the parity tests hold the two to the same numbers.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def segment_firsts(seg: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Index of the first row of each row's segment, for rows sorted by segment."""
    n = len(seg)
    out = np.empty(n, dtype=np.int64)
    first = 0
    for i in range(n):
        if i > 0 and seg[i] != seg[i - 1]:
            first = i
        out[i] = first
    return out


@njit(cache=True)
def window_starts(t: np.ndarray, seg_first: np.ndarray, window: np.int64) -> np.ndarray:  # pragma: no cover
    """First row of the window (t_i - window, t_i] within each row's segment."""
    n = len(t)
    out = np.empty(n, dtype=np.int64)
    j = 0
    for i in range(n):
        if seg_first[i] > j:
            j = seg_first[i]
        limit = t[i] - window
        while t[j] <= limit:
            j += 1
        out[i] = j
    return out


@njit(cache=True)
def window_max(t: np.ndarray, seg_first: np.ndarray, vals: np.ndarray, mask: np.ndarray,
               window: np.int64) -> np.ndarray:  # pragma: no cover
    """Maximum of ``vals`` over masked rows in (t_i - window, t_i]; 0 when there is none."""
    n = len(t)
    out = np.zeros(n, dtype=np.float64)
    dq = np.empty(n, dtype=np.int64)
    head = 0
    tail = 0
    for i in range(n):
        if seg_first[i] == i:
            head = 0
            tail = 0
        if mask[i]:
            while tail > head and vals[dq[tail - 1]] <= vals[i]:
                tail -= 1
            dq[tail] = i
            tail += 1
        limit = t[i] - window
        while tail > head and t[dq[head]] <= limit:
            head += 1
        if tail > head:
            out[i] = vals[dq[head]]
    return out


@njit(cache=True)
def window_distinct(t: np.ndarray, seg_first: np.ndarray, keys: np.ndarray, n_keys: np.int64,
                    window: np.int64) -> np.ndarray:  # pragma: no cover
    """Distinct keys (>= 0) among the segment's rows in (t_i - window, t_i]; key -1 is not counted."""
    n = len(t)
    out = np.zeros(n, dtype=np.int64)
    counts = np.zeros(max(n_keys, 1), dtype=np.int64)
    distinct = 0
    left = 0
    for i in range(n):
        if seg_first[i] == i:
            for j in range(left, i):
                k = keys[j]
                if k >= 0:
                    counts[k] -= 1
            distinct = 0
            left = i
        k = keys[i]
        if k >= 0:
            counts[k] += 1
            if counts[k] == 1:
                distinct += 1
        limit = t[i] - window
        while t[left] <= limit:
            k = keys[left]
            if k >= 0:
                counts[k] -= 1
                if counts[k] == 0:
                    distinct -= 1
            left += 1
        out[i] = distinct
    return out


@njit(cache=True)
def previous_times(t: np.ndarray, seg_first: np.ndarray, is_in: np.ndarray, before_first: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover
    """Per row: time of the segment's previous row (``before_first`` for its first row) and of the
    latest earlier incoming row (-1 when none)."""
    n = len(t)
    prev = np.empty(n, dtype=np.int64)
    last_in = np.empty(n, dtype=np.int64)
    latest_in = -1
    for i in range(n):
        if seg_first[i] == i:
            prev[i] = before_first[i]
            latest_in = -1
        else:
            prev[i] = t[i - 1]
        last_in[i] = latest_in
        if is_in[i]:
            latest_in = t[i]
    return prev, last_in


@njit(cache=True)
def segment_window_sums(values: np.ndarray, starts: np.ndarray, window_cols: np.ndarray, window_offsets: np.ndarray,
                        seg_first: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Integer window sums: ``out[i, c]`` is the sum of ``values[j, c]`` over rows ``starts[w, i] <= j <= i``
    of row ``i``'s segment, for the columns ``c`` of window ``w``
    (``window_cols[window_offsets[w]:window_offsets[w + 1]]``).

    One sliding pass: each row is added once and subtracted once when it leaves its window, so no
    (n, columns) cumulative table is needed. Integers, so the order of additions cannot change a value.
    """
    n, k = values.shape
    n_windows = starts.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    running = np.zeros(k, dtype=np.int64)
    left = np.zeros(n_windows, dtype=np.int64)
    for i in range(n):
        if seg_first[i] == i:
            running[:] = 0
            left[:] = i
        for c in range(k):
            running[c] += values[i, c]
        for w in range(n_windows):
            s = starts[w, i]
            while left[w] < s:
                j = left[w]
                for q in range(window_offsets[w], window_offsets[w + 1]):
                    c = window_cols[q]
                    running[c] -= values[j, c]
                left[w] += 1
        for c in range(k):
            out[i, c] = running[c]
    return out


@njit(cache=True)
def segment_window_sumsq_max(t: np.ndarray, seg_first: np.ndarray, amount: np.ndarray, mask: np.ndarray,
                             starts: np.ndarray, windows: np.ndarray
                             ) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per window ``w``: the sum of amount² over masked rows in the window and their maximum (0 if none).

    The sum is a running sum restarting at each segment, minus its value before the window, added in
    row order exactly as the online state adds its cumulative sums (same floating-point result).
    """
    n = len(t)
    n_windows = len(windows)
    sq = np.empty((n, n_windows), dtype=np.float64)
    mx = np.empty((n, n_windows), dtype=np.float64)
    cum = np.empty(n, dtype=np.float64)
    for i in range(n):
        x = amount[i] * amount[i] if mask[i] else 0.0
        cum[i] = (0.0 + x) if seg_first[i] == i else cum[i - 1] + x
    for w in range(n_windows):
        for i in range(n):
            s = starts[w, i]
            sq[i, w] = cum[i] - (cum[s - 1] if s > seg_first[i] else 0.0)
        mx[:, w] = window_max(t, seg_first, amount, mask, windows[w])
    return sq, mx

