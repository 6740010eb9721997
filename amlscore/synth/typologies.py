"""Injected money-laundering typologies: one function per typology.

Each function recruits its own customers (mule and launderer accounts that no other scenario
and no innocent look-alike uses), adjusts their KYC where the pattern needs it (recently
onboarded, agent-opened, a shared emergency contact...), damps their normal activity (they keep
some: only the laundering rows carry ground truth) and returns the laundering transactions of
one scenario, each row carrying the scenario index.

Every scenario draws its own parameters (amounts, counts, duration, number of accounts) from
the ranges written at the top of its function. Scenario start days are stratified over the
window, so a time split leaves every typology in the training, validation and test periods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from amlscore.contract.errors import AmlError
from amlscore.synth import geo
from amlscore.synth.config import TYPOLOGY_SPECS, stream
from amlscore.synth.ledger import CH, CPT, DIR, TT, TxnBlock, block, concat, credit_channel, with_in_legs
from amlscore.synth.variant import VARIANT_CHANNELS, TypologyShift, row_uniform, scale_amounts
from amlscore.synth.normal import human_round, yuan_to_fen
from amlscore.synth.population import CORPORATE, INDIVIDUAL, OCC, ONB
from amlscore.synth.world import World

HOUR = 3600
DAY = 86_400
_DEFAULT_SHIFT = TypologyShift()


@dataclass
class Scenario:
    """One injected laundering scenario.

    Attributes
    ----------
    index:
        Position in the scenario list (the ``scenario`` code on ledger rows).
    typology:
        Typology name.
    customers:
        Every participating customer (their laundering rows are labelled).
    core:
        The accounts at the centre of the pattern (what an analyst would report first).
    start_day, end_day:
        First and last day of the laundering activity (bank-local day indices).
    params:
        The drawn parameters, for the documentation and for debugging.
    """

    index: int
    typology: str
    customers: np.ndarray
    core: np.ndarray
    start_day: int
    end_day: int
    params: dict[str, float] = field(default_factory=dict)

    @property
    def scenario_id(self) -> str:
        return f"SCN{self.index + 1:05d}"


@dataclass
class Recruiter:
    """Hands out customers who are not yet in a scenario and fixes up their KYC for the role."""

    w: World
    rng: np.random.Generator
    scenarios: list[Scenario] = field(default_factory=list)

    def take(self, n: int, kind: int, start_day: int, *, recent: float = 0.35, agent: float = 0.12,
             old: bool = False) -> np.ndarray:
        """Recruit ``n`` free customers of a kind (individual or corporate) for a scenario starting on ``start_day``.

        Mules lean young (students, "other" occupations) and firms lean towards shells and
        cash or trade businesses, but every kind of customer can be recruited.
        """
        pop, rng = self.w.pop, self.rng
        free = (pop.role < 0) & (pop.ctype == kind) & (pop.residence == geo.CN)
        if old:
            free &= pop.onboarded_day < min(start_day, 0) - 200
        cand = np.flatnonzero(free)
        if len(cand) < n:
            cand = np.flatnonzero((pop.role < 0) & (pop.ctype == kind))
        if len(cand) < n:
            raise AmlError(f"not enough free {'corporate' if kind else 'individual'} customers for the typologies of "
                           f"variant '{self.w.config.variant.name}' in a bank of {self.w.config.customers} customers: "
                           "use more customers or smaller group sizes.")
        weight = _mule_weight(pop.occupation[cand], kind)
        chosen = rng.choice(cand, size=n, replace=False, p=weight / weight.sum())
        self._fit_for_role(chosen, start_day, recent=0.0 if old else recent, agent=0.0 if old else agent)
        return chosen

    def _fit_for_role(self, chosen: np.ndarray, start_day: int, *, recent: float, agent: float) -> None:
        pop, rng, clock = self.w.pop, self.rng, self.w.clock
        k = len(chosen)
        # Some accounts are opened for the purpose, shortly before they are used.
        fresh = rng.random(k) < recent
        late = pop.onboarded_day[chosen] > start_day - 1
        move = fresh | late
        new_day = start_day - rng.integers(3, 120, k)
        pop.onboarded_day[chosen[move]] = new_day[move]
        _fix_birth(pop, clock, chosen[move])
        # Some were opened through an agent or intermediary (who may know what they are for).
        via = rng.random(k) < agent
        if via.any():
            known = np.flatnonzero(pop.agent >= 0)
            pick = pop.agent[known[rng.integers(0, len(known), int(via.sum()))]] if len(known) else \
                pop.new_agents(rng, int(via.sum()))
            pop.agent[chosen[via]] = pick
            pop.onboarding[chosen[via]] = np.where(rng.random(int(via.sum())) < 0.7, ONB["agent"], ONB["intermediary"])
        pop.watchlist[chosen[rng.random(k) < 0.01]] = True
        # They keep a thinner normal life on the account, and no closure during the scheme.
        pop.activity[chosen] *= rng.uniform(0.2, 0.8, k)
        pop.active_from[chosen] = np.clip(pop.onboarded_day[chosen], 0, clock.days - 1)
        pop.active_to[chosen] = clock.days

    def register(self, typology: str, customers: np.ndarray, core: np.ndarray, start: int, end: int,
                 **params: float) -> Scenario:
        """Record a scenario and mark its customers as taken."""
        sc = Scenario(len(self.scenarios), typology, np.asarray(customers, dtype=np.int64),
                      np.asarray(core, dtype=np.int64), int(start), int(end), dict(params))
        self.w.pop.role[sc.customers] = sc.index
        self.scenarios.append(sc)
        return sc


def _mule_weight(occupation: np.ndarray, kind: int) -> np.ndarray:
    if kind == INDIVIDUAL:
        table = {"student": 3.0, "other": 2.0, "farmer": 1.3, "self_employed": 1.5, "salaried": 1.0,
                 "retired": 0.3, "intermediary": 2.0, "entertainment": 2.0, "money_service": 2.0}
    else:
        table = {"private_company": 1.0, "import_export": 2.0, "money_service": 3.0, "offshore": 3.0,
                 "precious_metals": 2.0, "entertainment": 1.5, "soe": 0.1, "listed_company": 0.1, "state_organ": 0.02}
    w = np.ones(len(occupation))
    for name, x in table.items():
        w[occupation == OCC[name]] = x
    return w


def _fix_birth(pop, clock, idx: np.ndarray) -> None:
    """Keep birth/incorporation before onboarding (16 years for people; a shell may be weeks old)."""
    if len(idx) == 0:
        return
    onboard = np.datetime64(clock.start, "D") + pop.onboarded_day[idx].astype("timedelta64[D]")
    gap = np.where(pop.ctype[idx] == CORPORATE, 20, 16 * 365 + 30).astype("timedelta64[D]")
    latest = onboard - gap
    bad = ~np.isnat(pop.birth[idx]) & (pop.birth[idx] > latest)
    pop.birth[idx[bad]] = latest[bad]


# ----------------------------------------------------------------------------- helpers
def _log_uniform(rng: np.random.Generator, lo: float, hi: float, n: int | None = None) -> np.ndarray | float:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def _sorted_times(rng: np.random.Generator, w: World, start_day: int, span_days: int, n: int,
                  profile: str = "mule") -> np.ndarray:
    """``n`` sorted timestamps over ``span_days`` days from ``start_day`` (clipped to the window)."""
    days = np.clip(start_day + rng.integers(0, max(1, span_days), n), 0, w.clock.days - 1)
    return np.sort(w.clock.stamp(rng, days, profile))


def _clip_ts(w: World, ts: np.ndarray) -> np.ndarray:
    """Keep timestamps inside the window (a chain that runs past the end stops on the last day)."""
    last = w.clock.timestamp(w.clock.days - 1, 86_399)
    return np.minimum(ts, last)


def _grow(w: World, typology: str, n: int, minimum: int = 1) -> int:
    """A drawn group size (accounts, depositors, recipients, chain length) times the variant's ``group_scale``."""
    scale = w.config.variant.typology(typology).group_scale
    return n if scale == 1.0 else max(minimum, int(round(n * scale)))


def _e_channel(rng: np.random.Generator, n: int, p_mobile: float = 0.7) -> np.ndarray:
    return np.where(rng.random(n) < p_mobile, CH["mobile_banking"], CH["online_banking"])


def _split(rng: np.random.Generator, total: float, k: int, spread: float = 0.5) -> np.ndarray:
    """Split an amount into ``k`` uneven parts."""
    parts = rng.dirichlet(np.full(k, 1.0 / max(spread, 1e-3)))
    return total * parts


def _transfers(w: World, payer: np.ndarray, payee: np.ndarray, ts: np.ndarray, amount_yuan: np.ndarray,
               channel: np.ndarray, scenario: int, *, txn_type: int = TT["transfer"],
               cp_type: np.ndarray | int | None = None, cp_country: np.ndarray | int = geo.CN,
               account: np.ndarray | int = 0, **extra: object) -> TxnBlock:
    """Out legs (paired with in legs when the payee banks here)."""
    payer = np.asarray(payer, dtype=np.int64)
    payee = np.asarray(payee, dtype=np.int64)
    n = len(payer)
    if cp_type is None:
        cp_type = np.where(payee >= 0, np.where(w.pop.ctype[np.maximum(payee, 0)] == CORPORATE, CPT["corporate"],
                                                CPT["individual"]), CPT["individual"])
    out = block(n, customer=payer, ts=_clip_ts(w, ts), direction=DIR["out"], amount=yuan_to_fen(amount_yuan),
                channel=channel, txn_type=txn_type, cp=payee, cp_type=cp_type, cp_country=cp_country,
                account=account, scenario=scenario, **extra)
    return with_in_legs(out, w.pop.ctype)


def _credits(w: World, rng: np.random.Generator, payee: np.ndarray, ts: np.ndarray, amount_yuan: np.ndarray,
             scenario: int, *, cp_type: int = CPT["individual"], txn_type: int = TT["transfer"],
             cp_country: np.ndarray | int = geo.CN, account: np.ndarray | int = 0) -> TxnBlock:
    """Money arriving from outside the bank."""
    n = len(np.atleast_1d(payee))
    return block(n, customer=payee, ts=_clip_ts(w, ts), direction=DIR["in"], amount=yuan_to_fen(amount_yuan),
                 channel=credit_channel(n), txn_type=txn_type, cp_type=cp_type, cp_country=cp_country,
                 account=account, scenario=scenario)


def _cash(w: World, rng: np.random.Generator, cust: np.ndarray, ts: np.ndarray, amount_yuan: np.ndarray,
          scenario: int, deposit: bool, atm_share: float = 0.3, account: np.ndarray | int = 0) -> TxnBlock:
    n = len(cust)
    atm = (rng.random(n) < atm_share) & (np.asarray(amount_yuan) <= 20_000)
    amt = np.where(atm, np.maximum(100, np.round(np.asarray(amount_yuan) / 100) * 100), amount_yuan)
    return block(n, customer=cust, ts=_clip_ts(w, ts), direction=DIR["in"] if deposit else DIR["out"],
                 amount=yuan_to_fen(amt), channel=np.where(atm, CH["atm"], CH["counter"]),
                 txn_type=TT["cash_deposit"] if deposit else TT["cash_withdrawal"], cp_type=CPT["unknown"],
                 account=account, scenario=scenario)


def _start_days(rng: np.random.Generator, k: int, days: int, duration: np.ndarray, earliest: int = 0) -> np.ndarray:
    """Stratified start days: scenario i starts in the i-th of ``k`` equal slices of the window (shuffled)."""
    slot = rng.permutation(k)
    latest = np.maximum(earliest + 1, days - duration)
    lo = earliest + slot * (latest - earliest) // k
    hi = earliest + (slot + 1) * (latest - earliest) // k
    return (lo + (rng.random(k) * np.maximum(1, hi - lo)).astype(np.int64)).astype(np.int64)


# ----------------------------------------------------------------------------- typologies
def structuring(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Cash deposits just under the 50,000 CNY threshold, several over days, across accounts and people.

    Parameters drawn: 1-2 depositing customers, 8-32 deposits over 7-60 days, 80 % of them in
    [90 %, 99.8 %] of the threshold and the rest lower; funds then leave in 1-4 transfers within
    0-3 days of the last deposit (85-100 % of the cash).
    """
    threshold = w.rules.large_cash_threshold
    people = int(rng.integers(1, 3))
    span = int(rng.integers(7, 61))
    count = int(rng.integers(8, 33))
    cust = r.take(people, INDIVIDUAL, start)
    sc = r.register("structuring", cust, cust[:1], start, start + span, depositors=people, deposits=count, days=span)
    who = cust[rng.integers(0, people, count)]
    acct = rng.integers(0, w.pop.n_accounts[who])  # several accounts of one person, too
    near = rng.random(count) < 0.8
    amount = np.where(near, rng.uniform(0.90, 0.998, count), rng.uniform(0.72, 0.9, count)) * threshold
    amount = np.where(rng.random(count) < 0.5, np.round(amount, -2), np.round(amount, -1))
    ts = _sorted_times(rng, w, start, span, count, "counter")
    deposits = _cash(w, rng, who, ts, amount, sc.index, deposit=True, atm_share=0.0, account=acct)
    # Consolidate to the first depositor, then move it out.
    others = who != cust[0]
    consolidate = _transfers(w, who[others], np.full(int(others.sum()), cust[0]), ts[others] + rng.integers(HOUR, 2 * DAY, int(others.sum())),
                             amount[others] * rng.uniform(0.97, 1.0, int(others.sum())), _e_channel(rng, int(others.sum())), sc.index)
    k_out = int(rng.integers(1, 5))
    total = amount.sum() * rng.uniform(0.85, 1.0)
    out_ts = ts[-1] + 2 * DAY + rng.integers(0, 3 * DAY, k_out)
    out = _transfers(w, np.full(k_out, cust[0]), np.full(k_out, -1), out_ts, human_round(rng, _split(rng, total, k_out)),
                     _e_channel(rng, k_out), sc.index)
    return concat([deposits, consolidate, out])


def fan_in(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Many depositors pay one collector, who sweeps the money on.

    Parameters drawn: 12-50 depositors (20-40 % customers of the bank, the rest at other banks),
    each paying 1-8 times 1,000-30,000 CNY over 10-60 days; the collector (an individual, or a
    small firm 25 % of the time) sweeps 85-98 % out every 1-5 days.
    """
    n_dep = _grow(w, "fan_in", int(rng.integers(12, 51)), 3)
    span = int(rng.integers(10, 61))
    share_internal = rng.uniform(0.2, 0.4)
    corp = rng.random() < 0.25
    hub = r.take(1, CORPORATE if corp else INDIVIDUAL, start, recent=0.45)
    n_int = max(2, int(round(n_dep * share_internal)))
    deps = r.take(n_int, INDIVIDUAL, start, recent=0.3)
    sc = r.register("fan_in", np.r_[hub, deps], hub, start, start + span, depositors=n_dep, internal=n_int, days=span)
    k = rng.integers(1, 9, n_dep)
    payer_slot = np.repeat(np.arange(n_dep), k)
    m = len(payer_slot)
    ts = _sorted_times(rng, w, start, span, m)
    rng.shuffle(payer_slot)
    amount = human_round(rng, _log_uniform(rng, 1_000, 30_000, m))
    internal = payer_slot < n_int
    payer = np.where(internal, deps[np.minimum(payer_slot, n_int - 1)], -1)
    legs = _transfers(w, payer[internal], np.full(int(internal.sum()), hub[0]), ts[internal], amount[internal],
                      _e_channel(rng, int(internal.sum())), sc.index)
    ext = _credits(w, rng, np.full(int((~internal).sum()), hub[0]), ts[~internal], amount[~internal], sc.index)
    sweeps = _sweeps(w, rng, hub[0], ts, amount, sc.index, every=(1, 6), keep=(0.02, 0.15))
    return concat([legs, ext, sweeps])


def _sweeps(w: World, rng: np.random.Generator, hub: int, in_ts: np.ndarray, in_amount: np.ndarray, scenario: int,
            every: tuple[int, int], keep: tuple[float, float]) -> TxnBlock:
    """Move what arrived on ``hub`` out again in batches every few days."""
    t0, t1 = int(in_ts.min()), int(in_ts.max())
    cuts = [t0]
    while cuts[-1] < t1:
        cuts.append(cuts[-1] + int(rng.integers(every[0], every[1])) * DAY + int(rng.integers(0, DAY)))
    payer, ts, amt = [], [], []
    for a, b in zip(cuts[:-1], cuts[1:]):
        got = in_amount[(in_ts >= a) & (in_ts < b)].sum()
        if got <= 0:
            continue
        payer.append(hub)
        ts.append(b + int(rng.integers(0, 6 * HOUR)))
        amt.append(got * (1 - rng.uniform(*keep)))
    if not payer:
        return block(0)
    n = len(payer)
    return _transfers(w, np.array(payer), np.full(n, -1), np.array(ts), human_round(rng, np.array(amt)),
                      _e_channel(rng, n, 0.5), scenario)


def fan_out(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """One account receives a few large sums and pays many new counterparties, who cash out.

    Parameters drawn: 1-6 inflows totalling 150,000-3,000,000 CNY; 12-60 recipients (20-40 %
    customers of the bank, never paid before), each paid 1-4 times over 3-30 days; 50 % of the
    recipients at this bank withdraw most of it within 1-3 days.
    """
    n_rec = _grow(w, "fan_out", int(rng.integers(12, 61)), 3)
    span = int(rng.integers(3, 31))
    total = float(_log_uniform(rng, 150_000, 3_000_000))
    share_internal = rng.uniform(0.2, 0.4)
    hub = r.take(1, CORPORATE if rng.random() < 0.3 else INDIVIDUAL, start, recent=0.4)
    n_int = max(2, int(round(n_rec * share_internal)))
    recs = r.take(n_int, INDIVIDUAL, start, recent=0.3)
    sc = r.register("fan_out", np.r_[hub, recs], hub, start, start + span, recipients=n_rec, internal=n_int,
                    total=total, days=span)
    k_in = int(rng.integers(1, 7))
    in_ts = np.sort(w.clock.stamp(rng, np.clip(start + rng.integers(0, 2, k_in), 0, w.clock.days - 1), "business"))
    inflow = _credits(w, rng, np.full(k_in, hub[0]), in_ts, human_round(rng, _split(rng, total, k_in)), sc.index,
                      cp_type=CPT["corporate"])
    k = rng.integers(1, 5, n_rec)
    slot = np.repeat(np.arange(n_rec), k)
    m = len(slot)
    amount = human_round(rng, _split(rng, total * rng.uniform(0.9, 0.99), m, spread=0.3))
    amount = np.maximum(amount, 500)
    ts = np.maximum(_sorted_times(rng, w, start, span, m), in_ts[0] + HOUR)
    rng.shuffle(slot)
    payee = np.where(slot < n_int, recs[np.minimum(slot, n_int - 1)], -1)
    pay = _transfers(w, np.full(m, hub[0]), payee, ts, amount, _e_channel(rng, m, 0.5), sc.index)
    # Recipients at this bank cash out.
    cashers = recs[rng.random(n_int) < 0.5]
    blocks = [inflow, pay]
    if len(cashers):
        got = np.array([amount[payee == c].sum() for c in cashers])
        last = np.array([ts[payee == c].max() for c in cashers])
        wd_ts = last + rng.integers(2 * HOUR, 3 * DAY, len(cashers))
        blocks.append(_cash(w, rng, cashers, wd_ts, np.round(got * rng.uniform(0.8, 1.0, len(cashers)), -2), sc.index,
                            deposit=False, atm_share=0.6))
    return concat(blocks)


def rapid_pass_through(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Large sums in and out again within hours, leaving little behind; repeated over weeks.

    Parameters drawn: a chain of 1-3 accounts, 10-50 rounds over 30-180 days, 30,000-800,000 CNY
    per round; each hop forwards 90-99.5 % after 20 minutes to 12 hours, split in 1-3 transfers.
    """
    chain_len = _grow(w, "rapid_pass_through", int(rng.integers(1, 4)))
    rounds = int(rng.integers(10, 51))
    span = int(rng.integers(30, 181))
    kinds = [CORPORATE if rng.random() < 0.3 else INDIVIDUAL for _ in range(chain_len)]
    chain = np.array([r.take(1, k, start, recent=0.4)[0] for k in kinds], dtype=np.int64)
    sc = r.register("rapid_pass_through", chain, chain[:1], start, start + span, accounts=chain_len, rounds=rounds,
                    days=span)
    ts0 = _sorted_times(rng, w, start, span, rounds)
    amount0 = human_round(rng, _log_uniform(rng, 30_000, 800_000, rounds))
    blocks = [_credits(w, rng, np.full(rounds, chain[0]), ts0, amount0, sc.index,
                       cp_type=np.where(rng.random() < 0.5, CPT["corporate"], CPT["individual"]))]
    ts, amount = ts0, amount0
    for hop in range(chain_len):
        nxt = chain[hop + 1] if hop + 1 < chain_len else -1
        ts = ts + rng.integers(20 * 60, 12 * HOUR, rounds)
        fwd = amount * rng.uniform(0.90, 0.995, rounds)
        parts = rng.integers(1, 4, rounds)
        i = np.repeat(np.arange(rounds), parts)
        share = np.concatenate([rng.dirichlet(np.ones(p) * 2) for p in parts])
        part_amt = np.maximum(100, human_round(rng, fwd[i] * share))
        part_ts = ts[i] + rng.integers(0, 40 * 60, len(i))
        blocks.append(_transfers(w, np.full(len(i), chain[hop]), np.full(len(i), nxt), part_ts, part_amt,
                                 _e_channel(rng, len(i)), sc.index))
        amount = np.bincount(i, weights=part_amt, minlength=rounds)
        ts = np.array([part_ts[i == k].max() for k in range(rounds)])
    return concat(blocks)


def shared_ip_device(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """One operator runs several customers' e-banking from the same IP address or device.

    Parameters drawn: 3-8 accounts, 15-60 e-banking transactions each over 20-120 days, from 1-2
    IPs and 1-3 devices of the operator; ``operator_id`` set on 35 % of scenarios; money comes in
    from outside and leaves to outside or to the other accounts of the group.
    """
    k = _grow(w, "shared_ip_device", int(rng.integers(3, 9)), 2)
    span = int(rng.integers(20, 121))
    accts = r.take(k, INDIVIDUAL, start, recent=0.4, agent=0.2)
    sc = r.register("shared_ip_device", accts, accts, start, start + span, accounts=k, days=span)
    province = int(w.pop.home_region[accts[0]])
    ips = geo.cn_ip(rng, np.full(int(rng.integers(1, 3)), province))
    devices = w.pop.new_devices(rng, int(rng.integers(1, 4)))
    operator = w.new_operators(rng, 1)[0] if rng.random() < 0.35 else -1
    per = rng.integers(15, 61, k)
    who = np.repeat(accts, per)
    m = len(who)
    ts = _sorted_times(rng, w, start, span, m)
    rng.shuffle(who)
    kind = rng.random(m)  # 0-0.4 credit from outside, 0.4-0.7 to another account, else out
    amount = human_round(rng, _log_uniform(rng, 2_000, 60_000, m))
    credit = kind < 0.4
    internal = (kind >= 0.4) & (kind < 0.7)
    peer = accts[rng.integers(0, k, m)]
    ordered = np.sort(accts)
    peer = np.where(peer == who, ordered[(np.searchsorted(ordered, who) + 1) % k], peer)
    payee = np.where(internal, peer, -1)
    sent = ~credit
    n_sent = int(sent.sum())
    session = dict(ip=ips[rng.integers(0, len(ips), n_sent)], ip_country=geo.CN, ip_region=province,
                   device=devices[rng.integers(0, len(devices), n_sent)], operator=operator)
    out = _transfers(w, who[sent], payee[sent], ts[sent], amount[sent], _e_channel(rng, n_sent, 0.6), sc.index,
                     **session)
    return concat([_credits(w, rng, who[credit], ts[credit], amount[credit], sc.index), out])


def ip_abroad(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """E-banking suddenly from abroad (or another province), unusual for the customer, moving money.

    Parameters drawn: 1-2 accounts of home-staying residents; 10-60 transactions over 3-40 days;
    75 % of scenarios from a foreign IP (scam-compound and proxy countries), 25 % from another
    province; a new device 70 % of the time; 5,000-200,000 CNY per transaction.
    """
    k = int(rng.integers(1, 3))
    span = int(rng.integers(3, 41))
    accts = r.take(k, INDIVIDUAL, start, recent=0.2)
    sc = r.register("ip_abroad", accts, accts, start, start + span, accounts=k, days=span)
    m = int(rng.integers(10, 61))
    who = accts[rng.integers(0, k, m)]
    ts = _sorted_times(rng, w, start, span, m)
    amount = human_round(rng, _log_uniform(rng, 5_000, 200_000, m))
    credit = rng.random(m) < 0.45
    foreign = rng.random() < 0.75
    n_sent = int((~credit).sum())
    if foreign:
        codes, weights = geo.weighted_codes(geo.SUSPICIOUS_IP_COUNTRIES)
        country = int(rng.choice(codes, p=weights))
        ip = geo.foreign_ip(rng, np.full(n_sent, country))
        region = -1
    else:
        country = geo.CN
        region = int((w.pop.home_region[accts[0]] + rng.integers(1, geo.N_PROVINCES)) % geo.N_PROVINCES)
        ip = w.mobile_ip(rng, np.full(n_sent, region))
    device = w.pop.new_devices(rng, 1)[0] if rng.random() < 0.7 else -1
    dev = np.where(device >= 0, device, w.pop.phone_device[who[~credit]])
    out = _transfers(w, who[~credit], np.full(n_sent, -1), ts[~credit], amount[~credit], _e_channel(rng, n_sent, 0.8),
                     sc.index, ip=ip, ip_country=country, ip_region=region, device=dev)
    sc.params.update(foreign=float(foreign))
    return concat([_credits(w, rng, who[credit], ts[credit], amount[credit], sc.index), out])


def corp_to_personal(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """A (often shell) firm pays individuals large sums, frequently; they cash out or pass it on.

    Parameters drawn: 2-8 individuals (65-100 % at this bank), 20-100 transfers of 20,000-500,000
    CNY over 30-150 days, funded by 2-10 large credits; each individual cashes out or forwards
    80-100 % within 1-5 days.
    """
    n_ind = _grow(w, "corp_to_personal", int(rng.integers(2, 9)))
    span = int(rng.integers(30, 151))
    corp = r.take(1, CORPORATE, start, recent=0.5)
    w.pop.layers[corp] = rng.integers(2, 6)
    people = r.take(n_ind, INDIVIDUAL, start, recent=0.3)
    external = rng.random(n_ind) > rng.uniform(0.65, 1.0)
    sc = r.register("corp_to_personal", np.r_[corp, people], corp, start, start + span, individuals=n_ind, days=span)
    m = int(rng.integers(20, 101))
    ts = _sorted_times(rng, w, start, span, m, "business")
    amount = human_round(rng, _log_uniform(rng, 20_000, 500_000, m))
    slot = rng.integers(0, n_ind, m)
    payee = np.where(external[slot], -1, people[slot])
    pay = _transfers(w, np.full(m, corp[0]), payee, ts, amount, np.full(m, CH["online_banking"]), sc.index,
                     cp_type=CPT["individual"])
    k_in = int(rng.integers(2, 11))
    fund_ts = np.sort(_sorted_times(rng, w, start, max(1, span - 2), k_in, "business") - DAY)
    fund = _credits(w, rng, np.full(k_in, corp[0]), fund_ts, human_round(rng, _split(rng, amount.sum() * 1.02, k_in)),
                    sc.index, cp_type=CPT["corporate"])
    internal = payee >= 0
    onward_ts = ts[internal] + rng.integers(DAY, 5 * DAY, int(internal.sum()))
    onward_amt = amount[internal] * rng.uniform(0.8, 1.0, int(internal.sum()))
    as_cash = rng.random(int(internal.sum())) < 0.4
    cash = _cash(w, rng, payee[internal][as_cash], onward_ts[as_cash], np.round(onward_amt[as_cash], -2), sc.index,
                 deposit=False, atm_share=0.0)
    fwd = _transfers(w, payee[internal][~as_cash], np.full(int((~as_cash).sum()), -1), onward_ts[~as_cash],
                     human_round(rng, onward_amt[~as_cash]), _e_channel(rng, int((~as_cash).sum())), sc.index)
    return concat([fund, pay, cash, fwd])


def dormant_reactivation(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """An account silent for 180+ days suddenly moves large sums.

    Parameters drawn: one long-standing account (individual, or a firm 20 % of the time); silence
    of at least 180 days before day ``start`` (before the window or after a little early use);
    2-8 credits or cash deposits totalling 100,000-3,000,000 CNY then 6-40 transfers and
    withdrawals of 85-100 % over 5-45 days. Normal use resumes (thinly) after the reactivation.
    """
    span = int(rng.integers(5, 46))
    corp = rng.random() < 0.2
    acct = r.take(1, CORPORATE if corp else INDIVIDUAL, start, old=True)
    c = int(acct[0])
    pop = w.pop
    pop.onboarded_day[c] = min(int(pop.onboarded_day[c]), start - 400)
    _fix_birth(pop, w.clock, acct)
    pop.active_from[c] = start + span  # nothing normal until the burst is over
    sc = r.register("dormant_reactivation", acct, acct, start, start + span, days=span)
    total = float(_log_uniform(rng, 100_000, 3_000_000))
    k_in = int(rng.integers(2, 9))
    in_ts = _sorted_times(rng, w, start, max(1, span // 2), k_in, "counter")
    in_amt = human_round(rng, _split(rng, total, k_in))
    as_cash = (rng.random(k_in) < 0.3) & (in_amt < 200_000)
    blocks = [_credits(w, rng, np.full(int((~as_cash).sum()), c), in_ts[~as_cash], in_amt[~as_cash], sc.index),
              _cash(w, rng, np.full(int(as_cash.sum()), c), in_ts[as_cash], in_amt[as_cash], sc.index, deposit=True,
                    atm_share=0.0)]
    k_out = int(rng.integers(6, 41))
    out_ts = np.maximum(_sorted_times(rng, w, start, span, k_out), in_ts[0] + HOUR)
    out_amt = human_round(rng, _split(rng, total * rng.uniform(0.85, 1.0), k_out))
    wd = (rng.random(k_out) < 0.25) & (out_amt < 50_000)
    blocks.append(_transfers(w, np.full(int((~wd).sum()), c), np.full(int((~wd).sum()), -1), out_ts[~wd], out_amt[~wd],
                             np.where(rng.random(int((~wd).sum())) < 0.5, CH["counter"], CH["online_banking"]), sc.index))
    blocks.append(_cash(w, rng, np.full(int(wd.sum()), c), out_ts[wd], out_amt[wd], sc.index, deposit=False))
    # A little innocent use long before (if the window allows it): the account was alive, then slept.
    if start - w.rules.dormancy_days > 20 and rng.random() < 0.6:
        k0 = int(rng.integers(1, 5))
        early_ts = _sorted_times(rng, w, 0, start - w.rules.dormancy_days - 5, k0, "pos")
        blocks.append(block(k0, customer=c, ts=early_ts, direction=DIR["out"],
                            amount=yuan_to_fen(_log_uniform(rng, 20, 800, k0)), channel=CH["pos"],
                            txn_type=TT["purchase"], cp_type=CPT["corporate"], cp_country=geo.CN))
    return concat(blocks)


def high_risk_remittance(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Cross-border remittances to high-risk jurisdictions, funded just before each one.

    Parameters drawn: one sender (individual 60 %, trade or money-service firm 40 %), 10-50
    remittances of 10,000-300,000 CNY to 1-3 high-risk countries over 30-180 days, each funded
    by a credit or cash deposit 0-3 days before.
    """
    span = int(rng.integers(30, 181))
    corp = rng.random() < 0.4
    who = r.take(1, CORPORATE if corp else INDIVIDUAL, start, recent=0.3)
    if corp:
        w.pop.occupation[who] = rng.choice([OCC["import_export"], OCC["money_service"], OCC["private_company"]],
                                           p=[0.5, 0.2, 0.3])
    c = int(who[0])
    sc = r.register("high_risk_remittance", who, who, start, start + span, days=span)
    risky = np.array([geo.COUNTRY_INDEX[x] for x in w.rules.high_risk_countries if x in geo.COUNTRY_INDEX])
    countries = rng.choice(risky, size=int(rng.integers(1, 4)), replace=False)
    m = int(rng.integers(10, 51))
    ts = _sorted_times(rng, w, start, span, m, "business")
    amount = human_round(rng, _log_uniform(rng, 10_000, 300_000, m))
    channel = np.where(rng.random(m) < 0.4, CH["counter"], CH["online_banking"])
    rem = _transfers(w, np.full(m, c), np.full(m, -1), ts, amount, channel, sc.index, txn_type=TT["remittance"],
                     cp_type=np.where(rng.random(m) < 0.6, CPT["individual"], CPT["corporate"]),
                     cp_country=countries[rng.integers(0, len(countries), m)])
    fund_ts = ts - rng.integers(HOUR, 3 * DAY, m)
    fund_amt = human_round(rng, amount * rng.uniform(1.0, 1.05, m))
    cashy = (rng.random(m) < 0.3) & (fund_amt < 50_000)
    fund = concat([_credits(w, rng, np.full(int((~cashy).sum()), c), fund_ts[~cashy], fund_amt[~cashy], sc.index),
                   _cash(w, rng, np.full(int(cashy.sum()), c), fund_ts[cashy], fund_amt[cashy], sc.index, deposit=True,
                         atm_share=0.0)])
    return concat([fund, rem])


def agent_ring(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Accounts opened by one agent, sharing an emergency-contact phone, moving money among themselves and out.

    Parameters drawn: 4-9 accounts onboarded by one agent within 2-30 days before the activity
    (70 % of them online or at the counter through the agent); 15-50 transactions per account over
    30-120 days: credits from outside, transfers within the ring, transfers out and ATM cash; the
    agent executes 20 % of the counter transactions (``operator_id``).
    """
    k = _grow(w, "agent_ring", int(rng.integers(4, 10)), 2)
    span = int(rng.integers(30, 121))
    pop = w.pop
    ring = r.take(k, INDIVIDUAL, start, recent=1.0, agent=0.0)
    agent = pop.new_agents(rng, 1)[0]
    opened_over = int(rng.integers(2, 31))
    first = start - opened_over - int(rng.integers(1, 20))
    pop.onboarded_day[ring] = first + rng.integers(0, opened_over, k)
    _fix_birth(pop, w.clock, ring)
    pop.active_from[ring] = np.clip(pop.onboarded_day[ring], 0, w.clock.days - 1)
    pop.agent[ring] = agent
    pop.onboarding[ring] = np.where(rng.random(k) < 0.7, ONB["agent"], ONB["intermediary"])
    contact = int(rng.integers(1, 2**62))
    pop.emergency[ring] = np.where(rng.random(k) < 0.85, contact, pop.emergency[ring])
    operator = w.new_operators(rng, 1)[0]
    sc = r.register("agent_ring", ring, ring, start, start + span, accounts=k, days=span)
    per = rng.integers(15, 51, k)
    who = np.repeat(ring, per)
    m = len(who)
    rng.shuffle(who)
    ts = _sorted_times(rng, w, start, span, m)
    kind = rng.random(m)  # <0.35 credit, <0.65 within ring, <0.85 out, else cash
    amount = human_round(rng, _log_uniform(rng, 1_000, 50_000, m))
    credit, within, out, cash = kind < 0.35, (kind >= 0.35) & (kind < 0.65), (kind >= 0.65) & (kind < 0.85), kind >= 0.85
    peer = ring[rng.integers(0, k, m)]
    peer = np.where(peer == who, ring[(np.argmax(ring[None, :] == who[:, None], axis=1) + 1) % k], peer)
    sent = within | out
    n_sent = int(sent.sum())
    channel = np.where(rng.random(n_sent) < 0.8, _e_channel(rng, n_sent), CH["counter"])
    op = np.where((channel == CH["counter"]) & (rng.random(n_sent) < 0.2), operator, -1)
    blocks = [
        _credits(w, rng, who[credit], ts[credit], amount[credit], sc.index),
        _transfers(w, who[sent], np.where(within[sent], peer[sent], -1), ts[sent], amount[sent], channel, sc.index,
                   operator=op),
        _cash(w, rng, who[cash], ts[cash], np.round(amount[cash], -2), sc.index, deposit=False, atm_share=0.8),
    ]
    return concat(blocks)


def cycle(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Money going round a loop of accounts, A -> B -> C -> A, in similar amounts, several times.

    Parameters drawn: 3-5 accounts (a firm among them 50 % of the time), 5-20 rounds over 30-150
    days, 50,000-1,000,000 CNY entering per round; each hop keeps 0-3 % and takes 1-36 hours.
    """
    n = _grow(w, "cycle", int(rng.integers(3, 6)), 2)
    rounds = int(rng.integers(5, 21))
    span = int(rng.integers(30, 151))
    n_corp = int(rng.random() < 0.5)
    loop = np.r_[r.take(n_corp, CORPORATE, start, recent=0.3), r.take(n - n_corp, INDIVIDUAL, start, recent=0.3)]
    loop = loop[rng.permutation(n)]
    sc = r.register("cycle", loop, loop[:1], start, start + span, accounts=n, rounds=rounds, days=span)
    ts = _sorted_times(rng, w, start, max(1, span - 5), rounds, "business")
    amount = human_round(rng, _log_uniform(rng, 50_000, 1_000_000, rounds))
    blocks = [_credits(w, rng, np.full(rounds, loop[0]), ts, amount, sc.index, cp_type=CPT["corporate"])]
    for hop in range(n):
        payer, payee = loop[hop], loop[(hop + 1) % n]
        ts = ts + rng.integers(HOUR, 36 * HOUR, rounds)
        amount = human_round(rng, amount * (1 - rng.uniform(0.0, 0.03, rounds)))
        blocks.append(_transfers(w, np.full(rounds, payer), np.full(rounds, payee), ts, amount,
                                 _e_channel(rng, rounds, 0.5), sc.index))
    # Part of the time the loop ends by paying out.
    exit_ = rng.random(rounds) < 0.5
    k = int(exit_.sum())
    blocks.append(_transfers(w, np.full(k, loop[0]), np.full(k, -1), ts[exit_] + rng.integers(HOUR, 2 * DAY, k),
                             human_round(rng, amount[exit_] * rng.uniform(0.9, 1.0, k)), _e_channel(rng, k), sc.index))
    return concat(blocks)


def slow_layering(w: World, r: Recruiter, rng: np.random.Generator, start: int) -> TxnBlock:
    """Money moved slowly along a chain of intermediaries: days, not hours, at each hop.

    Not a default typology (only a world variant switches it on) and not one the features were
    designed for: the pass-through features look at windows of hours to a day, while each hop here
    holds the money for 3-20 days and forwards only part of it, in ordinary amounts.

    Parameters drawn: 4-8 intermediaries (an individual, or a small firm 30 % of the time), 3-10
    tranches of 5,000-80,000 CNY entering the first from outside over 20-90 days; each hop waits
    3-20 days and forwards 60-90 % of what it got in 1-3 transfers; the last pays out to other banks.
    """
    n = _grow(w, "slow_layering", int(rng.integers(4, 9)), 2)
    span = int(rng.integers(20, 91))
    kinds = [CORPORATE if rng.random() < 0.3 else INDIVIDUAL for _ in range(n)]
    chain = np.array([r.take(1, k, start, recent=0.25)[0] for k in kinds], dtype=np.int64)
    sc = r.register("slow_layering", chain, chain[:1], start, start + span, accounts=n, days=span)
    k_in = int(rng.integers(3, 11))
    ts = _sorted_times(rng, w, start, span, k_in)
    amount = human_round(rng, _log_uniform(rng, 5_000, 80_000, k_in))
    blocks = [_credits(w, rng, np.full(k_in, chain[0]), ts, amount, sc.index)]
    for hop in range(n):
        nxt = chain[hop + 1] if hop + 1 < n else -1
        ts = ts + rng.integers(3 * DAY, 20 * DAY, k_in)
        fwd = amount * rng.uniform(0.6, 0.9, k_in)
        parts = rng.integers(1, 4, k_in)
        i = np.repeat(np.arange(k_in), parts)
        share = np.concatenate([rng.dirichlet(np.ones(p) * 2) for p in parts])
        part_amt = np.maximum(100, human_round(rng, fwd[i] * share))
        part_ts = ts[i] + rng.integers(0, 2 * DAY, len(i))
        blocks.append(_transfers(w, np.full(len(i), chain[hop]), np.full(len(i), nxt), part_ts, part_amt,
                                 _e_channel(rng, len(i)), sc.index))
        amount = np.bincount(i, weights=part_amt, minlength=k_in)
        ts = np.array([part_ts[i == k].max() for k in range(k_in)])
    return concat(blocks)


def shift_scenario(w: World, b: TxnBlock, sc: Scenario, shift: TypologyShift) -> TxnBlock:
    """Apply a world variant's typology shift to one scenario's rows (nothing changes at the defaults).

    * ``speed_scale``: the time from the scenario's first day to each of its transactions is
      multiplied (rows before that day, such as a sleeper's early use, stay where they are);
    * ``amount_scale``: every amount is multiplied, keeping the unit it was typed in;
    * ``channels``: transfers without a session of their own (no IP, device or terminal) take a
      channel drawn from the weights; both legs of an internal transfer draw the same one.
    """
    if shift.speed_scale != 1.0:
        t0 = w.clock.timestamp(sc.start_day, 0)
        after = b.ts >= t0
        b.ts[after] = _clip_ts(w, t0 + np.round((b.ts[after] - t0) * shift.speed_scale).astype(np.int64))
    if shift.amount_scale != 1.0:
        b.amount[:] = scale_amounts(b.amount, shift.amount_scale)
    if shift.channels:
        e_banking = np.isin(b.channel, [CH["online_banking"], CH["mobile_banking"]])
        free = e_banking & (b.ip < 0) & (b.device < 0) & (b.txn_type == TT["transfer"])
        if free.any():
            out = b.direction == DIR["out"]
            payer = np.where(out, b.customer, b.cp)[free]
            payee = np.where(out, b.cp, b.customer)[free]
            u = row_uniform(w.config.seed, b.ts[free], b.amount[free], payer, payee)
            names = list(shift.channels)
            weights = np.array([shift.channels[x] for x in names], dtype=np.float64)
            pick = np.searchsorted(np.cumsum(weights) / weights.sum(), u, side="right").clip(0, len(names) - 1)
            codes = np.array([CH[x] for x in names if x in VARIANT_CHANNELS], dtype=np.int8)
            b.channel[free] = codes[pick]
    return b


TYPOLOGY_FUNCTIONS: dict[str, Callable[[World, Recruiter, np.random.Generator, int], TxnBlock]] = {
    "structuring": structuring,
    "fan_in": fan_in,
    "fan_out": fan_out,
    "rapid_pass_through": rapid_pass_through,
    "shared_ip_device": shared_ip_device,
    "ip_abroad": ip_abroad,
    "corp_to_personal": corp_to_personal,
    "dormant_reactivation": dormant_reactivation,
    "high_risk_remittance": high_risk_remittance,
    "agent_ring": agent_ring,
    "cycle": cycle,
    "slow_layering": slow_layering,
}
# Typical length of a scenario in days: used to keep its start early enough to finish in the window.
_TYPICAL_DAYS = {"structuring": 35, "fan_in": 35, "fan_out": 20, "rapid_pass_through": 100, "shared_ip_device": 70,
                 "ip_abroad": 25, "corp_to_personal": 90, "dormant_reactivation": 25, "high_risk_remittance": 100,
                 "agent_ring": 80, "cycle": 90, "slow_layering": 120}


def inject_typologies(w: World, progress: Callable[[str], None] | None = None) -> tuple[TxnBlock, list[Scenario]]:
    """Run every typology the configured number of times.

    Parameters
    ----------
    w:
        The world; the population is modified (roles, KYC of recruited accounts).
    progress:
        Called with the typology name when its scenarios are done.

    Returns
    -------
    (TxnBlock, list of Scenario)
        The laundering transactions (``scenario >= 0``; identifiers not yet attached) and the scenarios.
    """
    r = Recruiter(w, stream(w.config.seed, "typologies/recruit"))
    blocks: list[TxnBlock] = []
    days = w.clock.days
    for spec in TYPOLOGY_SPECS:
        k = w.config.scenario_count(spec)
        if k == 0:
            continue
        rng = stream(w.config.seed, f"typologies/{spec.name}")
        duration = np.full(k, min(_TYPICAL_DAYS[spec.name], days // 3))
        earliest = 0
        if spec.name == "dormant_reactivation":
            earliest = 1  # dormancy before the window is enough; no need to wait 180 days inside it
        starts = _start_days(rng, k, days, duration, earliest)
        fn = TYPOLOGY_FUNCTIONS[spec.name]
        shift = w.config.variant.typology(spec.name)
        for s in starts:
            b = fn(w, r, rng, int(s))
            blocks.append(b if shift == _DEFAULT_SHIFT else shift_scenario(w, b, r.scenarios[-1], shift))
        if progress:
            progress(spec.name)
    laundering = concat(blocks)
    return laundering, r.scenarios
