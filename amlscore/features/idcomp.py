"""Components of shared identifiers: customers linked by the IPs, devices, operators, phones and agents
they share, one compiled step shared by the offline and online paths.

A bipartite graph joins customers to identifiers. Links from transactions (``ip_address``,
``device_id``, ``operator_id``) **expire**: a link counts at time ``t`` only while the customer was
seen with the identifier inside the window ``(t - w, t]`` (by default 30 days), so a public IP or a
shared Wi-Fi does not join its users for ever. Links from the customers table (own ``phone``, the
``emergency_contact_phone``, ``agent_id``) hold from the customer's onboarding date on, as the
``*_other_customers`` counts treat them (:class:`~amlscore.features.registry.CustomerRegistry`); an
emergency phone links the customers whose contact it is to the customers whose own phone it is. The
component of a customer is what the linked customers reach in turn: in a ring where A and B share a
device, B and C an IP and C and D an emergency phone, the four are one component, which no count of
one identifier shows. This is connected components over shared-attribute links as entity resolution
groups records (e.g. Christen, *Data Matching*, 2012, ch. 6), kept per point in time.

Union-find would give the components in near-constant time but cannot forget a link, and links here
expire; so each transaction runs a **bounded search** instead, over bounded state, as IBM's Graph
Feature Preprocessor bounds its windowed graph features (Blanuša et al., arXiv 2402.08593):

* each customer keeps its ``links_per_customer`` most recently seen identifiers, each identifier its
  ``hub_customers + 1`` most recently seen customers, with the first and last time of the link (a
  link unseen for a whole window starts afresh); a slot whose link has left the window is free;
* an identifier with more than ``hub_customers`` customers in the window (all its slots live), or a
  table identifier with more members than that as of ``t``, is a **hub** and is not followed, so a
  NAT address or an agent who opened accounts for half the town does not merge the bank (an agent
  ring's 4-9 accounts stay below the default cap of 12);
* the search (breadth first from the customer) runs whole levels of customers at the same distance
  until it has found ``max_size`` customers: the size saturates there, and what it found does not
  depend on the order links sit in their slots (so a replay from a warm-up finds the same); the
  reported count and share are over every customer it found.

Features (at ``t``, after the transaction's own links are recorded, as the identifier counts count
their own row): the component's size (the customer included); its **growth**, members reachable now
only over links first seen within the last ``growth_days`` (customers table: onboarded within them),
i.e. the size minus the size over the links that already existed then (hubs judged as now, so the
growth is never negative); the other members with a suspicious report filed by ``t`` (as
:func:`amlscore.features.graph.report_times` dates reports) and their share of the other members
(NaN for a component of one).

Cost: about 5 µs of compiled work per row offline on the default data set (2.6 s for 520,559 rows),
about 13 µs on a bank where a third of the rows reach ``max_size`` (docs/generalisation.md).

:func:`idcomp_step` records one transaction's links and computes its features; the offline path runs
it over the whole history in time order (:func:`idcomp_pass`), the online path once per transaction
over the same arrays: the two agree exactly by construction when they see the transactions in the
same (time, ``txn_id``) order. The result does not depend on the identifiers' numbering (only on
equality), and a freed slot is chosen by position whatever it held, so the online path may hand a
forgotten identifier's number to a new one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from amlscore.features.params import TRANSACTION_IDENTIFIERS, IdComponentParams
from amlscore.features.registry import DAY_NS, CustomerRegistry

ID_COMPONENT_FEATURES = ("id_component_size", "id_component_growth", "id_component_reported",
                         "id_component_reported_share")
N_IDCOMP = len(ID_COMPONENT_FEATURES)
# ring fields: the other end, first and last time seen (UTC ns), and a tie-break that does not depend on
# how identifiers are numbered (the identifier's field in a customer's ring; the customer in an identifier's)
F_KEY, F_FIRST, F_LAST, F_TIE = 0, 1, 2, 3
EMPTY_T = np.iinfo(np.int64).min  # last time of an empty slot: before every window
ALWAYS = np.iinfo(np.int64).max  # a cut that admits every link
KYC_SLOTS = 3  # table identifiers per customer: agent, own phone, emergency contact


def transaction_fields(params: IdComponentParams) -> tuple[str, ...]:
    """The transaction columns whose values link customers, in :data:`TRANSACTION_IDENTIFIERS` order."""
    return tuple(f for f in TRANSACTION_IDENTIFIERS if f in params.identifiers)


def _empty_ring(nodes: int, slots: int) -> np.ndarray:
    ring = np.zeros((max(nodes, 1), slots, 4), dtype=np.int64)
    ring[:, :, F_LAST] = EMPTY_T
    ring[:, :, F_KEY] = -1
    return ring


@dataclass
class IdCompArrays:
    """The state: per customer its latest identifiers, per identifier its latest customers, as
    ``ring[node, slot] = (other end, first seen, last seen)``; and the search's scratch marks (not state:
    a result never depends on them)."""

    cust_ring: np.ndarray  # int64 (customers, links_per_customer, 4)
    id_ring: np.ndarray  # int64 (identifiers, hub_customers + 1, 4)
    cust_mark: np.ndarray  # int64 (customers,)
    id_mark: np.ndarray  # int64 (identifiers,)
    kyc_mark: np.ndarray  # int64 (table identifiers,)
    stamp: np.ndarray  # int64 (1,): the mark of the search in progress

    @classmethod
    def empty(cls, customers: int, identifiers: int, kyc_keys: int, params: IdComponentParams) -> IdCompArrays:
        return cls(cust_ring=_empty_ring(customers, params.links_per_customer),
                   id_ring=_empty_ring(identifiers, params.hub_customers + 1),
                   cust_mark=np.zeros(max(customers, 1), dtype=np.int64),
                   id_mark=np.zeros(max(identifiers, 1), dtype=np.int64),
                   kyc_mark=np.zeros(max(kyc_keys, 1), dtype=np.int64), stamp=np.zeros(1, dtype=np.int64))

    def grow_identifiers(self, identifiers: int) -> None:
        """Room for at least ``identifiers`` identifiers (doubling), the new ones empty."""
        have = self.id_ring.shape[0]
        if identifiers <= have:
            return
        size = have
        while size < identifiers:
            size *= 2
        ring = _empty_ring(size, self.id_ring.shape[1])
        ring[:have] = self.id_ring
        self.id_ring = ring
        mark = np.zeros(size, dtype=np.int64)
        mark[:have] = self.id_mark
        self.id_mark = mark

    def clear_identifier(self, identifier: int) -> None:
        """Empty an identifier's slots (its number is about to be reused)."""
        self.id_ring[identifier] = _empty_ring(1, self.id_ring.shape[1])[0]

    def remap_customers(self, code_map: np.ndarray, customers: int, kyc_keys: int) -> IdCompArrays:
        """The same state under new customer codes (``code_map[old] = new``) and a new table-identifier count."""
        cust_ring = _empty_ring(customers, self.cust_ring.shape[1])
        cust_ring[code_map] = self.cust_ring[: len(code_map)]
        id_ring = self.id_ring.copy()
        live = id_ring[:, :, F_KEY] >= 0
        id_ring[:, :, F_KEY] = np.where(live, code_map[np.clip(id_ring[:, :, F_KEY], 0, len(code_map) - 1)], -1)
        id_ring[:, :, F_TIE] = np.where(live, id_ring[:, :, F_KEY], 0)
        return IdCompArrays(cust_ring=cust_ring, id_ring=id_ring, cust_mark=np.zeros(max(customers, 1), np.int64),
                            id_mark=np.zeros_like(self.id_mark), kyc_mark=np.zeros(max(kyc_keys, 1), np.int64),
                            stamp=np.zeros(1, dtype=np.int64))


@dataclass(frozen=True)
class KycLinks:
    """The customers table's links: each customer's table identifiers (``key``, -1 = none) from
    ``since`` (local midnight of its onboarding date, UTC ns), and per identifier its members sorted by
    that time (``member[ptr[k]:ptr[k + 1]]``, ``member_since`` alike)."""

    key: np.ndarray  # int64 (customers, KYC_SLOTS)
    since: np.ndarray  # int64 (customers,)
    ptr: np.ndarray  # int64 (keys + 1,)
    member: np.ndarray  # int64
    member_since: np.ndarray  # int64

    @property
    def n_keys(self) -> int:
        return len(self.ptr) - 1

    @classmethod
    def from_registry(cls, registry: CustomerRegistry, params: IdComponentParams) -> KycLinks:
        """The links the configured identifiers give: ``agent_id``; ``phone`` (customers with the same
        own phone); ``emergency_phone`` (a phone that is one customer's emergency contact and another's
        own phone or emergency contact, as ``emergency_phone_other_customers`` counts them; it includes
        the own phones)."""
        n = len(registry.onboard_day)
        key = np.full((max(n, 1), KYC_SLOTS), -1, dtype=np.int64)
        offset = 0
        if "agent_id" in params.identifiers:
            key[:n, 0] = registry.agent_key
            offset += len(registry.agent_index.key_start)
        if "emergency_phone" in params.identifiers:
            own, contact = registry.own_phone_emergency_key, registry.emergency_key
            key[:n, 1] = np.where(own >= 0, own + offset, -1)
            key[:n, 2] = np.where((contact >= 0) & (contact != own), contact + offset, -1)
            offset += len(registry.emergency_index.key_start)
        elif "phone" in params.identifiers:
            key[:n, 1] = np.where(registry.phone_key >= 0, registry.phone_key + offset, -1)
            offset += len(registry.phone_index.key_start)
        since = np.zeros(max(n, 1), dtype=np.int64)
        since[:n] = registry.onboard_day * DAY_NS - registry.utc_offset_ns
        cust = np.repeat(np.arange(key.shape[0], dtype=np.int64), KYC_SLOTS)
        flat = key.reshape(-1)
        has = flat >= 0
        cust, flat = cust[has], flat[has]
        order = np.lexsort((cust, since[cust], flat))  # by identifier, then membership time, then code
        ptr = np.searchsorted(flat[order], np.arange(offset + 1, dtype=np.int64), side="left").astype(np.int64)
        return cls(key=key, since=since, ptr=ptr, member=cust[order].astype(np.int64),
                   member_since=since[cust[order]].astype(np.int64))


@njit(cache=True, inline="always")
def _older(ring: np.ndarray, node: int, s: int, r: int) -> bool:  # pragma: no cover - compiled
    """Is slot ``s``'s link older than slot ``r``'s: last seen, then first seen, then the tie-break."""
    for f in (F_LAST, F_FIRST, F_TIE, F_KEY):
        if ring[node, s, f] != ring[node, r, f]:
            return ring[node, s, f] < ring[node, r, f]
    return False


@njit(cache=True)
def _link(ring: np.ndarray, node: int, other: int, tie: int, t: int, lo: int) -> None:  # pragma: no cover - compiled
    """Record that ``node`` was seen with ``other`` at ``t``: refresh the live link if there is one, else
    take the first slot that is empty or out of the window ``(lo, ...]``, else the least recently seen
    link's (ties broken by first sighting, then ``tie``, never by slot: the live links kept are the most
    recent ones whatever the history before the window)."""
    slots = ring.shape[1]
    free = -1
    oldest = -1
    for s in range(slots):
        last = ring[node, s, F_LAST]
        if last > lo:
            if ring[node, s, F_KEY] == other:
                if t > last:
                    ring[node, s, F_LAST] = t
                if t < ring[node, s, F_FIRST]:
                    ring[node, s, F_FIRST] = t
                return
            if oldest < 0 or _older(ring, node, s, oldest):
                oldest = s
        elif free < 0:
            free = s
    s = free if free >= 0 else oldest
    ring[node, s, F_KEY] = other
    ring[node, s, F_FIRST] = t
    ring[node, s, F_LAST] = t
    ring[node, s, F_TIE] = tie


@njit(cache=True)
def _live(ring: np.ndarray, node: int, lo: int) -> int:  # pragma: no cover - compiled
    """Slots of ``node`` whose link was seen after ``lo``."""
    n = 0
    for s in range(ring.shape[1]):
        if ring[node, s, F_LAST] > lo:
            n += 1
    return n


@njit(cache=True, inline="always")
def _visit(cust_mark: np.ndarray, stamp: int, y: int, members: np.ndarray, n: int) -> int:  # pragma: no cover
    if cust_mark[y] == stamp:
        return n
    cust_mark[y] = stamp
    members[n] = y
    return n + 1


@njit(cache=True)
def _search(cust_ring: np.ndarray, id_ring: np.ndarray, cust_mark: np.ndarray, id_mark: np.ndarray,
            kyc_mark: np.ndarray, stamp: int, kyc_key: np.ndarray, kyc_since: np.ndarray, kyc_ptr: np.ndarray,
            kyc_member: np.ndarray, kyc_member_since: np.ndarray, c: int, t: int, lo: int, cut: int, kyc_cut: int,
            hub: int, max_size: int, members: np.ndarray) -> int:  # pragma: no cover - compiled
    """Breadth first from customer ``c`` over the links live at ``t`` (last seen after ``lo``) first seen
    by ``cut``, and the table links of members since ``kyc_cut``; hubs (as of ``t``) are not followed.

    Whole levels (customers at the same distance) until at least ``max_size`` customers are found, so
    the customers found do not depend on the order links are stored in. Fills ``members`` (``c``
    first; room for :func:`members_room`) and returns how many.
    """
    members[0] = c
    cust_mark[c] = stamp
    n = 1
    head = 0
    level_end = 1
    id_slots = id_ring.shape[1]
    while head < n:
        if head == level_end:
            if n >= max_size:
                break
            level_end = n
        x = members[head]
        head += 1
        for s in range(cust_ring.shape[1]):
            if cust_ring[x, s, F_LAST] <= lo or cust_ring[x, s, F_FIRST] > cut:
                continue
            i = cust_ring[x, s, F_KEY]
            if id_mark[i] == stamp:
                continue
            id_mark[i] = stamp
            if _live(id_ring, i, lo) > hub:
                continue
            for q in range(id_slots):
                if id_ring[i, q, F_LAST] <= lo or id_ring[i, q, F_FIRST] > cut:
                    continue
                n = _visit(cust_mark, stamp, id_ring[i, q, F_KEY], members, n)
        if kyc_since[x] > kyc_cut:
            continue
        for j in range(kyc_key.shape[1]):
            k = kyc_key[x, j]
            if k < 0 or kyc_mark[k] == stamp:
                continue
            kyc_mark[k] = stamp
            a, b = kyc_ptr[k], kyc_ptr[k + 1]
            if np.searchsorted(kyc_member_since[a:b], t, side="right") > hub:
                continue
            end = a + np.searchsorted(kyc_member_since[a:b], kyc_cut, side="right")
            for q in range(a, end):
                n = _visit(cust_mark, stamp, kyc_member[q], members, n)
    return n


def members_room(params: IdComponentParams) -> int:
    """Room the search needs: a level is searched whole, and each customer of it adds at most its links'
    other customers (identifiers: ``hub_customers + 1`` slots each; table identifiers: ``hub_customers``)."""
    per_customer = params.links_per_customer * (params.hub_customers + 1) + KYC_SLOTS * params.hub_customers
    return params.max_size * (1 + per_customer)


@njit(cache=True)
def idcomp_step(cust_ring: np.ndarray, id_ring: np.ndarray, cust_mark: np.ndarray, id_mark: np.ndarray,
                kyc_mark: np.ndarray, stamp: np.ndarray, kyc_key: np.ndarray, kyc_since: np.ndarray,
                kyc_ptr: np.ndarray, kyc_member: np.ndarray, kyc_member_since: np.ndarray, report_ns: np.ndarray,
                c: int, ids: np.ndarray, t: int, window: int, growth: int, hub: int, max_size: int,
                members: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """Record customer ``c``'s links to the identifiers ``ids`` (-1 = none; position = the field) at ``t``,
    then its component's features into ``out`` (:data:`ID_COMPONENT_FEATURES` order). ``report_ns``: each
    customer's first reported instant; ``members``: scratch of :func:`members_room`."""
    lo = t - window
    for j in range(ids.shape[0]):
        i = ids[j]
        if i >= 0:
            _link(cust_ring, c, i, j, t, lo)
            _link(id_ring, i, c, c, t, lo)
    stamp[0] += 1
    n = _search(cust_ring, id_ring, cust_mark, id_mark, kyc_mark, stamp[0], kyc_key, kyc_since, kyc_ptr, kyc_member,
                kyc_member_since, c, t, lo, ALWAYS, t, hub, max_size, members)
    reported = 0
    for q in range(1, n):
        if report_ns[members[q]] <= t:
            reported += 1
    stamp[0] += 1
    before = t - growth
    n_old = _search(cust_ring, id_ring, cust_mark, id_mark, kyc_mark, stamp[0], kyc_key, kyc_since, kyc_ptr,
                    kyc_member, kyc_member_since, c, t, lo, before, before, hub, max_size, members)
    out[0] = min(n, max_size)
    out[1] = min(n, max_size) - min(n_old, max_size)
    out[2] = reported
    out[3] = reported / (n - 1) if n > 1 else np.nan


@njit(cache=True)
def idcomp_pass(cust_ring: np.ndarray, id_ring: np.ndarray, cust_mark: np.ndarray, id_mark: np.ndarray,
                kyc_mark: np.ndarray, stamp: np.ndarray, kyc_key: np.ndarray, kyc_since: np.ndarray,
                kyc_ptr: np.ndarray, kyc_member: np.ndarray, kyc_member_since: np.ndarray, report_ns: np.ndarray,
                cust: np.ndarray, ids: np.ndarray, t: np.ndarray, window: int, growth: int, hub: int, max_size: int,
                members_room: int) -> np.ndarray:  # pragma: no cover - compiled
    """:func:`idcomp_step` over rows in time order; the features (n, :data:`N_IDCOMP`)."""
    n = len(t)
    result = np.empty((n, N_IDCOMP), dtype=np.float64)
    members = np.empty(members_room, dtype=np.int64)
    row = np.empty(N_IDCOMP, dtype=np.float64)
    for r in range(n):
        idcomp_step(cust_ring, id_ring, cust_mark, id_mark, kyc_mark, stamp, kyc_key, kyc_since, kyc_ptr, kyc_member,
                    kyc_member_since, report_ns, cust[r], ids[r], t[r], window, growth, hub, max_size, members, row)
        result[r] = row
    return result


def window_ns(params: IdComponentParams) -> tuple[int, int]:
    """The window and the growth period in ns."""
    return params.window_days * DAY_NS, params.growth_days * DAY_NS


def id_component_columns(t_ns: np.ndarray, cust: np.ndarray, identifier_codes: list[np.ndarray],
                         registry: CustomerRegistry, report_ns: np.ndarray, params: IdComponentParams) -> np.ndarray:
    """:data:`ID_COMPONENT_FEATURES` (n, columns) of rows in time order: one pass over the whole table.

    ``identifier_codes``: per configured transaction identifier (:func:`transaction_fields`), each row's
    code of its value (-1 = none); codes of different fields are told apart here.
    """
    n = len(t_ns)
    ids = np.full((n, max(len(identifier_codes), 1)), -1, dtype=np.int64)
    offset = 0
    for j, codes in enumerate(identifier_codes):
        ids[:, j] = np.where(codes >= 0, codes + offset, -1)
        offset += int(codes.max()) + 1 if len(codes) and codes.max() >= 0 else 0
    kyc = KycLinks.from_registry(registry, params)
    arrays = IdCompArrays.empty(len(registry.onboard_day), offset, kyc.n_keys, params)
    window, growth = window_ns(params)
    return idcomp_pass(arrays.cust_ring, arrays.id_ring, arrays.cust_mark, arrays.id_mark, arrays.kyc_mark,
                       arrays.stamp, kyc.key, kyc.since, kyc.ptr, kyc.member, kyc.member_since, report_ns,
                       cust.astype(np.int64), ids, t_ns.astype(np.int64), window, growth, params.hub_customers,
                       params.max_size, members_room(params))
