"""Legitimate behaviour: how ordinary customers of the bank use their accounts.

One function per behaviour. Each draws its events for every customer at once (numpy arrays, no
loop over transactions) and returns a :class:`~synth.ledger.TxnBlock`. Rates are per day and
multiplied by each customer's ``activity``; days come from a day profile (weekly and festival
rhythm) restricted to the customer's active window, times from an hour profile (bank-local time).

Transfers to another customer of the bank are generated as the payer's ``out`` leg and paired
with the payee's ``in`` leg by :func:`amlscore.synth.ledger.with_in_legs`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from amlscore.synth import geo
from amlscore.synth.clock import SPRING_FESTIVAL
from amlscore.synth.config import stream
from amlscore.synth.ledger import (
    CH, CPT, DIR, FEN, TAG_BIG_PURCHASE, TAG_CASH_BUSINESS, TAG_REACTIVATION, TAG_RISKY_TRADE, TAG_TRAVEL, TT,
    TxnBlock, block, concat, credit_channel, with_in_legs,
)
from amlscore.synth.population import CORPORATE, INDIVIDUAL, OCC
from amlscore.synth.variant import scale_amounts, variant_stream
from amlscore.synth.world import World

CASH_BUSINESSES = ("cash_intensive_retail", "pawnshop", "entertainment", "precious_metals", "lottery", "casino")


# ----------------------------------------------------------------------------- helpers
def yuan_to_fen(amount: np.ndarray, unit: float = 0.01) -> np.ndarray:
    """Amounts in yuan rounded to ``unit`` yuan, as integer fen, at least one unit."""
    fen_unit = max(1, int(round(unit * FEN)))
    return np.maximum(fen_unit, np.round(np.asarray(amount) * FEN / fen_unit).astype(np.int64) * fen_unit)


def lognormal(rng: np.random.Generator, median: np.ndarray | float, sigma: float, n: int) -> np.ndarray:
    """Lognormal amounts with a given median (yuan)."""
    return np.asarray(median) * np.exp(rng.normal(0.0, sigma, n))


def human_round(rng: np.random.Generator, amount: np.ndarray) -> np.ndarray:
    """Amounts people type: mostly whole hundreds or tens, sometimes exact (as fen)."""
    u = rng.random(len(amount))
    unit = np.where(u < 0.45, 100.0, np.where(u < 0.75, 10.0, np.where(u < 0.9, 1.0, 0.01)))
    unit = np.where((amount > 20_000) & (u < 0.75), 1000.0, unit)
    return np.maximum(1, np.round(amount / unit)) * unit


def poisson_days(w: World, rng: np.random.Generator, cust: np.ndarray, rate: np.ndarray | float,
                 profile: str) -> tuple[np.ndarray, np.ndarray]:
    """Event days of a Poisson process per customer within the customer's active window.

    Returns the customer index and the day of every event (events of a customer are not sorted).
    """
    pop = w.pop
    lo, hi = pop.active_from[cust], pop.active_to[cust]
    expected = np.broadcast_to(np.asarray(rate, dtype=float), cust.shape) * w.clock.share(profile, lo, hi)
    k = rng.poisson(expected)
    c = np.repeat(cust, k)
    return c, w.clock.sample_days(rng, profile, np.repeat(lo, k), np.repeat(hi, k))


def monthly_days(w: World, cust: np.ndarray, day_of_month: np.ndarray,
                 business_day: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One event per customer per month on a fixed day of the month (moved back to Friday at weekends).

    Returns, for every event within the customer's active window, the position in ``cust`` it
    belongs to, its day and its month number.
    """
    pop, clock = w.pop, w.clock
    ms = clock.month_starts()
    day = ms[None, :] + np.minimum(day_of_month, 28)[:, None].astype(np.int64) - 1
    if business_day:
        wd = (clock.start.weekday() + day) % 7
        day = day - np.where(wd == 5, 1, 0) - np.where(wd == 6, 2, 0)
    row = np.broadcast_to(np.arange(len(cust))[:, None], day.shape)
    c = cust[row]
    m = np.broadcast_to(np.arange(len(ms))[None, :], day.shape)
    ok = (day >= pop.active_from[c]) & (day < pop.active_to[c]) & (day >= 0) & (day < clock.days)
    return row[ok], day[ok].astype(np.int32), m[ok]


def festival_month(w: World) -> np.ndarray:
    """Per month of the window: whether it holds the Spring Festival (year-end bonus, red envelopes)."""
    clock = w.clock
    ms = clock.month_starts()
    out = np.zeros(len(ms), dtype=bool)
    for i, d0 in enumerate(ms):
        d = clock.date(int(d0))
        sf = SPRING_FESTIVAL.get(d.year)
        out[i] = sf is not None and (sf.year, sf.month) == (d.year, d.month)
    return out


def _active(w: World) -> tuple[np.ndarray, np.ndarray, int]:
    """Activity windows of the payees, for :func:`amlscore.synth.ledger.with_in_legs`."""
    return w.pop.active_from, w.pop.active_to, w.clock.epoch0


def _of(pop_occupation: np.ndarray, names: tuple[str, ...] | list[str]) -> np.ndarray:
    return np.isin(pop_occupation, [OCC[x] for x in names])


# ----------------------------------------------------------------------------- behaviours
def mark_innocent_dormancy(w: World, rng: np.random.Generator) -> np.ndarray:
    """Let ~2 % of long-standing individuals sleep at least 180 days before coming back.

    They are the innocent look-alikes of the ``dormant_reactivation`` typology. Returns the
    customers marked (their ``active_from`` is moved to the reactivation day).
    """
    pop, days = w.pop, w.clock.days
    if days < 220:
        return np.zeros(0, dtype=np.int64)
    cand = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.role < 0) & (pop.onboarded_day < -400))
    chosen = cand[rng.random(len(cand)) < 0.02 * w.config.variant.normal.lookalike_scale]
    pop.active_from[chosen] = rng.integers(180, days - 10, len(chosen))
    pop.active_to[chosen] = days
    pop.activity[chosen] *= 0.6
    return chosen


def reactivation_events(w: World, rng: np.random.Generator, sleepers: np.ndarray) -> TxnBlock:
    """The first move of an innocent sleeper: a deposit or transfer in (inheritance, house sale) or a withdrawal."""
    pop = w.pop
    n = len(sleepers)
    if n == 0:
        return block(0)
    day = pop.active_from[sleepers]
    big = rng.random(n) < 0.4
    amount = np.where(big, lognormal(rng, 200_000, 0.8, n), lognormal(rng, 5_000, 0.9, n))
    kind = rng.integers(0, 3, n)  # 0 transfer in, 1 cash deposit, 2 cash withdrawal
    return block(
        n, customer=sleepers, ts=w.clock.stamp(rng, day, "counter"),
        direction=np.where(kind == 2, DIR["out"], DIR["in"]), amount=yuan_to_fen(human_round(rng, amount)),
        channel=CH["counter"],
        txn_type=np.select([kind == 0, kind == 1], [TT["transfer"], TT["cash_deposit"]], TT["cash_withdrawal"]),
        cp_type=np.where(kind == 0, CPT["individual"], CPT["unknown"]),
        cp_country=np.where(kind == 0, geo.CN, -1), tag=TAG_REACTIVATION,
    )


def salaries(w: World, rng: np.random.Generator) -> TxnBlock:
    """Monthly payroll (from a corporate customer, paired, or from outside) and pensions.

    Payroll comes as one batch per employer and month; the Spring Festival month often carries
    the year-end bonus.
    """
    pop, clock = w.pop, w.clock
    n_months = len(clock.month_starts())
    payday = rng.choice([5, 8, 10, 15, 20, 25, 28], size=pop.n)
    batch_sec = clock.sample_seconds(rng, pop.n * n_months, "batch").reshape(pop.n, n_months)
    bonus_month = festival_month(w)

    workers = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.occupation == OCC["salaried"]))
    emp = pop.employer[workers]
    dom = np.where(emp >= 0, payday[np.maximum(emp, 0)], payday[workers])
    row, day, m = monthly_days(w, workers, dom)
    c = workers[row]
    e = pop.employer[c]
    internal = e >= 0
    ok = ~internal | ((day >= pop.active_from[np.maximum(e, 0)]) & (day < pop.active_to[np.maximum(e, 0)]))
    c, day, m, e, internal = c[ok], day[ok], m[ok], e[ok], internal[ok]
    amount = pop.true_income[c] / 13 * np.exp(rng.normal(0, 0.04, len(c)))
    bonus = bonus_month[m] & (rng.random(len(c)) < 0.55)
    amount = np.where(bonus, amount * rng.uniform(1.5, 3.0, len(c)), amount)
    sec = np.where(internal, batch_sec[np.maximum(e, 0), m] + rng.integers(0, 90, len(c)), batch_sec[c, m])
    ts = clock.timestamp(day, sec)
    fen = yuan_to_fen(amount, 0.01)
    payroll = block(
        int(internal.sum()), customer=e[internal], ts=ts[internal], direction=DIR["out"], amount=fen[internal],
        channel=CH["online_banking"], txn_type=TT["salary"], cp=c[internal], cp_type=CPT["individual"],
        cp_country=geo.CN,
    )
    ext = ~internal
    outside = block(
        int(ext.sum()), customer=c[ext], ts=ts[ext], direction=DIR["in"], amount=fen[ext],
        channel=credit_channel(int(ext.sum())), txn_type=TT["salary"], cp_type=CPT["corporate"],
        cp_country=geo.CN,
    )
    retired = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.occupation == OCC["retired"]))
    rrow, rday, _ = monthly_days(w, retired, rng.integers(1, 29, len(retired)), business_day=True)
    rc = retired[rrow]
    pension = block(
        len(rc), customer=rc, ts=clock.stamp(rng, rday, "batch"), direction=DIR["in"],
        amount=yuan_to_fen(pop.true_income[rc] / 12 * np.exp(rng.normal(0, 0.01, len(rc)))),
        channel=CH["counter"], txn_type=TT["salary"], cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    return concat([with_in_legs(payroll, pop.ctype, active=_active(w)), outside, pension])


def bill_payments(w: World, rng: np.random.Generator) -> TxnBlock:
    """Monthly bills: utilities, phone, insurance, rent (individuals); tax and utilities (corporates)."""
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero(pop.ctype == INDIVIDUAL)
    k = rng.choice([0, 1, 2, 3, 4], size=len(ind), p=[0.1, 0.25, 0.3, 0.25, 0.1])
    stream_cust = np.repeat(ind, k)
    stream_median = np.exp(rng.normal(np.log(180), 0.8, len(stream_cust)))
    row, day, _ = monthly_days(w, stream_cust, rng.integers(1, 29, len(stream_cust)), business_day=False)
    c = stream_cust[row]
    amount = stream_median[row] * np.exp(rng.normal(0, 0.25, len(c)))  # each bill keeps its typical amount
    old = pop.occupation[c] == OCC["retired"]
    channel = np.where(rng.random(len(c)) < np.where(old, 0.45, 0.1), CH["counter"],
                       np.where(rng.random(len(c)) < 0.7, CH["mobile_banking"], CH["online_banking"]))
    ind_bills = block(
        len(c), customer=c, ts=clock.stamp(rng, day, "online"),
        direction=DIR["out"], amount=yuan_to_fen(amount), channel=channel, txn_type=TT["bill_payment"],
        cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    corps = np.flatnonzero(pop.ctype == CORPORATE)
    kc = rng.integers(2, 5, len(corps))
    cs = np.repeat(corps, kc)
    crow, cday, _ = monthly_days(w, cs, rng.integers(5, 26, len(cs)))
    cc = cs[crow]
    corp_bills = block(
        len(cc), customer=cc, ts=clock.stamp(rng, cday, "business"), direction=DIR["out"],
        amount=yuan_to_fen(pop.true_income[cc] * 0.004 * np.exp(rng.normal(0, 0.6, len(cc)))),
        channel=np.where(rng.random(len(cc)) < 0.85, CH["online_banking"], CH["counter"]),
        txn_type=TT["bill_payment"], cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    return concat([ind_bills, corp_bills])


def card_and_online_purchases(w: World, rng: np.random.Generator) -> TxnBlock:
    """POS purchases (lunch and evening peaks, busier weekends and festivals) and online shopping."""
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero(pop.ctype == INDIVIDUAL)
    occ = pop.occupation[ind]
    base_pos = np.where(occ == OCC["retired"], 0.16, np.where(occ == OCC["farmer"], 0.08, 0.22))
    spend = np.clip(pop.true_income[ind] / 96_000, 0.2, 4.0) ** 0.35
    c, day = poisson_days(w, rng, ind, base_pos * pop.activity[ind] * spend, "retail")
    median = 70 * np.clip(pop.true_income[c] / 96_000, 0.3, 5.0) ** 0.4
    pos = block(
        len(c), customer=c, ts=clock.stamp(rng, day, "pos"), direction=DIR["out"],
        amount=yuan_to_fen(lognormal(rng, median, 1.0, len(c))), channel=CH["pos"], txn_type=TT["purchase"],
        cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    base_online = np.where(occ == OCC["student"], 0.16, np.where(occ == OCC["retired"], 0.03, 0.09))
    c2, day2 = poisson_days(w, rng, ind, base_online * pop.activity[ind], "online")
    online = block(
        len(c2), customer=c2, ts=clock.stamp(rng, day2, "online"), direction=DIR["out"],
        amount=yuan_to_fen(lognormal(rng, 95, 1.1, len(c2))),
        channel=np.where(rng.random(len(c2)) < 0.82, CH["mobile_banking"], CH["online_banking"]),
        txn_type=TT["purchase"], cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    return concat([pos, online])


def cash_use(w: World, rng: np.random.Generator) -> TxnBlock:
    """ATM and counter cash of individuals, petty cash of firms, and the daily takings of cash businesses.

    Cash businesses deposit their takings almost every day; big days go near and above the
    50,000 CNY large-cash threshold, which is legitimate (the bank files a large-value report, not
    a suspicious one).
    """
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero(pop.ctype == INDIVIDUAL)
    occ = pop.occupation[ind]
    cashy = np.where(np.isin(occ, [OCC["farmer"], OCC["retired"]]), 1.6, 1.0)
    c, day = poisson_days(w, rng, ind, 0.035 * cashy * pop.activity[ind], "retail")
    old = np.isin(pop.occupation[c], [OCC["retired"], OCC["farmer"]])
    at_counter = rng.random(len(c)) < np.where(old, 0.4, 0.08)
    amount = np.where(at_counter, lognormal(rng, 3_000, 0.9, len(c)), lognormal(rng, 800, 0.7, len(c)))
    amount = np.clip(np.round(amount / 100) * 100, 100, 49_900)
    withdrawals = block(
        len(c), customer=c, ts=np.where(at_counter, clock.stamp(rng, day, "counter"), clock.stamp(rng, day, "atm")),
        direction=DIR["out"], amount=yuan_to_fen(amount), channel=np.where(at_counter, CH["counter"], CH["atm"]),
        txn_type=TT["cash_withdrawal"], cp_type=CPT["unknown"],
    )
    depositors = np.flatnonzero((pop.ctype == INDIVIDUAL) & _of(pop.occupation, ("self_employed", "farmer", "other",
                                                                                   "precious_metals", "art_antiques")))
    c2, day2 = poisson_days(w, rng, depositors, 0.02 * pop.activity[depositors], "counter")
    amt2 = human_round(rng, lognormal(rng, 6_000, 1.0, len(c2)))
    atm2 = (amt2 <= 20_000) & (rng.random(len(c2)) < 0.5)
    deposits = block(
        len(c2), customer=c2, ts=np.where(atm2, clock.stamp(rng, day2, "atm"), clock.stamp(rng, day2, "counter")),
        direction=DIR["in"], amount=yuan_to_fen(amt2), channel=np.where(atm2, CH["atm"], CH["counter"]),
        txn_type=TT["cash_deposit"], cp_type=CPT["unknown"],
    )
    corps = np.flatnonzero(pop.ctype == CORPORATE)
    row3, day3, _ = monthly_days(w, corps, rng.integers(1, 29, len(corps)))
    c3 = corps[row3]
    petty = block(
        len(c3), customer=c3, ts=clock.stamp(rng, day3, "counter"), direction=DIR["out"],
        amount=yuan_to_fen(np.round(lognormal(rng, 8_000, 0.8, len(c3)), -2)), channel=CH["counter"],
        txn_type=TT["cash_withdrawal"], cp_type=CPT["unknown"],
    )
    shops = np.flatnonzero((pop.ctype == CORPORATE) & _of(pop.occupation, CASH_BUSINESSES))
    c4, day4 = poisson_days(w, rng, shops, 0.75, "retail")
    takings = pop.true_income[c4] * 0.5 / 280 * np.exp(rng.normal(0, 0.55, len(c4)))
    atm4 = (takings < 20_000) & (rng.random(len(c4)) < 0.3)
    takings_fen = yuan_to_fen(np.where(atm4, np.round(takings, -2), takings))
    big = takings >= 0.9 * w.rules.large_cash_threshold
    takings_block = block(
        len(c4), customer=c4, ts=np.where(atm4, clock.stamp(rng, day4, "atm"), clock.stamp(rng, day4, "counter")),
        direction=DIR["in"], amount=takings_fen, channel=np.where(atm4, CH["atm"], CH["counter"]),
        txn_type=TT["cash_deposit"], cp_type=CPT["unknown"], tag=np.where(big, TAG_CASH_BUSINESS, 0),
    )
    return concat([withdrawals, deposits, petty, takings_block])


def personal_transfers(w: World, rng: np.random.Generator) -> TxnBlock:
    """Transfers to family and friends (mostly customers of the bank) and red envelopes at Spring Festival."""
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero(pop.ctype == INDIVIDUAL)
    c, day = poisson_days(w, rng, ind, 0.055 * pop.activity[ind], "online")
    # Red envelopes: a burst in the fortnight before the New Year.
    extra_c, extra_day = _red_envelope_days(w, rng, ind)
    red = np.r_[np.zeros(len(c), bool), np.ones(len(extra_c), bool)]
    c, day = np.r_[c, extra_c], np.r_[day, extra_day]
    n = len(c)
    cp = _social_counterparty(w, rng, c)
    amount = np.where(red, rng.choice([200, 500, 666, 888, 1000, 1688, 1888, 2000, 5000], size=n),
                      human_round(rng, lognormal(rng, 600, 1.1, n)))
    out = block(
        n, customer=c, ts=clock.stamp(rng, day, "online"), direction=DIR["out"], amount=yuan_to_fen(amount),
        channel=np.where(rng.random(n) < 0.8, CH["mobile_banking"], CH["online_banking"]),
        txn_type=TT["transfer"], cp=cp, cp_type=CPT["individual"], cp_country=geo.CN,
    )
    # Money from friends at other banks.
    c2, day2 = poisson_days(w, rng, ind, 0.012 * pop.activity[ind], "online")
    incoming = block(
        len(c2), customer=c2, ts=clock.stamp(rng, day2, "online"), direction=DIR["in"],
        amount=yuan_to_fen(human_round(rng, lognormal(rng, 700, 1.1, len(c2)))),
        channel=credit_channel(len(c2)), txn_type=TT["transfer"], cp_type=CPT["individual"],
        cp_country=geo.CN,
    )
    return concat([with_in_legs(out, pop.ctype, active=_active(w)), incoming])


def _red_envelope_days(w: World, rng: np.random.Generator, ind: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    clock = w.clock
    c_all, d_all = [], []
    for year in range(clock.start.year, clock.date(clock.days - 1).year + 1):
        sf = SPRING_FESTIVAL.get(year)
        if sf is None:
            continue
        d1 = clock.day_of(sf)
        lo, hi = max(0, d1 - 12), min(clock.days, d1 + 3)
        if lo >= hi:
            continue
        k = rng.poisson(1.2 * w.pop.activity[ind])
        c = np.repeat(ind, k)
        d = rng.integers(lo, hi, len(c))
        ok = (d >= w.pop.active_from[c]) & (d < w.pop.active_to[c])
        c_all.append(c[ok])
        d_all.append(d[ok])
    if not c_all:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(c_all), np.concatenate(d_all).astype(np.int32)


def _social_counterparty(w: World, rng: np.random.Generator, c: np.ndarray) -> np.ndarray:
    """A stable circle per person: household (30 %), five friends in the province (45 %), else outside (-1)."""
    pop = w.pop
    n = len(c)
    u = rng.random(n)
    cp = np.full(n, -1, dtype=np.int64)
    # Household member: the first member, or the next one when the payer is the first.
    hh = pop.household[c]
    order = np.argsort(pop.household, kind="stable")
    hh_sorted = pop.household[order]
    first = np.searchsorted(hh_sorted, hh, side="left")
    size = np.searchsorted(hh_sorted, hh, side="right") - first
    mate = order[first + (rng.integers(0, 1 << 30, n) % np.maximum(size, 1))]
    fam = (u < 0.3) & (size > 1) & (mate != c)
    cp[fam] = mate[fam]
    # Friends: five fixed people of the same province.
    ind = np.flatnonzero(pop.ctype == INDIVIDUAL)
    prov_order = ind[np.argsort(pop.home_region[ind], kind="stable")]
    prov_sorted = pop.home_region[prov_order]
    p = pop.home_region[c]
    start = np.searchsorted(prov_sorted, p, side="left")
    count = np.searchsorted(prov_sorted, p, side="right") - start
    j = rng.integers(0, 5, n)
    friend = prov_order[start + (c.astype(np.int64) * 2_654_435_761 + j * 40_503) % np.maximum(count, 1)]
    fr = (u >= 0.3) & (u < 0.75) & (friend != c) & (count > 1)
    cp[fr] = friend[fr]
    return cp


def corporate_trade(w: World, rng: np.random.Generator) -> TxnBlock:
    """Firms pay suppliers (often firms banking here), receive from clients, and pay some individuals.

    Flows scale with turnover: bigger firms make more and larger payments.
    """
    pop, clock = w.pop, w.clock
    corps = np.flatnonzero(pop.ctype == CORPORATE)
    if len(corps) == 0:
        return block(0)
    size = np.clip(pop.true_income[corps] / 1e7, 0.02, 200.0)
    rate = np.clip(0.45 * size**0.45, 0.08, 5.0) * pop.activity[corps]
    c, day = poisson_days(w, rng, corps, rate, "business")
    per_year = np.clip(0.45 * np.clip(pop.true_income[c] / 1e7, 0.02, 200.0) ** 0.45, 0.08, 5.0) * 250
    amount = human_round(rng, pop.true_income[c] * 0.45 / per_year * np.exp(rng.normal(0, 0.8, len(c))))
    # Suppliers: a fixed set of 3-12 partner firms; ~55 % of them bank here.
    j = rng.integers(0, 3 + (c % 10))
    partner = corps[(c.astype(np.int64) * 2_654_435_761 + j * 97) % len(corps)]
    internal = (rng.random(len(c)) < 0.55) & (partner != c)
    out = block(
        len(c), customer=c, ts=clock.stamp(rng, day, "business"), direction=DIR["out"], amount=yuan_to_fen(amount),
        channel=np.where(rng.random(len(c)) < 0.9, CH["online_banking"], CH["counter"]), txn_type=TT["transfer"],
        cp=np.where(internal, partner, -1), cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    # Clients outside the bank pay in (the rest of the revenue).
    c2, day2 = poisson_days(w, rng, corps, rate * 0.8, "business")
    per_year2 = np.clip(0.45 * np.clip(pop.true_income[c2] / 1e7, 0.02, 200.0) ** 0.45, 0.08, 5.0) * 200
    amt2 = human_round(rng, pop.true_income[c2] * 0.5 / per_year2 * np.exp(rng.normal(0, 0.8, len(c2))))
    from_people = _of(pop.occupation[c2], ("cash_intensive_retail", "entertainment", "real_estate")) & (
        rng.random(len(c2)) < 0.5)
    incoming = block(
        len(c2), customer=c2, ts=clock.stamp(rng, day2, "business"), direction=DIR["in"], amount=yuan_to_fen(amt2),
        channel=credit_channel(len(c2)), txn_type=TT["transfer"],
        cp_type=np.where(from_people, CPT["individual"], CPT["corporate"]), cp_country=geo.CN,
    )
    # Reimbursements and fees paid to individuals (legitimate corporate-to-personal transfers).
    c3, day3 = poisson_days(w, rng, corps, 0.02 * pop.activity[corps], "business")
    staff = pop.employer >= 0
    staff_idx = np.flatnonzero(staff)
    to_staff = np.full(len(c3), -1, dtype=np.int64)
    if len(staff_idx):
        pick = staff_idx[rng.integers(0, len(staff_idx), len(c3))]
        mine = pop.employer[pick] == c3
        to_staff[mine] = pick[mine]
    reimb = block(
        len(c3), customer=c3, ts=clock.stamp(rng, day3, "business"), direction=DIR["out"],
        amount=yuan_to_fen(human_round(rng, lognormal(rng, 3_000, 0.9, len(c3)))), channel=CH["online_banking"],
        txn_type=TT["transfer"], cp=to_staff, cp_type=CPT["individual"], cp_country=geo.CN,
    )
    return concat([with_in_legs(out, pop.ctype, active=_active(w)), incoming, with_in_legs(reimb, pop.ctype, active=_active(w))])


def cross_border_business(w: World, rng: np.random.Generator) -> TxnBlock:
    """Remittances of import/export firms and money-service businesses, and of foreign residents.

    Trade partners include some high-risk jurisdictions (Vietnam, Nigeria, South Africa, Kenya):
    legitimate look-alikes of the ``high_risk_remittance`` typology.
    """
    pop, clock = w.pop, w.clock
    codes, weights = geo.weighted_codes(geo.TRADE_PARTNERS)
    firms = np.flatnonzero((pop.ctype == CORPORATE) & _of(pop.occupation, ("import_export", "money_service", "offshore")))
    rate = np.where(pop.occupation[firms] == OCC["money_service"], 0.5, 0.2) * pop.activity[firms]
    c, day = poisson_days(w, rng, firms, rate, "business")
    n = len(c)
    # Each firm trades with 1-4 countries.
    slot = rng.integers(0, 1 + (c % 4))
    country = codes[(np.searchsorted(np.cumsum(weights), (c * 0.618 + slot * 0.37) % 1.0)).clip(0, len(codes) - 1)]
    direction = np.where(rng.random(n) < 0.55, DIR["out"], DIR["in"])
    amount = human_round(rng, pop.true_income[c] * 0.35 / (rate.mean() * 250 + 1) * np.exp(rng.normal(0, 0.9, n)))
    high_risk = np.isin(country, [geo.COUNTRY_INDEX[x] for x in w.rules.high_risk_countries if x in geo.COUNTRY_INDEX])
    trade = block(
        n, customer=c, ts=clock.stamp(rng, day, "business"), direction=direction, amount=yuan_to_fen(amount),
        channel=np.where(direction == DIR["out"], np.where(rng.random(n) < 0.8, CH["online_banking"], CH["counter"]),
                         credit_channel(n)),
        txn_type=TT["remittance"], cp_type=CPT["corporate"], cp_country=country,
        tag=np.where(high_risk, TAG_RISKY_TRADE, 0),
    )
    # Foreign individuals send money home and receive from home; Chinese families pay tuition abroad.
    foreign = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.nationality != geo.CN))
    c2, day2 = poisson_days(w, rng, foreign, 0.03 * pop.activity[foreign], "online")
    d2 = np.where(rng.random(len(c2)) < 0.6, DIR["out"], DIR["in"])
    home = block(
        len(c2), customer=c2, ts=clock.stamp(rng, day2, "online"), direction=d2,
        amount=yuan_to_fen(human_round(rng, lognormal(rng, 8_000, 0.9, len(c2)))),
        channel=np.where(d2 == DIR["out"], CH["mobile_banking"], credit_channel(len(c2))),
        txn_type=TT["remittance"], cp_type=CPT["individual"], cp_country=pop.nationality[c2],
    )
    parents = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.true_income > 200_000) & (pop.nationality == geo.CN))
    parents = parents[rng.random(len(parents)) < 0.2]
    c3, day3 = poisson_days(w, rng, parents, 2.0 / 365, "counter")
    study = np.array([geo.COUNTRY_INDEX[x] for x in ("US", "GB", "AU", "CA", "JP", "SG", "DE", "NZ")])
    tuition = block(
        len(c3), customer=c3, ts=clock.stamp(rng, day3, "counter"), direction=DIR["out"],
        amount=yuan_to_fen(human_round(rng, lognormal(rng, 120_000, 0.5, len(c3)))),
        channel=np.where(rng.random(len(c3)) < 0.5, CH["counter"], CH["online_banking"]),
        txn_type=TT["remittance"], cp_type=CPT["corporate"], cp_country=study[c3 % len(study)],
    )
    return concat([trade, home, tuition])


def big_purchases(w: World, rng: np.random.Generator) -> TxnBlock:
    """One-off large payments (a flat, a car, a renovation): unusual for the payer but innocent."""
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.occupation != OCC["student"]))
    c, day = poisson_days(w, rng, ind, 0.03 / 365 * w.config.variant.normal.lookalike_scale, "retail")
    n = len(c)
    kind = rng.random(n)
    amount = np.where(kind < 0.35, lognormal(rng, 600_000, 0.6, n),
                      np.where(kind < 0.75, lognormal(rng, 180_000, 0.4, n), lognormal(rng, 60_000, 0.5, n)))
    developers = np.flatnonzero((pop.ctype == CORPORATE) & (pop.occupation == OCC["real_estate"]))
    sellers = np.flatnonzero((pop.ctype == CORPORATE) & (pop.occupation == OCC["private_company"]))
    cp = np.full(n, -1, dtype=np.int64)
    if len(developers):
        flat = (kind < 0.35) & (rng.random(n) < 0.5)
        cp[flat] = developers[rng.integers(0, len(developers), int(flat.sum()))]
    if len(sellers):
        car = (kind >= 0.35) & (rng.random(n) < 0.4)
        cp[car] = sellers[rng.integers(0, len(sellers), int(car.sum()))]
    out = block(
        n, customer=c, ts=clock.stamp(rng, day, "counter"), direction=DIR["out"],
        amount=yuan_to_fen(human_round(rng, amount)),
        channel=np.where(rng.random(n) < 0.5, CH["counter"], CH["online_banking"]), txn_type=TT["transfer"],
        cp=cp, cp_type=CPT["corporate"], cp_country=geo.CN, tag=TAG_BIG_PURCHASE,
    )
    return with_in_legs(out, pop.ctype, active=_active(w))


def cash_heavy(w: World, rng: np.random.Generator) -> TxnBlock:
    """A variant's cash-heavy individuals: large cash deposits and withdrawals a few times a month.

    Innocent look-alikes of structuring (amounts 10,000-45,000 CNY, some near the threshold),
    only present when the world variant sets ``normal.cash_heavy_share``.
    """
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.role < 0))
    heavy = ind[rng.random(len(ind)) < w.config.variant.normal.cash_heavy_share]
    c, day = poisson_days(w, rng, heavy, 0.12, "counter")
    n = len(c)
    amount = np.clip(np.round(lognormal(rng, 22_000, 0.45, n), -2), 10_000, 45_000 + 4_900 * rng.random(n))
    deposit = rng.random(n) < 0.55
    return block(
        n, customer=c, ts=clock.stamp(rng, day, "counter"), direction=np.where(deposit, DIR["in"], DIR["out"]),
        amount=yuan_to_fen(np.round(amount, -2)), channel=CH["counter"],
        txn_type=np.where(deposit, TT["cash_deposit"], TT["cash_withdrawal"]), cp_type=CPT["unknown"],
        tag=TAG_CASH_BUSINESS,
    )


def shift_normal(w: World, b: TxnBlock) -> TxnBlock:
    """Apply a world variant's amount and timing shifts to legitimate rows (none at the defaults).

    Each row is shifted by its payer (the customer of an ``out`` row, the counterparty of the
    ``in`` leg of an internal transfer, else the customer), so both legs of a transfer move alike:
    amounts by ``amount_scale`` times a per-payer lognormal factor of sigma ``amount_spread``; the
    own activity of ``time_shift_share`` of customers by ``time_shift_hours``.
    """
    shift, pop = w.config.variant.normal, w.pop
    if shift.amount_scale == 1.0 and shift.amount_spread == 0.0 and shift.time_shift_share == 0.0:
        return b
    rng = variant_stream(w.config.seed, "normal_shift")
    factor = shift.amount_scale * np.exp(rng.normal(0.0, shift.amount_spread, pop.n))
    late = rng.random(pop.n) < shift.time_shift_share
    payer = np.where((b.direction == DIR["in"]) & (b.cp >= 0), b.cp, b.customer).astype(np.int64)
    b.amount = scale_amounts(b.amount, factor[payer])
    moved = late[payer]
    b.ts[moved] = b.ts[moved] + int(round(shift.time_shift_hours * 3600))
    return b


def operated_by_others(w: World, rng: np.random.Generator, b: TxnBlock) -> TxnBlock:
    """Set ``operator_id`` where someone else executed a transaction at the counter.

    Agents execute some transactions of the accounts they opened; relatives execute some of the
    elderly's. Everything else has no operator.
    """
    pop = w.pop
    counter = b.channel == CH["counter"]
    out_of_own = b.direction == DIR["out"]
    agent = pop.agent[b.customer]
    by_agent = counter & (agent >= 0) & (rng.random(len(b)) < 0.15)
    b.operator[by_agent] = agent[by_agent]  # agent k is operator k (registered first)
    elderly = counter & out_of_own & (pop.occupation[b.customer] == OCC["retired"]) & (rng.random(len(b)) < 0.05)
    if elderly.any():
        relatives = w.new_operators(rng, max(1, pop.n // 50))
        b.operator[elderly] = relatives[b.customer[elderly] % len(relatives)]
    return b


def travel(w: World, rng: np.random.Generator, b: TxnBlock) -> TxnBlock:
    """Trips: during a trip abroad card use and e-banking happen abroad; domestic trips change province.

    Rewrites the travellers' existing rows that fall inside a trip (terminals and IPs of the
    destination, purchases with a foreign merchant) and adds the extra shopping of a holiday.
    Counter visits during a trip abroad are dropped (the customer is not at home).
    """
    pop, clock = w.pop, w.clock
    ind = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.role < 0) & (pop.residence == geo.CN))
    u = rng.random(len(ind))
    shares = w.config.variant.normal
    abroad, domestic = shares.travel_abroad_share, shares.travel_abroad_share + shares.travel_domestic_share
    abroad_people = ind[u < abroad]
    domestic_people = ind[(u >= abroad) & (u < domestic)]
    codes, weights = geo.weighted_codes(geo.TRAVEL_DESTINATIONS)

    trips: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # customer, start, end, region
    for people, per_year, length, foreign in ((abroad_people, 1.5, (4, 15), True), (domestic_people, 2.0, (2, 8), False)):
        if len(people) == 0:
            continue
        k = rng.poisson(per_year * clock.days / 365, len(people))
        tc = np.repeat(people, k)
        start = clock.sample_days(rng, "retail", pop.active_from[tc], pop.active_to[tc]).astype(np.int64)
        dur = rng.integers(length[0], length[1], len(tc))
        if foreign:
            region = geo.REGION_OF_COUNTRY[rng.choice(codes, size=len(tc), p=weights)]
        else:
            region = (pop.home_region[tc] + rng.integers(1, geo.N_PROVINCES, len(tc))) % geo.N_PROVINCES
        trips.append((tc, start, start + dur, region.astype(np.int64)))
    if not trips:
        return b
    tc = np.concatenate([t[0] for t in trips])
    t0 = clock.timestamp(np.concatenate([t[1] for t in trips]), 0)
    t1 = clock.timestamp(np.concatenate([t[2] for t in trips]), 0)
    tregion = np.concatenate([t[3] for t in trips])

    # Extra holiday spending: ~3 card payments a day abroad, ~1 at home.
    is_abroad_trip = tregion >= geo.N_PROVINCES
    ndays = ((t1 - t0) // 86_400).astype(np.int64)
    k = rng.poisson(np.where(is_abroad_trip, 3.0, 1.0) * ndays)
    ec = np.repeat(tc, k)
    eday = clock.day_of_ts(np.repeat(t0, k)) + (rng.random(len(ec)) * np.repeat(ndays, k)).astype(np.int64)
    keep = (eday >= 0) & (eday < clock.days)
    ec, eday = ec[keep], eday[keep]
    extra = block(
        len(ec), customer=ec, ts=clock.stamp(rng, eday, "pos"), direction=DIR["out"],
        amount=yuan_to_fen(lognormal(rng, 260, 1.0, len(ec))), channel=CH["pos"], txn_type=TT["purchase"],
        cp_type=CPT["corporate"], cp_country=geo.CN,
    )
    b = concat([b, extra])

    # Only the travellers' rows can change: work on those, then write them back.
    mine = np.flatnonzero(np.isin(b.customer, tc))
    whole, b = b, b.take(mine)
    # Which trip (if any) each row of a traveller falls in: trips of one customer do not matter much
    # if they overlap; the latest-starting one wins.
    order = np.lexsort((t0, tc))
    tc, t0, t1, tregion = tc[order], t0[order], t1[order], tregion[order]
    key_trip = tc.astype(np.int64) * (1 << 34) + (t0 - clock.epoch0 + (1 << 32))
    key_row = b.customer.astype(np.int64) * (1 << 34) + (b.ts - clock.epoch0 + (1 << 32))
    pos_ = np.searchsorted(key_trip, key_row, side="right") - 1
    valid = pos_ >= 0
    p = np.maximum(pos_, 0)
    inside = valid & (tc[p] == b.customer) & (b.ts < t1[p]) & (b.ts >= t0[p])
    region = np.where(inside, tregion[p], -1)
    abroad = inside & (region >= geo.N_PROVINCES)
    # Cash deposits/withdrawals at the counter need the customer at home: drop those made abroad.
    dropped = abroad & (b.channel == CH["counter"]) & (b.direction == DIR["out"]) & np.isin(
        b.txn_type, [TT["cash_withdrawal"], TT["cash_deposit"], TT["bill_payment"]])
    country = np.where(abroad, region - geo.N_PROVINCES, geo.CN)
    own_channel = np.isin(b.channel, [CH["pos"], CH["atm"], CH["online_banking"], CH["mobile_banking"]])
    own_channel &= b.direction == DIR["out"]
    move = inside & own_channel & ~dropped
    term = move & np.isin(b.channel, [CH["pos"], CH["atm"]])
    if term.any():
        is_pos = b.channel[term] == CH["pos"]
        r = region[term]
        b.terminal[term] = np.where(is_pos, w.pos_terminal(rng, r), w.atm_terminal(rng, r))
        b.terminal_region[term] = r
    purchase_abroad = move & abroad & (b.txn_type == TT["purchase"]) & (b.channel == CH["pos"])
    b.cp_country[purchase_abroad] = country[purchase_abroad]
    e = move & np.isin(b.channel, [CH["online_banking"], CH["mobile_banking"]])
    if e.any():
        ab = abroad[e]
        r = region[e]
        ip = np.where(ab, geo.foreign_ip(rng, country[e]), w.mobile_ip(rng, np.minimum(r, geo.N_PROVINCES - 1)))
        b.ip[e] = ip
        b.ip_country[e] = country[e]
        b.ip_region[e] = np.where(ab, -1, r)
        b.device[e] = w.pop.phone_device[b.customer[e]]
    b.tag[move & abroad] = TAG_TRAVEL
    for name in ("terminal", "terminal_region", "cp_country", "ip", "ip_country", "ip_region", "device", "tag"):
        getattr(whole, name)[mine] = getattr(b, name)
    keep = np.ones(len(whole), dtype=bool)
    keep[mine[dropped]] = False
    return whole.take(keep) if dropped.any() else whole


BEHAVIOURS: tuple[tuple[str, Callable[[World, np.random.Generator], TxnBlock]], ...] = (
    ("salaries", salaries),
    ("bill_payments", bill_payments),
    ("card_and_online_purchases", card_and_online_purchases),
    ("cash_use", cash_use),
    ("personal_transfers", personal_transfers),
    ("corporate_trade", corporate_trade),
    ("cross_border_business", cross_border_business),
    ("big_purchases", big_purchases),
)


def generate_normal(w: World, progress: Callable[[str], None] | None = None) -> TxnBlock:
    """All legitimate activity of the bank.

    Parameters
    ----------
    w:
        The world (population already carries the laundering roles, whose normal activity is
        reduced by the typologies).
    progress:
        Called with the name of each behaviour once it is done.

    Returns
    -------
    TxnBlock
        Legitimate transactions (``scenario == -1``), identifiers attached.
    """
    seed = w.config.seed
    shift = w.config.variant.normal
    if shift.activity_scale != 1.0:
        w.pop.activity = w.pop.activity * shift.activity_scale
    sleepers = mark_innocent_dormancy(w, stream(seed, "normal/dormancy"))
    blocks = [reactivation_events(w, stream(seed, "normal/reactivation"), sleepers)]
    for name, fn in BEHAVIOURS:
        blocks.append(fn(w, stream(seed, f"normal/{name}")))
        if progress:
            progress(name)
    if shift.cash_heavy_share > 0:
        blocks.append(cash_heavy(w, variant_stream(seed, "cash_heavy")))
    b = concat(blocks)
    b = shift_normal(w, b)
    b = travel(w, stream(seed, "normal/travel"), b)
    b = w.attach_identifiers(b, stream(seed, "normal/identifiers"))
    b = operated_by_others(w, stream(seed, "normal/operators"), b)
    if progress:
        progress("travel_and_identifiers")
    return b
