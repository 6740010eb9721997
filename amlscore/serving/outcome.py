"""What a scoring call gives back before it may answer: the recorded decision and the commits it waits for."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from amlscore.core.audit import AuditRecord

__all__ = ["Outcome", "wait_all"]


@dataclass(frozen=True)
class Outcome:
    """A decision as recorded, and whether this call was a replay of it.

    ``waits`` are the audit-log commits the answer depends on (the decision's own, and for a replay
    the note of the replay and, when the original decision is still being committed, that commit):
    nothing may be sent before they are done (:meth:`wait`, :meth:`wait_async`).
    """

    record: AuditRecord
    replayed: bool
    waits: tuple[Future, ...] = ()

    def wait(self) -> None:
        """Block until the record (and a replay's note) is durable; raises what the commit raised."""
        for f in self.waits:
            f.result()

    async def wait_async(self) -> None:
        """:meth:`wait` for the event loop: other requests are served meanwhile."""
        for f in self.waits:
            if not f.done():
                await asyncio.wrap_future(f)
            f.result()


def wait_all(outcomes: Sequence[Any]) -> list[Future]:
    """The distinct commits a list of outcomes (and errors, which have none) waits for."""
    seen: dict[int, Future] = {}
    for o in outcomes:
        for f in getattr(o, "waits", ()):
            seen.setdefault(id(f), f)
    return list(seen.values())
