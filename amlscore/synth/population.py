"""The customers: KYC attributes as the bank holds them, plus hidden traits that drive behaviour.

A :class:`Population` is columnar (one numpy array per attribute). The KYC columns become the
contract's ``customers`` table; the hidden traits (household, employer, devices, home IP,
activity level, active window) are only used to generate transactions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amlscore.contract.schema import ID_DOCUMENT_TYPES, ONBOARDING_CHANNELS, OCCUPATIONS_OR_INDUSTRIES
from amlscore.synth import geo
from amlscore.synth.clock import Clock
from amlscore.synth.config import SynthConfig, stream

OCC = {o: i for i, o in enumerate(OCCUPATIONS_OR_INDUSTRIES)}
IDDOC = {d: i for i, d in enumerate(ID_DOCUMENT_TYPES)}
ONB = {c: i for i, c in enumerate(ONBOARDING_CHANNELS)}
INDIVIDUAL, CORPORATE = 0, 1
CORPORATE_SHARE = 0.12
MAX_ACCOUNTS = 3

# Occupation mix of individuals and industry mix of corporates (weights, normalised below).
INDIVIDUAL_OCCUPATIONS: tuple[tuple[str, float], ...] = (
    ("salaried", 44.0), ("self_employed", 12.0), ("student", 8.0), ("retired", 14.0), ("farmer", 9.0),
    ("other", 9.5), ("intermediary", 1.0), ("entertainment", 0.6), ("art_antiques", 0.3), ("auction", 0.2),
    ("precious_metals", 0.3), ("lottery", 0.2), ("money_service", 0.2), ("casino", 0.1), ("real_estate", 0.6),
)
CORPORATE_INDUSTRIES: tuple[tuple[str, float], ...] = (
    ("private_company", 54.0), ("soe", 5.0), ("listed_company", 3.0), ("state_organ", 3.0),
    ("import_export", 8.0), ("real_estate", 5.0), ("cash_intensive_retail", 9.0), ("precious_metals", 1.5),
    ("money_service", 1.0), ("entertainment", 2.5), ("pawnshop", 1.0), ("casino", 0.2), ("lottery", 0.5),
    ("auction", 0.5), ("art_antiques", 0.5), ("offshore", 1.0), ("arms", 0.1), ("intermediary", 2.0),
    ("other", 3.0),
)
# Median declared annual income (individuals) or turnover (corporates), CNY.
MEDIAN_INCOME: dict[str, float] = {
    "salaried": 96_000, "self_employed": 150_000, "student": 8_000, "retired": 48_000, "farmer": 30_000,
    "other": 60_000, "intermediary": 180_000, "entertainment": 120_000, "art_antiques": 250_000,
    "auction": 200_000, "precious_metals": 220_000, "lottery": 90_000, "money_service": 160_000,
    "casino": 140_000, "real_estate": 200_000,
}
MEDIAN_TURNOVER: dict[str, float] = {
    "private_company": 6e6, "soe": 3e8, "listed_company": 8e8, "state_organ": 5e7, "import_export": 2e7,
    "real_estate": 6e7, "cash_intensive_retail": 4e6, "precious_metals": 2e7, "money_service": 3e7,
    "entertainment": 8e6, "pawnshop": 5e6, "casino": 3e7, "lottery": 6e6, "auction": 1e7,
    "art_antiques": 5e6, "offshore": 2e7, "arms": 5e7, "intermediary": 4e6, "other": 5e6,
}


@dataclass
class Population:
    """All customers, one array element per customer (index = position, not the customer_id).

    KYC columns follow the contract; dates are ``datetime64[D]`` (NaT = empty), ``-1`` or NaN
    mean empty elsewhere. Behaviour traits are documented inline.
    """

    n: int
    ctype: np.ndarray  # 0 individual, 1 corporate
    occupation: np.ndarray  # index into OCCUPATIONS_OR_INDUSTRIES
    birth: np.ndarray  # datetime64[D], NaT = empty
    nationality: np.ndarray  # country index
    residence: np.ndarray  # country index
    home_region: np.ndarray  # region index (a province)
    id_doc: np.ndarray
    pep: np.ndarray
    watchlist: np.ndarray
    onboarding: np.ndarray  # index into ONBOARDING_CHANNELS
    agent: np.ndarray  # agent index, -1 = none
    phone: np.ndarray  # int64 phone hash
    emergency: np.ndarray  # int64 phone hash, -1 = empty
    layers: np.ndarray  # ownership layers, -1 = empty
    refused_cdd: np.ndarray
    resident: np.ndarray
    income: np.ndarray  # CNY, NaN = empty
    onboarded_day: np.ndarray  # day index (negative = before the window)
    # --- hidden behaviour traits ---
    true_income: np.ndarray  # what the customer really earns or turns over (declared or not)
    n_accounts: np.ndarray
    accounts: np.ndarray  # int64 [n, MAX_ACCOUNTS] account numbers, -1 = none
    home_ip: np.ndarray  # broadband / office IPv4 (households share one)
    pc_device: np.ndarray  # device index or -1
    phone_device: np.ndarray  # device index
    household: np.ndarray  # household index (individuals), -1 for corporates
    employer: np.ndarray  # employing customer index, -1 = external or none
    activity: np.ndarray  # multiplier of every normal behaviour rate
    active_from: np.ndarray  # first day with normal activity
    active_to: np.ndarray  # day after the last day with normal activity
    role: np.ndarray  # laundering scenario index, -1 = normal customer
    device_keys: np.ndarray  # int64 per device index, formatted as its device_id
    agent_keys: np.ndarray  # int64 per agent index, formatted as its agent_id

    @property
    def is_corp(self) -> np.ndarray:
        return self.ctype == CORPORATE

    def new_devices(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """Register ``k`` new devices (e.g. a mule operator's phones) and return their indices."""
        start = len(self.device_keys)
        self.device_keys = np.concatenate([self.device_keys, rng.integers(1, 2**62, k, dtype=np.int64)])
        return np.arange(start, start + k, dtype=np.int32)

    def new_agents(self, rng: np.random.Generator, k: int) -> np.ndarray:
        """Register ``k`` new account-opening agents and return their indices."""
        start = len(self.agent_keys)
        self.agent_keys = np.concatenate([self.agent_keys, rng.integers(10_000, 99_999, k, dtype=np.int64)])
        return np.arange(start, start + k, dtype=np.int32)


def _pick(rng: np.random.Generator, table: tuple[tuple[str, float], ...], n: int, index: dict[str, int]) -> np.ndarray:
    names = [name for name, _ in table]
    w = np.array([x for _, x in table], dtype=float)
    choice = rng.choice(len(names), size=n, p=w / w.sum())
    return np.array([index[x] for x in names], dtype=np.int16)[choice]


def build_population(config: SynthConfig, clock: Clock) -> Population:
    """Draw every customer's KYC record and behaviour traits.

    Parameters
    ----------
    config:
        Size and seed.
    clock:
        The window's calendar (onboarding dates are relative to its first day).

    Returns
    -------
    Population
        ``config.customers`` customers, ~88 % individuals and ~12 % corporates, in no particular order.
    """
    rng = stream(config.seed, "population")
    n = config.customers
    ctype = (rng.random(n) < CORPORATE_SHARE).astype(np.int8)
    corp = ctype == CORPORATE
    occupation = np.where(
        corp, _pick(rng, CORPORATE_INDUSTRIES, n, OCC), _pick(rng, INDIVIDUAL_OCCUPATIONS, n, OCC)
    ).astype(np.int8)

    home_region = rng.choice(geo.N_PROVINCES, size=n, p=geo.PROVINCE_WEIGHTS).astype(np.int16)
    nationality, residence, id_doc, resident = _nationality(rng, n, corp, occupation)
    birth = _birth_dates(rng, clock, corp, occupation)
    onboarded_day = _onboarding_days(rng, clock, corp, birth)
    onboarding, agent, agent_keys = _onboarding_channels(rng, n, corp)
    true_income, income = _incomes(rng, corp, occupation)

    layers = np.full(n, -1, dtype=np.int16)
    k = rng.choice(5, size=n, p=[0.6, 0.25, 0.1, 0.035, 0.015]) + 1
    offshore = occupation == OCC["offshore"]
    k = np.where(offshore, np.minimum(k + 2, 6), k)
    layers[corp] = k[corp]
    layers[corp & (rng.random(n) < 0.06)] = -1  # some corporates never disclosed their structure

    pep_p = np.where(np.isin(occupation, [OCC["state_organ"], OCC["soe"]]), 0.04, 0.004)
    pep = rng.random(n) < pep_p
    watchlist = rng.random(n) < 0.0015
    refused_cdd = rng.random(n) < 0.003

    phone = rng.integers(1, 2**62, n, dtype=np.int64)
    household = _households(rng, corp, home_region)
    emergency = _emergency_contacts(rng, corp, household, phone)

    n_accounts = np.where(corp, rng.choice([1, 2, 3], size=n, p=[0.5, 0.35, 0.15]),
                          rng.choice([1, 2, 3], size=n, p=[0.7, 0.24, 0.06])).astype(np.int8)
    accounts = _account_numbers(rng, n, corp, n_accounts)

    # Households share their broadband IP; corporates have an office IP.
    ip_of_household = geo.cn_ip(rng, home_region)
    home_ip = np.where(household >= 0, ip_of_household[np.maximum(household, 0)], geo.cn_ip(rng, home_region))
    # Devices: one phone each; a PC for many (corporates bank from office PCs with a USB key).
    has_pc = np.where(corp, True, rng.random(n) < 0.35)
    phone_device = np.arange(n, dtype=np.int32)
    pc_device = np.full(n, -1, dtype=np.int32)
    pc_device[has_pc] = n + np.arange(int(has_pc.sum()), dtype=np.int32)
    # Some elderly customers bank on a relative's phone: realistic device sharing, not laundering.
    elderly = (occupation == OCC["retired"]) & (household >= 0)
    share = elderly & (rng.random(n) < 0.15)
    first_in_household = _first_member(household)
    phone_device[share] = phone_device[first_in_household[household[share]]]
    device_keys = rng.integers(1, 2**62, n + int(has_pc.sum()), dtype=np.int64)

    activity = np.exp(rng.normal(0.0, 0.45, n))
    active_from = np.clip(onboarded_day, 0, clock.days).astype(np.int32)
    active_to = np.full(n, clock.days, dtype=np.int32)
    closed = rng.random(n) < 0.02  # accounts closed during the window
    active_to[closed] = rng.integers(clock.days // 3, clock.days, int(closed.sum()))
    active_to = np.maximum(active_to, active_from + 1)

    pop = Population(
        n=n, ctype=ctype, occupation=occupation, birth=birth, nationality=nationality, residence=residence,
        home_region=home_region, id_doc=id_doc, pep=pep, watchlist=watchlist, onboarding=onboarding,
        agent=agent, phone=phone, emergency=emergency, layers=layers, refused_cdd=refused_cdd,
        resident=resident, income=income, onboarded_day=onboarded_day, true_income=true_income,
        n_accounts=n_accounts, accounts=accounts, home_ip=home_ip, pc_device=pc_device,
        phone_device=phone_device, household=household, employer=np.full(n, -1, dtype=np.int32),
        activity=activity, active_from=active_from, active_to=active_to, role=np.full(n, -1, dtype=np.int32),
        device_keys=device_keys, agent_keys=agent_keys,
    )
    pop.employer = _employers(rng, pop)
    return pop


def _nationality(rng: np.random.Generator, n: int, corp: np.ndarray, occupation: np.ndarray):
    """Nationality, residence, ID document and residency: ~2 % non-residents."""
    nationality = np.full(n, geo.CN, dtype=np.int16)
    residence = np.full(n, geo.CN, dtype=np.int16)
    id_doc = np.where(corp, IDDOC["business_license"], IDDOC["resident_id"]).astype(np.int8)
    resident = np.ones(n, dtype=bool)

    codes, w = geo.weighted_codes(geo.FOREIGN_NATIONALITIES)
    foreign = ~corp & (rng.random(n) < 0.03)
    nationality[foreign] = rng.choice(codes, size=int(foreign.sum()), p=w)
    hmt = np.isin(nationality, [geo.COUNTRY_INDEX[c] for c in ("HK", "MO", "TW")])
    id_doc[foreign & hmt] = IDDOC["hmt_permit"]
    id_doc[foreign & ~hmt] = np.where(rng.random(int((foreign & ~hmt).sum())) < 0.7,
                                      IDDOC["passport"], IDDOC["foreign_id"])
    # Most foreigners who bank here live in China; some only visit (non-resident, residence abroad).
    visiting = foreign & (rng.random(n) < 0.45)
    resident[visiting] = False
    residence[visiting] = nationality[visiting]
    # A few Chinese nationals living abroad.
    expat = ~corp & ~foreign & (rng.random(n) < 0.006)
    resident[expat] = False
    residence[expat] = rng.choice(codes, size=int(expat.sum()), p=w)
    id_doc[expat] = IDDOC["passport"]
    id_doc[~corp & (rng.random(n) < 0.003)] = IDDOC["other"]

    # Offshore companies are registered abroad; a few other corporates too (HK subsidiaries).
    offshore = corp & (occupation == OCC["offshore"])
    reg = np.array([geo.COUNTRY_INDEX[c] for c in ("VG", "KY", "HK", "SG", "PA", "CY")], dtype=np.int16)
    nationality[offshore] = rng.choice(reg, size=int(offshore.sum()), p=[0.35, 0.25, 0.25, 0.07, 0.04, 0.04])
    resident[offshore] = False
    residence[offshore] = nationality[offshore]
    hk_sub = corp & ~offshore & (rng.random(n) < 0.01)
    nationality[hk_sub] = geo.COUNTRY_INDEX["HK"]
    id_doc[corp & (rng.random(n) < 0.03)] = IDDOC["other"]
    return nationality, residence, id_doc, resident


def _birth_dates(rng: np.random.Generator, clock: Clock, corp: np.ndarray, occupation: np.ndarray) -> np.ndarray:
    """Birth dates by occupation (students young, retired old); incorporation dates for corporates."""
    n = len(corp)
    age = rng.uniform(22, 64, n)
    age = np.where(occupation == OCC["student"], rng.uniform(17.5, 27, n), age)
    age = np.where(occupation == OCC["retired"], rng.uniform(55, 92, n), age)
    age = np.where(corp, rng.gamma(2.0, 5.0, n) + 0.3, age)  # company age in years
    start = np.datetime64(clock.start, "D")
    birth = start - (age * 365.25).astype(np.int64).astype("timedelta64[D]")
    empty = np.where(corp, rng.random(n) < 0.05, rng.random(n) < 0.01)
    birth[empty] = np.datetime64("NaT")
    return birth


def _onboarding_days(rng: np.random.Generator, clock: Clock, corp: np.ndarray, birth: np.ndarray) -> np.ndarray:
    """Onboarding day relative to the window: mostly years before, ~8 % during the window."""
    n = len(corp)
    u = rng.random(n)
    before = -rng.integers(1, 15 * 365, n)
    recent = -rng.integers(1, 365, n)
    during = rng.integers(0, max(1, clock.days - 20), n)
    day = np.where(u < 0.72, before, np.where(u < 0.92, recent, during)).astype(np.int64)
    # Not before age 16 (individuals) or incorporation (corporates).
    start = np.datetime64(clock.start, "D")
    ok = ~np.isnat(birth)
    earliest = np.zeros(n, dtype=np.int64)
    earliest[ok] = (birth[ok] - start).astype(np.int64) + np.where(corp[ok], 0, 16 * 365)
    day = np.where(ok & (day < earliest), np.minimum(earliest + rng.integers(0, 400, n), clock.days - 1), day)
    return day.astype(np.int32)


def _onboarding_channels(rng: np.random.Generator, n: int, corp: np.ndarray):
    """Channel of onboarding and, for ~5 % agent/intermediary-opened accounts, the agent."""
    p_ind = [0.56, 0.40, 0.03, 0.01]
    p_corp = [0.81, 0.12, 0.04, 0.03]
    onboarding = np.where(corp, rng.choice(4, size=n, p=p_corp), rng.choice(4, size=n, p=p_ind)).astype(np.int8)
    via_agent = np.isin(onboarding, [ONB["agent"], ONB["intermediary"]])
    # Legitimate agents (payroll-card agents, brokers) each open a few to a few dozen accounts.
    n_agents = max(3, int(via_agent.sum() / 12))
    popularity = rng.pareto(1.2, n_agents) + 1
    agent = np.full(n, -1, dtype=np.int32)
    agent[via_agent] = rng.choice(n_agents, size=int(via_agent.sum()), p=popularity / popularity.sum())
    agent_keys = rng.integers(10_000, 99_999, n_agents, dtype=np.int64)
    return onboarding, agent, agent_keys


def _incomes(rng: np.random.Generator, corp: np.ndarray, occupation: np.ndarray):
    """True income or turnover (drives amounts) and the declared one (noisy, sometimes empty)."""
    names = OCCUPATIONS_OR_INDUSTRIES
    med_i = np.array([MEDIAN_INCOME.get(o, 60_000) for o in names])
    med_c = np.array([MEDIAN_TURNOVER.get(o, 5e6) for o in names])
    n = len(corp)
    true_income = np.where(corp, med_c[occupation] * np.exp(rng.normal(0, 1.0, n)),
                           med_i[occupation] * np.exp(rng.normal(0, 0.5, n)))
    declared = np.round(true_income * np.exp(rng.normal(-0.05, 0.25, n)), -3)
    declared[~corp & (occupation == OCC["student"]) & (rng.random(n) < 0.5)] = 0.0
    empty = np.where(corp, rng.random(n) < 0.08, rng.random(n) < 0.13)
    declared[empty] = np.nan
    return true_income, declared


def _households(rng: np.random.Generator, corp: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Group individuals of a province into households of 1-4 people (they share a home IP)."""
    n = len(corp)
    household = np.full(n, -1, dtype=np.int32)
    ind = np.flatnonzero(~corp)
    order = ind[np.lexsort((rng.random(len(ind)), region[ind]))]
    sizes = rng.choice([1, 2, 3, 4], size=len(order), p=[0.45, 0.3, 0.17, 0.08])
    hh_of_slot = np.repeat(np.arange(len(sizes)), sizes)[: len(order)]
    # A household never spans two provinces: start a new one where the province changes.
    new_region = np.r_[True, region[order][1:] != region[order][:-1]]
    boundary = np.r_[True, hh_of_slot[1:] != hh_of_slot[:-1]] | new_region
    household[order] = np.cumsum(boundary) - 1
    return household


def _first_member(household: np.ndarray) -> np.ndarray:
    """For each household index, the index of its first member."""
    k = int(household.max()) + 1 if (household >= 0).any() else 0
    first = np.full(k, -1, dtype=np.int64)
    members = np.flatnonzero(household >= 0)
    # Reverse order so the smallest index wins.
    first[household[members[::-1]]] = members[::-1]
    return first


def _emergency_contacts(rng: np.random.Generator, corp: np.ndarray, household: np.ndarray,
                        phone: np.ndarray) -> np.ndarray:
    """Emergency contact phones: often a household member, else someone outside the bank."""
    n = len(corp)
    emergency = rng.integers(1, 2**62, n, dtype=np.int64)
    first = _first_member(household)
    ind = household >= 0
    head = np.where(ind, first[np.maximum(household, 0)], -1)
    use_family = ind & (head != np.arange(n)) & (rng.random(n) < 0.6)
    emergency[use_family] = phone[head[use_family]]
    empty = np.where(corp, rng.random(n) < 0.2, rng.random(n) < 0.25)
    emergency[empty] = -1
    return emergency


def _account_numbers(rng: np.random.Generator, n: int, corp: np.ndarray, n_accounts: np.ndarray) -> np.ndarray:
    """Card numbers (19 digits, BIN 62...) for individuals, 17-digit settlement accounts for corporates."""
    card = 6_217_000_000_000_000_000 + rng.integers(0, 9_999_999_999_999, (n, MAX_ACCOUNTS), dtype=np.int64) * 100
    card += rng.integers(0, 100, (n, MAX_ACCOUNTS), dtype=np.int64)
    settle = 10**16 + rng.integers(0, 9 * 10**16, (n, MAX_ACCOUNTS), dtype=np.int64)
    acc = np.where(corp[:, None], settle, card)
    acc[np.arange(MAX_ACCOUNTS)[None, :] >= n_accounts[:, None]] = -1
    return acc


def _employers(rng: np.random.Generator, pop: Population) -> np.ndarray:
    """Employer of salaried individuals: a corporate customer of the bank for ~40 %, else external."""
    employer = np.full(pop.n, -1, dtype=np.int32)
    payers = np.flatnonzero(pop.is_corp & ~np.isin(pop.occupation, [OCC["offshore"], OCC["casino"]]))
    workers = np.flatnonzero((pop.ctype == INDIVIDUAL) & (pop.occupation == OCC["salaried"]))
    if len(payers) == 0 or len(workers) == 0:
        return employer
    internal = workers[rng.random(len(workers)) < 0.4]
    size = np.sqrt(pop.true_income[payers])  # bigger firms employ more people
    employer[internal] = rng.choice(payers, size=len(internal), p=size / size.sum())
    return employer


def customer_rank(pop: Population, seed: int) -> np.ndarray:
    """Customer number order: by onboarding date (banks number customers as they come)."""
    rng = stream(seed, "customer-ids")
    return np.lexsort((rng.random(pop.n), pop.onboarded_day))
