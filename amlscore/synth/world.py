"""The world around the customers: terminals, e-banking sessions and operators.

:class:`World` bundles the population, the calendar and the bank rules with the physical
infrastructure (POS terminals and ATMs per province and abroad, mobile-carrier IP pools), and
:meth:`World.attach_identifiers` gives every row the identifiers its channel requires: an IP
address and device on online and mobile banking, a terminal on POS and ATM.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from amlscore.synth import geo
from amlscore.synth.clock import Clock
from amlscore.synth.config import BankRules, SynthConfig, stream
from amlscore.synth.ledger import CH, DIR, TxnBlock
from amlscore.synth.population import Population

POS_KIND, ATM_KIND = 0, 1
FOREIGN_POS_PER_COUNTRY = 40
FOREIGN_ATM_PER_COUNTRY = 8


@dataclass
class World:
    """Everything a behaviour needs to write transactions.

    Attributes
    ----------
    pop, clock, rules, config:
        The customers, the calendar, the bank rules and the run configuration.
    term_region, term_kind, term_serial:
        Per terminal: its region index, POS or ATM, and a serial number for its id.
    """

    pop: Population
    clock: Clock
    rules: BankRules
    config: SynthConfig
    term_region: np.ndarray = field(init=False)
    term_kind: np.ndarray = field(init=False)
    term_serial: np.ndarray = field(init=False)
    operator_keys: np.ndarray = field(init=False)
    agent_operators: int = field(init=False)
    _pos_start: np.ndarray = field(init=False)
    _pos_count: np.ndarray = field(init=False)
    _atm_start: np.ndarray = field(init=False)
    _atm_count: np.ndarray = field(init=False)
    _pool_size: np.ndarray = field(init=False)
    _pool_base: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        rng = stream(self.config.seed, "world")
        n_regions = len(geo.REGIONS)
        per_region = np.bincount(self.pop.home_region, minlength=n_regions)
        pos = np.where(np.arange(n_regions) < geo.N_PROVINCES, np.maximum(30, per_region * 3), FOREIGN_POS_PER_COUNTRY)
        atm = np.where(np.arange(n_regions) < geo.N_PROVINCES, np.maximum(6, per_region // 6), FOREIGN_ATM_PER_COUNTRY)
        self._pos_count, self._atm_count = pos.astype(np.int64), atm.astype(np.int64)
        self._pos_start = np.r_[0, np.cumsum(pos)][:-1].astype(np.int64)
        self._atm_start = int(pos.sum()) + np.r_[0, np.cumsum(atm)][:-1].astype(np.int64)
        self.term_region = np.r_[np.repeat(np.arange(n_regions), pos), np.repeat(np.arange(n_regions), atm)].astype(np.int16)
        self.term_kind = np.r_[np.zeros(int(pos.sum())), np.ones(int(atm.sum()))].astype(np.int8)
        self.term_serial = rng.integers(100_000, 999_999, len(self.term_kind), dtype=np.int64)
        # Mobile data IPs come from carrier pools (CGNAT): strangers occasionally share one.
        self._pool_size = np.maximum(200, per_region[: geo.N_PROVINCES] * 40).astype(np.int64)
        self._pool_base = geo.cn_ip(rng, np.arange(geo.N_PROVINCES)) & ~np.int64(0xFFFFF)
        self.operator_keys = np.zeros(0, dtype=np.int64)
        # Agents execute some transactions of the accounts they opened: operator k is agent k.
        self.agent_operators = len(self.pop.agent_keys)
        self.new_operators(rng, self.agent_operators)

    # ----------------------------------------------------------------- identifiers
    def new_operators(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """Register ``k`` operators (people executing others' transactions); return their indices."""
        start = len(self.operator_keys)
        self.operator_keys = np.concatenate([self.operator_keys, rng.integers(100_000, 999_999, k, dtype=np.int64)])
        return np.arange(start, start + k, dtype=np.int32)

    def pos_terminal(self, rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
        """A random POS terminal in each region."""
        region = np.asarray(region, dtype=np.int64)
        return (self._pos_start[region] + rng.integers(0, 1 << 40, len(region)) % self._pos_count[region]).astype(np.int32)

    def atm_terminal(self, rng: np.random.Generator, region: np.ndarray, customer: np.ndarray | None = None) -> np.ndarray:
        """An ATM in each region; with ``customer``, mostly one of the two near the customer's home."""
        region = np.asarray(region, dtype=np.int64)
        k = rng.integers(0, 1 << 40, len(region))
        if customer is not None:
            near = (np.asarray(customer, dtype=np.int64) * 7919 + rng.integers(0, 2, len(region)))
            k = np.where(rng.random(len(region)) < 0.8, near, k)
        return (self._atm_start[region] + k % self._atm_count[region]).astype(np.int32)

    def mobile_ip(self, rng: np.random.Generator, province: np.ndarray) -> np.ndarray:
        """A mobile-carrier IP in each province (shared pools)."""
        province = np.asarray(province, dtype=np.int64)
        return self._pool_base[province] + rng.integers(0, 1 << 40, len(province)) % self._pool_size[province]

    def attach_identifiers(self, b: TxnBlock, rng: np.random.Generator) -> TxnBlock:
        """Fill IP, device and terminal where the channel needs them and the behaviour left them empty.

        The customer's own session, on out rows only: PC banking from the home (or office) IP and PC, mobile banking
        from a carrier IP of the home province and the customer's phone. Non-residents bank mostly
        from their country of residence. Terminals: POS anywhere in the home province, ATMs mostly
        near home. Rows already carrying an IP or terminal (travel, typologies) are left as they are.
        """
        pop = self.pop
        cust = b.customer.astype(np.int64)
        own = (b.ip < 0) & (b.direction == DIR["out"])  # an in row carries no session: the payee did not act
        is_online = (b.channel == CH["online_banking"]) & own
        is_mobile = (b.channel == CH["mobile_banking"]) & own
        need = is_online | is_mobile
        if need.any():
            c = cust[need]
            online = is_online[need]
            ip = np.where(online, pop.home_ip[c], self.mobile_ip(rng, pop.home_region[c]))
            dev = np.where(online & (pop.pc_device[c] >= 0), pop.pc_device[c], pop.phone_device[c])
            country = np.full(len(c), geo.CN, dtype=np.int16)
            region = pop.home_region[c].astype(np.int16)
            abroad = (pop.residence[c] != geo.CN) & (rng.random(len(c)) < 0.7)
            if abroad.any():
                country[abroad] = pop.residence[c][abroad]
                region[abroad] = -1
                ip[abroad] = geo.foreign_ip(rng, country[abroad])
            b.ip[need], b.device[need], b.ip_country[need], b.ip_region[need] = ip, dev, country, region
        pos = (b.channel == CH["pos"]) & (b.terminal < 0)
        if pos.any():
            region = pop.home_region[cust[pos]]
            b.terminal[pos] = self.pos_terminal(rng, region)
        atm = (b.channel == CH["atm"]) & (b.terminal < 0)
        if atm.any():
            b.terminal[atm] = self.atm_terminal(rng, pop.home_region[cust[atm]], cust[atm])
        has_term = b.terminal >= 0
        b.terminal_region[has_term] = self.term_region[b.terminal[has_term]]
        return b

    def terminal_ids(self) -> list[str]:
        """The id string of every terminal (``POS``/``ATM`` + region + serial)."""
        out: list[str] = []
        for i, (region, kind) in enumerate(zip(self.term_region.tolist(), self.term_kind.tolist())):
            code = geo.REGIONS[region].replace("-", "")
            out.append(f"{'ATM' if kind else 'POS'}{code}{self.term_serial[i] % 100:02d}{i:07d}")
        return out
