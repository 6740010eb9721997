"""The recent transactions' feature values that a consumer of the online state asks it to keep.

The service's customer risk ratings read, per customer, a few feature columns of its transactions over
a lookback window (:class:`amlscore.serving.ratings.BehaviourLog`). Over the embedded store a restart
reads them back from the store, which keeps every transaction; the shared store (Valkey/Redis) trims
its log and its feature rows (:mod:`amlscore.features.redis_store`), so the state itself keeps them:
every transaction it counts (its own, the other workers', a replay) adds its values here, and the
state's snapshot carries them. A restart then has them from the snapshot plus the log after it.

The features layer knows nothing of ratings: the caller names the columns and the window
(:class:`RecentRowsSpec`), and gets back ``(customer_id, time, counterparty_country, values)``.
Memory follows the window: rows older than ``keep_ns`` before the latest transaction are dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from amlscore.features.catalogue import FEATURE_NAMES

__all__ = ["RecentRowsSpec", "RecentRows"]

_FEATURE_INDEX = {n: i for i, n in enumerate(FEATURE_NAMES)}
_PRUNE_EVERY = 50_000  # adds between passes over every customer (those that stopped transacting)


@dataclass(frozen=True)
class RecentRowsSpec:
    """Which feature columns to keep, and for how long (ns of transaction time before the latest one)."""

    columns: tuple[str, ...]
    keep_ns: int

    def __post_init__(self) -> None:
        unknown = [c for c in self.columns if c not in _FEATURE_INDEX]
        if unknown:
            raise ValueError(f"recent rows: unknown feature column(s) {', '.join(unknown)}")
        if self.keep_ns <= 0:
            raise ValueError(f"recent rows: keep_ns must be positive, got {self.keep_ns}")


class RecentRows:
    """Per customer, ``(t_ns, counterparty_country, values of spec.columns)`` of its recent transactions."""

    def __init__(self, spec: RecentRowsSpec) -> None:
        self.spec = spec
        self._idx = np.array([_FEATURE_INDEX[c] for c in spec.columns], dtype=np.int64)
        self._rows: dict[str, deque[tuple[int, str | None, np.ndarray]]] = {}
        self.latest_ns: int | None = None
        self._adds = 0

    def __len__(self) -> int:
        return sum(len(d) for d in self._rows.values())

    def add(self, record: Mapping[str, Any], t_ns: int, row: np.ndarray) -> None:
        """Keep one counted transaction's values (``row`` in :data:`FEATURE_NAMES` order)."""
        cid = str(record["customer_id"])
        rows = self._rows.get(cid)
        if rows is None:
            rows = self._rows[cid] = deque()
        cp = record.get("counterparty_country")
        rows.append((int(t_ns), None if cp is None else str(cp), row[self._idx].copy()))
        if self.latest_ns is None or t_ns > self.latest_ns:
            self.latest_ns = int(t_ns)
        limit = self.latest_ns - self.spec.keep_ns
        while rows and rows[0][0] < limit:
            rows.popleft()
        self._adds += 1
        if self._adds % _PRUNE_EVERY == 0:
            self.prune()

    def prune(self) -> None:
        """Drop every row older than the window, customers that stopped transacting included."""
        if self.latest_ns is None:
            return
        limit = self.latest_ns - self.spec.keep_ns
        for cid in list(self._rows):
            rows = self._rows[cid]
            while rows and rows[0][0] < limit:
                rows.popleft()
            if not rows:
                del self._rows[cid]

    def customers(self) -> list[str]:
        """The customers with rows kept."""
        return list(self._rows)

    def rows_of(self, customer_id: str) -> Sequence[tuple[int, str | None, np.ndarray]]:
        """One customer's kept rows ``(t_ns, counterparty_country, values)``, oldest first (empty when none)."""
        return self._rows.get(customer_id, ())

    def events(self) -> Iterator[tuple[str, int, str | None, np.ndarray]]:
        """``(customer_id, t_ns, counterparty_country, values)`` of the rows inside the window, per customer in time order."""
        limit = None if self.latest_ns is None else self.latest_ns - self.spec.keep_ns
        for cid, rows in self._rows.items():
            for t, cp, values in rows:
                if limit is None or t >= limit:
                    yield cid, t, cp, values

    def full_row(self, values: np.ndarray) -> np.ndarray:
        """A row in :data:`FEATURE_NAMES` order holding ``values`` at the kept columns and NaN elsewhere."""
        out = np.full(len(FEATURE_NAMES), np.nan)
        out[self._idx] = values
        return out
