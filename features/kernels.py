"""Compiled window kernels of the offline path.

Every kernel walks rows sorted by (entity, time order) once, with ``seg_first[i]`` the index of the
first row of row ``i``'s entity. Each is a streaming algorithm over one entity's rows, so the same
kernel runs per partition on a distributed engine (e.g. Spark's ``groupBy().applyInPandas``): no
state crosses entities and nothing is global. The online path (:mod:`features.online`) keeps the
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
def segment_cumsum(x: np.ndarray, seg_first: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Running float sum that restarts at each segment, added in row order (the online order too)."""
    n = len(x)
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        if seg_first[i] == i:
            out[i] = 0.0 + x[i]
        else:
            out[i] = out[i - 1] + x[i]
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
