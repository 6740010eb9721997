"""The online path's components of shared identifiers: identifier numbers, the components' arrays, and one
transaction's :data:`~amlscore.features.idcomp.ID_COMPONENT_FEATURES`.

:class:`OnlineIdComponents` numbers the shared identifiers (a field and its value) as first seen,
reusing the numbers of identifiers idle beyond the window, keeps the customers table's links
(:class:`~amlscore.features.idcomp.KycLinks`) and runs the compiled step of
:mod:`amlscore.features.idcomp` for each transaction.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from amlscore.features.idcomp import (
    F_LAST,
    N_IDCOMP,
    IdCompArrays,
    KycLinks,
    idcomp_step,
    members_room,
    transaction_fields,
    window_ns,
)
from amlscore.features.params import IdComponentParams
from amlscore.features.registry import CustomerRegistry

_SPARE_IDS = 1024  # room for shared identifiers at the start (doubling when full)


class OnlineIdComponents:
    """The components' state (snapshots keep :meth:`blob`) and the step that reads and extends it."""

    __slots__ = ("params", "fields", "window", "growth", "kyc", "arrays", "identifiers", "identifier_keys", "free",
                 "next_identifier", "_ids", "_members", "_row")

    def __init__(self, params: IdComponentParams, registry: CustomerRegistry, n_customers: int) -> None:
        self.params = params
        self.fields = transaction_fields(params)
        self.window, self.growth = window_ns(params)
        self.kyc = KycLinks.from_registry(registry, params)
        self.arrays = IdCompArrays.empty(n_customers, _SPARE_IDS, self.kyc.n_keys, params)
        # identifiers numbered as first seen, (field, value) -> number; numbers of identifiers idle beyond
        # the window are reused
        self.identifiers: dict[tuple[str, str], int] = {}
        self.identifier_keys: dict[int, tuple[str, str]] = {}
        self.free: list[int] = []
        self.next_identifier = 0
        # scratch of the step (not state): the transaction's identifier numbers, the search's members, the row
        self._ids = np.full(max(len(self.fields), 1), -1, dtype=np.int64)
        self._members = np.empty(members_room(params), dtype=np.int64)
        self._row = np.empty(N_IDCOMP, dtype=np.float64)

    def blob(self) -> dict[str, Any]:
        """What a snapshot keeps: the identifiers in use, not the arrays' spare room (the search's marks are
        scratch)."""
        return {"cust_ring": self.arrays.cust_ring, "id_ring": self.arrays.id_ring[: self.next_identifier],
                "identifiers": self.identifiers, "free": self.free, "next": self.next_identifier}

    def restore(self, saved: dict[str, Any]) -> None:
        """The components' state from a snapshot's :meth:`blob` (under the snapshot's customer codes;
        :meth:`remap` follows)."""
        n_old = len(saved["cust_ring"])
        arrays = IdCompArrays.empty(n_old, saved["next"] + _SPARE_IDS, self.kyc.n_keys, self.params)
        arrays.cust_ring = saved["cust_ring"]
        arrays.id_ring[: saved["next"]] = saved["id_ring"]
        self.arrays = arrays
        self.identifiers, self.free = saved["identifiers"], saved["free"]
        self.identifier_keys = {v: k for k, v in self.identifiers.items()}
        self.next_identifier = saved["next"]

    def adopt_registry(self, registry: CustomerRegistry) -> None:
        """The customers table's links of a new registry (phones and agents may change)."""
        self.kyc = KycLinks.from_registry(registry, self.params)
        self.arrays.kyc_mark = np.zeros(max(self.kyc.n_keys, 1), dtype=np.int64)

    def remap(self, cmap: np.ndarray, new_n: int) -> None:
        """Renumber the customers: ``cmap[old code]`` is the new code, of ``new_n`` customers."""
        self.arrays = self.arrays.remap_customers(cmap, new_n, self.kyc.n_keys)

    def identifier(self, field: str, value: str) -> int:
        """The number of a shared identifier (a field's value), given when first seen."""
        key = (field, value)
        number = self.identifiers.get(key)
        if number is None:
            if self.free:
                number = self.free.pop()
                self.arrays.clear_identifier(number)
            else:
                number = self.next_identifier
                self.next_identifier += 1
                self.arrays.grow_identifiers(self.next_identifier)
            self.identifiers[key] = number
            self.identifier_keys[number] = key
        return number

    def features(self, record: Mapping[str, Any], cust: int, t: int, report_ns: np.ndarray) -> np.ndarray:
        """The transaction's :data:`ID_COMPONENT_FEATURES`; its links join the components' state.

        The row is a buffer reused by the next call.
        """
        ids = self._ids
        for j, field in enumerate(self.fields):
            value = record.get(field)
            ids[j] = -1 if value is None or value == "" else self.identifier(field, str(value))
        a, kyc, p = self.arrays, self.kyc, self.params
        idcomp_step(a.cust_ring, a.id_ring, a.cust_mark, a.id_mark, a.kyc_mark, a.stamp, kyc.key, kyc.since, kyc.ptr,
                    kyc.member, kyc.member_since, report_ns, cust, ids, t, self.window,
                    self.growth, p.hub_customers, p.max_size, self._members, self._row)
        return self._row

    def forget_idle(self, lo: int, hi: int, idle_before: int) -> None:
        """Forget the identifiers numbered ``lo .. hi - 1`` (those in use) last seen at or before
        ``idle_before``: every link to them is out of any window, so their numbers can be reused
        (idcomp.py: a link out of the window is a free slot whatever it names)."""
        numbers = np.arange(lo, min(self.next_identifier, hi))
        last = self.arrays.id_ring[numbers, :, F_LAST].max(axis=1)
        for number in numbers[last <= idle_before].tolist():
            key = self.identifier_keys.pop(number, None)
            if key is not None:
                del self.identifiers[key]
                self.free.append(number)
