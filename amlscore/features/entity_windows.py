"""The online path's windows of shared identifiers: per IP address, device and operator, the customers
seen with it over each of its windows (the ``*_customers`` distinct counts).

:class:`EntityWindows` counts a transaction's customer into the windows of its identifiers, renumbers
customers when the customers table changes, and forgets the windows of identifiers gone idle.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from amlscore.features.customer_window import MAX_WINDOW_NS, WINDOW_NS, _CountedWindow

# (transaction field, feature stem, windows), in DISTINCT_FEATURES order after the fan counts
ENTITY_WINDOWS = (("ip_address", "ip_customers", ("24h", "7d")), ("device_id", "device_customers", ("24h", "7d")),
                  ("operator_id", "operator_customers", ("30d",)))


class EntityWindows:
    """Per (field, window), each identifier value's window of customers (snapshots keep :attr:`tables`)."""

    __slots__ = ("tables",)

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], dict[str, _CountedWindow]] = {
            (field, w): {} for field, _, windows in ENTITY_WINDOWS for w in windows
        }

    def count(self, record: Mapping[str, Any], cust: int, t: int, counts: list[int]) -> list[int]:
        """Count customer ``cust`` into the windows of the transaction's identifiers; append their distinct
        customers to ``counts`` (0 for a field the transaction lacks), in :data:`ENTITY_WINDOWS` order."""
        for field, _, windows in ENTITY_WINDOWS:
            value = record.get(field) or None
            for w in windows:
                if value is None:
                    counts.append(0)
                    continue
                table = self.tables[(field, w)]
                win = table.get(value)
                if win is None:
                    win = table[value] = _CountedWindow(WINDOW_NS[w])
                counts.append(win.add_and_count(t, cust))
        return counts

    def keys(self) -> int:
        """Identifier windows held, over every table."""
        return sum(len(table) for table in self.tables.values())

    def remap(self, cmap: np.ndarray) -> None:
        """Renumber the customers in every window: ``cmap[old code]`` is the new code."""
        for table in self.tables.values():
            for win in table.values():
                win.events = deque((t, int(cmap[k])) for t, k in win.events)
                win.counts = {int(cmap[k]): n for k, n in win.counts.items()}

    def forget_idle(self, latest: Callable[[], int], chunk: int) -> Iterator[None]:
        """Forget the windows idle for longer than their window plus the longest window before the newest
        time (``latest()``, read for each key: it moves on between slices), yielding after every ``chunk``
        keys."""
        seen = 0
        for (_, w), table in self.tables.items():
            for key in list(table):  # the keys now: the table changes between slices
                win = table.get(key)
                if win is not None and (not win.events or win.events[-1][0] <= latest() - WINDOW_NS[w] - MAX_WINDOW_NS):
                    del table[key]
                seen += 1
                if seen % chunk == 0:
                    yield
