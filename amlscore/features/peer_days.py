"""The online path's peer-group state: each group's day totals, and the counts cached from them.

:class:`PeerGroupDays` keeps, per peer group, the cash (fen), transaction count, outgoing fen and
outgoing fen to individuals of each day still inside the lookback, the group's totals over the lookback
before a day (cached per group for the day), and per customer the peer-group size and the other
customers sharing its agent, phone and emergency phone (cached for the days they hold for).
"""

from __future__ import annotations

from amlscore.features.registry import CustomerRegistry


class PeerGroupDays:
    """Day totals per peer group (the state; snapshots keep :attr:`days`) and the caches derived from them."""

    __slots__ = ("lookback", "days", "static", "cache")

    def __init__(self, lookback_days: int) -> None:
        self.lookback = lookback_days
        # peer group -> day -> [cash fen, transactions, outgoing fen, outgoing fen to individuals]
        self.days: dict[int, dict[int, list[int]]] = {}
        # Derived caches, rebuilt on demand (not in snapshots), each bounded by customers or peer groups:
        # customer -> (first day, day after the last, (peer size, agent/phone/emergency others)).
        self.static: dict[int, tuple[int, int, tuple[int, int, int, int]]] = {}
        # peer group -> (day, its cash in fen and transaction count over the lookback days before it).
        # (cash, transactions, outgoing fen, outgoing fen to individuals) per group, over the lookback
        self.cache: dict[int, tuple[int, tuple[int, int, int, int]]] = {}

    def static_counts(self, registry: CustomerRegistry, cust: int, day: int) -> tuple[int, int, int, int]:
        """Peer-group size and other customers sharing the agent, phone and emergency phone.

        They change only when a member of the group is onboarded, so each customer keeps its values
        with the days they hold for: one entry per customer, whatever the history's length.
        """
        found = self.static.get(cust)
        if found is not None and found[0] <= day < found[1]:
            return found[2]
        values, until = registry.static_counts(cust, day)
        self.static[cust] = (day, until, values)
        return values

    def before(self, group: int, day: int) -> tuple[int, int, int, int]:
        """The peer group's cash (fen), transaction count, outgoing fen and outgoing fen to
        individuals over the lookback days before ``day``; cached per group for the day, as complete
        days do not change."""
        cached = self.cache.get(group)
        if cached is not None and cached[0] == day:
            return cached[1]
        totals = self._totals(group, day)
        self.cache[group] = (day, totals)
        return totals

    def count(self, group: int, day: int, cash_fen: int, out_fen: int, indiv_fen: int) -> None:
        """Add a transaction to its peer group's day."""
        bucket = self.days.setdefault(group, {}).setdefault(day, [0, 0, 0, 0])
        bucket[0] += cash_fen
        bucket[1] += 1
        bucket[2] += out_fen
        bucket[3] += indiv_fen
        cached = self.cache.get(group)
        if cached is not None and cached[0] - self.lookback <= day < cached[0]:
            del self.cache[group]  # a transaction of an earlier day changed what the cache covers

    def _totals(self, group: int, day: int) -> tuple[int, int, int, int]:
        days = self.days.get(group)
        if not days:
            return 0, 0, 0, 0
        cash = cnt = out = indiv = 0
        for d in range(day - self.lookback, day):
            b = days.get(d)
            if b is not None:
                cash += b[0]
                cnt += b[1]
                out += b[2]
                indiv += b[3]
        for old in [d for d in days if d < day - self.lookback - 1]:
            del days[old]  # keep only the days a later transaction can still need
        return cash, cnt, out, indiv

    def remap(self, old_groups: list[str], new_groups: list[str]) -> None:
        """Renumber the days from the groups of ``old_groups`` to those of ``new_groups`` (groups gone are
        dropped) and empty the caches (the customers or their groups changed)."""
        group_of = {name: i for i, name in enumerate(new_groups)}
        self.days = {group_of[old_groups[g]]: days for g, days in self.days.items() if old_groups[g] in group_of}
        self.static.clear()
        self.cache.clear()
