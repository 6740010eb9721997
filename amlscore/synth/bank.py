"""The synthetic bank end to end: population, behaviour, laundering, reports, contract frames.

:func:`generate_bank` is deterministic: every random draw comes from a generator seeded from
``config.seed`` and the name of the step (:func:`amlscore.synth.config.stream`), rows are ordered by
values only (never by dict or set iteration), and nothing reads the clock of the machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.contract.schema import (
    CHANNELS, COUNTERPARTY_TYPES, CUSTOMER_TYPES, CUSTOMERS, DIRECTIONS, GROUND_TRUTH_FILE, ID_DOCUMENT_TYPES,
    LABELS, OCCUPATIONS_OR_INDUSTRIES, ONBOARDING_CHANNELS, REPORTS, TRANSACTIONS, TXN_TYPES,
)
from amlscore.synth import geo
from amlscore.synth.clock import Clock
from amlscore.synth.config import DEFAULT_TYPOLOGIES, TYPOLOGIES, SynthConfig, load_bank_rules, stream
from amlscore.synth.ledger import FEN, TT, TxnBlock, concat
from amlscore.synth.normal import BEHAVIOURS, generate_normal
from amlscore.synth.population import Population, build_population, customer_rank
from amlscore.synth.reports import NO_DAY, ReportRows, build_reports, covered
from amlscore.synth.typologies import Scenario, inject_typologies
from amlscore.synth.world import World

GROUND_TRUTH_COLUMNS = ("txn_id", "customer_id", "typology", "scenario_id", "reported")
_STR = pd.StringDtype("pyarrow")

#: Steps reported to a progress callback, in order (for a progress bar's total).
STEPS: tuple[str, ...] = (
    ("population",) + DEFAULT_TYPOLOGIES + tuple(name for name, _ in BEHAVIOURS)
    + ("travel_and_identifiers", "ledger", "reports", "frames")
)


@dataclass
class SyntheticBank:
    """A generated bank: the three contract tables, the answer key and the scenarios behind it.

    Attributes
    ----------
    customers, transactions, reports:
        Contract tables with native dtypes (strings, bools, datetimes, floats), ready for
        :func:`amlscore.contract.load.dataset_from_frames`.
    ground_truth:
        One row per laundering transaction: txn_id, customer_id, typology, scenario_id, reported.
    scenarios:
        The injected scenarios.
    config:
        What was asked for.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    reports: pd.DataFrame
    ground_truth: pd.DataFrame
    scenarios: list[Scenario]
    config: SynthConfig
    timings: dict[str, float] = field(default_factory=dict)

    def summary(self) -> dict[str, object]:
        """Counts for people: sizes, label rate and per-typology numbers."""
        gt = self.ground_truth
        per = {}
        for name in TYPOLOGIES:
            if not self.config.generates(name):
                continue
            rows = gt[gt["typology"] == name]
            per[name] = {
                "scenarios": sum(1 for s in self.scenarios if s.typology == name),
                "transactions": int(len(rows)),
                "customers": int(rows["customer_id"].nunique()),
                "reported_transactions": int(rows["reported"].sum()),
            }
        n_tx = len(self.transactions)
        labels = self.reports["label"].astype(str)
        return {
            "customers": len(self.customers),
            "transactions": n_tx,
            "laundering_transactions": int(len(gt)),
            "laundering_rate": float(len(gt) / n_tx) if n_tx else 0.0,
            "reports": len(self.reports),
            "suspicious_reports": int((labels == "suspicious").sum()),
            "not_suspicious_reports": int((labels == "not_suspicious").sum()),
            "period_reports": int(self.reports["txn_id"].isna().sum()),
            "per_typology": per,
        }


def generate_bank(config: SynthConfig, progress: Callable[[str], None] | None = None) -> SyntheticBank:
    """Generate a synthetic bank.

    Parameters
    ----------
    config:
        Size, window and seed (see :class:`amlscore.synth.config.SynthConfig`).
    progress:
        Called with the name of each step in :data:`STEPS` once it is done.

    Returns
    -------
    SyntheticBank
        Contract tables, ground truth and scenarios; the same config gives identical frames.

    Examples
    --------
    >>> from synth import SynthConfig, generate_bank
    >>> bank = generate_bank(SynthConfig(customers=300, days=60, seed=7))
    >>> sorted(bank.ground_truth["typology"].unique())[:2]
    ['agent_ring', 'corp_to_personal']
    """
    tick = progress or (lambda _name: None)
    rules = load_bank_rules()
    clock = Clock(config.start, config.days, rules.utc_offset_hours)
    pop = build_population(config, clock)
    world = World(pop, clock, rules, config)
    tick("population")

    laundering, scenarios = inject_typologies(world, tick)
    laundering = world.attach_identifiers(laundering, stream(config.seed, "typologies/identifiers"))
    normal = generate_normal(world, tick)
    ledger = _finalise_ledger(world, concat([normal, laundering]))
    tick("ledger")

    day = clock.day_of_ts(ledger.ts)
    reports = build_reports(config.seed, clock, ledger.customer, ledger.scenario, ledger.ts, ledger.tag, pop.role,
                            scenarios, TYPOLOGIES)
    tick("reports")

    cust_ids = _customer_ids(pop, config.seed)
    txn_ids = _txn_ids(len(ledger))
    customers = _customers_frame(pop, clock, cust_ids)
    transactions = _transactions_frame(world, ledger, cust_ids, txn_ids)
    reports_frame = _reports_frame(reports, clock, cust_ids, txn_ids)
    ground_truth = _ground_truth(ledger, day, reports, cust_ids, txn_ids, scenarios)
    tick("frames")
    return SyntheticBank(customers, transactions, reports_frame, ground_truth, scenarios, config)


def write_bank(bank: SyntheticBank, out: str | Path, fmt: str = "parquet") -> Path:
    """Validate the bank against the contract and write it, with ``ground_truth.csv`` beside it.

    Parameters
    ----------
    bank:
        A generated bank.
    out:
        Target folder (absent, empty, or a data set written before).
    fmt:
        ``parquet`` or ``csv`` for the contract tables (the ground truth is always CSV).

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    amlscore.contract.problems.ContractViolationError
        If the generated tables broke the contract (a bug of the generator).
    amlscore.contract.load.DataFolderError
        If ``out`` cannot be replaced.
    """
    from amlscore.contract.load import dataset_from_frames, write_dataset

    dataset = dataset_from_frames(bank.customers, bank.transactions, bank.reports)
    return write_dataset(dataset, out, fmt=fmt, extra_files={GROUND_TRUTH_FILE: bank.ground_truth})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- the ledger
def _finalise_ledger(w: World, b: TxnBlock) -> TxnBlock:
    """Keep rows inside the window, order them by time and fix account slots.

    Ties in time (the two legs of a transfer) are broken by a seeded random key, so txn_id order
    says nothing about which leg or which kind of activity came first.
    """
    clock, pop = w.clock, w.pop
    lo, hi = clock.epoch0, clock.epoch0 + clock.days * 86_400
    inside = (b.ts >= lo) & (b.ts < hi)
    b = b.take(inside)
    b.account = np.minimum(b.account, pop.n_accounts[b.customer] - 1).astype(np.int8)
    internal = b.cp >= 0
    b.cp_slot = np.where(internal, np.minimum(b.cp_slot, pop.n_accounts[np.maximum(b.cp, 0)] - 1), -1).astype(np.int8)
    # One int64 key (seconds, then 20 random bits) sorts much faster than a two-key lexsort.
    tiebreak = stream(w.config.seed, "ledger/order").integers(0, 1 << 20, len(b), dtype=np.int64)
    order = np.argsort(((b.ts - lo) << 20) | tiebreak, kind="stable")
    return b.take(order)


def _customer_ids(pop: Population, seed: int) -> pa.Array:
    """Customer numbers in onboarding order, e.g. ``C000001234``."""
    rank = np.empty(pop.n, dtype=np.int64)
    rank[customer_rank(pop, seed)] = np.arange(pop.n)
    base = 100_000 if pop.n < 900_000 else 0
    return _prefixed("C", base + rank + 1, 9)


def _txn_ids(n: int) -> pa.Array:
    """Transaction numbers in time order, e.g. ``T0000000001``."""
    return _prefixed("T", np.arange(1, n + 1, dtype=np.int64), 10)


def _prefixed(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(pa.scalar(prefix), digits, "")


def _take(values: pa.Array, idx: np.ndarray) -> pa.Array:
    """``values[idx]`` with -1 as an empty cell (null)."""
    idx = np.asarray(idx, dtype=np.int64)
    mask = idx < 0
    return values.take(pa.array(np.where(mask, 0, idx), mask=mask))


def _series(values: pa.Array | list[str]) -> pd.Series:
    return pd.Series(pd.array(values if isinstance(values, pa.Array) else pa.array(values, pa.string()), dtype=_STR))


def _codes(table: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    return _series(_take(pa.array(list(table), pa.string()), codes))


def _hex_ids(prefix: str, keys: np.ndarray, width: int) -> pa.Array:
    return pa.array([f"{prefix}{int(k):0{width}x}" for k in keys.tolist()], pa.string())


# ----------------------------------------------------------------------------- frames
def _customers_frame(pop: Population, clock: Clock, cust_ids: pa.Array) -> pd.DataFrame:
    agent_ids = _agent_ids(pop)
    phone = _hex_ids("", pop.phone, 16)
    emergency = _hex_ids("", np.maximum(pop.emergency, 0), 16)
    emergency = pc.if_else(pa.array(pop.emergency < 0), pa.scalar(None, pa.string()), emergency)
    onboarded = np.datetime64(clock.start, "D") + pop.onboarded_day.astype("timedelta64[D]")
    layers = pd.array(np.where(pop.layers < 0, 0, pop.layers), dtype="Int64")
    layers[pop.layers < 0] = pd.NA
    frame = pd.DataFrame({
        "customer_id": _series(cust_ids),
        "customer_type": _codes(CUSTOMER_TYPES, pop.ctype),
        "birth_or_incorporation_date": pd.Series(pop.birth.astype("datetime64[ns]")),
        "nationality": _codes(geo.COUNTRIES, pop.nationality),
        "residence_country": _codes(geo.COUNTRIES, pop.residence),
        "home_region": _codes(geo.REGIONS, pop.home_region),
        "occupation_or_industry": _codes(OCCUPATIONS_OR_INDUSTRIES, pop.occupation),
        "id_document_type": _codes(ID_DOCUMENT_TYPES, pop.id_doc),
        "is_pep": pop.pep.astype(bool),
        "on_watchlist": pop.watchlist.astype(bool),
        "onboarding_channel": _codes(ONBOARDING_CHANNELS, pop.onboarding),
        "agent_id": _series(_take(agent_ids, pop.agent)),
        "phone": _series(phone),
        "emergency_contact_phone": _series(emergency),
        "ownership_layers": layers,
        "refused_cdd": pop.refused_cdd.astype(bool),
        "is_resident": pop.resident.astype(bool),
        "declared_annual_income": pop.income.astype(float),
        "onboarded_at": pd.Series(onboarded.astype("datetime64[ns]")),
    })
    # Rows in customer-number order (as a bank's extract would be).
    frame = frame.iloc[np.argsort(np.asarray(cust_ids.to_numpy(zero_copy_only=False)), kind="stable")]
    return frame.reset_index(drop=True)[list(CUSTOMERS.column_names)]


def _agent_ids(pop: Population) -> pa.Array:
    return pa.array([f"AG{int(k):05d}{i:04d}" for i, k in enumerate(pop.agent_keys.tolist())], pa.string())


def _operator_ids(w: World) -> pa.Array:
    """Operators 0..A-1 are the agents known when the world was built (same person, same id); others ``OP...``."""
    agents = _agent_ids(w.pop).to_pylist()
    out = []
    for i, k in enumerate(w.operator_keys.tolist()):
        out.append(agents[i] if i < w.agent_operators else f"OP{int(k):06d}{i:05d}")
    return pa.array(out, pa.string())


def _device_ids(pop: Population) -> pa.Array:
    return _hex_ids("DV", pop.device_keys, 16)


def _transactions_frame(w: World, b: TxnBlock, cust_ids: pa.Array, txn_ids: pa.Array) -> pd.DataFrame:
    pop = w.pop
    # Account numbers: format each account once, then look it up per row.
    account_table = pa.array(pop.accounts.ravel()).cast(pa.string())
    account = account_table.take(pa.array(b.customer.astype(np.int64) * pop.accounts.shape[1] + b.account))
    instants = (b.ts * 1_000_000_000).view("datetime64[ns]")
    terminals = pa.array(w.terminal_ids(), pa.string())
    frame = pd.DataFrame({
        "txn_id": _series(txn_ids),
        "timestamp": pd.Series(pd.DatetimeIndex(instants).tz_localize("UTC")),
        "customer_id": _series(_take(cust_ids, b.customer)),
        "account_id": _series(account),
        "direction": _codes(DIRECTIONS, b.direction),
        "amount": b.amount / FEN,
        "channel": _codes(CHANNELS, b.channel),
        "txn_type": _codes(TXN_TYPES, b.txn_type),
        "counterparty_id": _series(_take(cust_ids, b.cp)),
        "counterparty_type": _codes(COUNTERPARTY_TYPES, b.cp_type),
        "counterparty_country": _codes(geo.COUNTRIES, b.cp_country),
        "ip_address": _series(pc.if_else(pa.array(b.ip < 0), pa.scalar(None, pa.string()), geo.format_ips(b.ip))),
        "ip_country": _codes(geo.COUNTRIES, b.ip_country),
        "ip_region": _codes(geo.REGIONS, b.ip_region),
        "device_id": _series(_take(_device_ids(pop), b.device)),
        "terminal_id": _series(_take(terminals, b.terminal)),
        "terminal_region": _codes(geo.REGIONS, b.terminal_region),
        "operator_id": _series(_take(_operator_ids(w), b.operator)),
        "counterparty_account": _series(_counterparty_accounts(w, b, account_table)),
    })
    return frame[list(TRANSACTIONS.column_names)]


_NO_ACCOUNT_TYPES = np.array([TT["cash_deposit"], TT["cash_withdrawal"]], dtype=np.int8)
_EXTERNAL_DIGITS = 17  # external account numbers: "62" and 17 digits (internal ones are shorter)


def _counterparty_accounts(w: World, b: TxnBlock, account_table: pa.Array) -> pa.Array:
    """The other side's account: the other leg's account for a transfer between customers, an
    account at another bank for any other non-cash transaction, empty for cash."""
    pop = w.pop
    internal = b.cp >= 0
    slot_index = np.maximum(b.cp, 0).astype(np.int64) * pop.accounts.shape[1] + np.maximum(b.cp_slot, 0)
    inside = account_table.take(pa.array(np.where(internal, slot_index, 0)))
    keys = _external_account_keys(w, b)
    outside = _prefixed("62", keys % (10**_EXTERNAL_DIGITS), _EXTERNAL_DIGITS)
    account = pc.if_else(pa.array(internal), inside, outside)
    none = ~internal & (keys < 0)
    return pc.if_else(pa.array(none), pa.scalar(None, pa.string()), account)


def _external_account_keys(w: World, b: TxnBlock) -> np.ndarray:
    """A key per non-cash row with a counterparty outside the bank (-1 elsewhere).

    Each customer deals with a small pool of outside accounts per kind of transaction (one
    employer for salaries, 2 to 12 for anything else); a laundering scenario's outside legs draw
    from a pool about half as large as their number, so most outside accounts recur once or twice
    (a fan-in from many remitters, a fan-out to many beneficiaries). Keys are seeded hashes of
    (owner, kind, direction, pool index).
    """
    rng = stream(w.config.seed, "ledger/external_accounts")
    external = (b.cp < 0) & ~np.isin(b.txn_type, _NO_ACCOUNT_TYPES)
    laundering = b.scenario >= 0
    customer_pool = rng.integers(2, 13, size=w.pop.n)
    n_scenarios = int(b.scenario.max()) + 1 if len(b) and laundering.any() else 0
    scenario_rows = np.bincount(b.scenario[external & laundering], minlength=n_scenarios)
    scenario_pool = np.maximum(1, (scenario_rows + 1) // 2)
    pool = np.where(laundering, scenario_pool[np.maximum(b.scenario, 0)] if n_scenarios else 1,
                    np.where(b.txn_type == TT["salary"], 1, customer_pool[b.customer]))
    index = np.floor(rng.random(len(b)) * pool).astype(np.int64)
    owner = np.where(laundering, -1 - b.scenario.astype(np.int64), b.customer.astype(np.int64))
    mixed = (owner.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
             ^ (b.txn_type.astype(np.uint64) << np.uint64(40))
             ^ (b.direction.astype(np.uint64) << np.uint64(48))
             ^ index.astype(np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
             ^ np.uint64(w.config.seed & 0xFFFFFFFF))
    mixed = (mixed ^ (mixed >> np.uint64(31))) * np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(29)
    keys = (mixed >> np.uint64(1)).astype(np.int64)
    return np.where(external, keys, -1)


def _reports_frame(rep: ReportRows, clock: Clock, cust_ids: pa.Array, txn_ids: pa.Array) -> pd.DataFrame:
    start = np.datetime64(clock.start, "D")

    def dates(day: np.ndarray) -> pd.Series:
        empty = day == NO_DAY
        d = (start + np.where(empty, 0, day).astype("timedelta64[D]")).astype("datetime64[ns]")
        d[empty] = np.datetime64("NaT")
        return pd.Series(d)

    # Filing order: by report date, then customer, then transaction.
    order = np.lexsort((rep.row, rep.period_start, rep.customer, rep.report_day))
    rep = ReportRows(*(getattr(rep, f)[order] for f in ReportRows.__dataclass_fields__))
    period_start = rep.period_start.copy()
    frame = pd.DataFrame({
        "report_id": _series(_prefixed("R", np.arange(1, len(rep) + 1, dtype=np.int64), 8)),
        "customer_id": _series(_take(cust_ids, rep.customer)),
        "txn_id": _series(_take(txn_ids, rep.row)),
        "period_start": dates(np.where(rep.row < 0, period_start, NO_DAY)) if len(rep) else pd.Series([], dtype="datetime64[ns]"),
        "period_end": dates(np.where(rep.row < 0, rep.period_end, NO_DAY)) if len(rep) else pd.Series([], dtype="datetime64[ns]"),
        "report_date": dates(rep.report_day) if len(rep) else pd.Series([], dtype="datetime64[ns]"),
        "label": _codes(LABELS, np.where(rep.suspicious, 0, 1)),
        "typology": _codes(TYPOLOGIES, rep.typology),
    })
    return frame[list(REPORTS.column_names)]


def _ground_truth(b: TxnBlock, day: np.ndarray, rep: ReportRows, cust_ids: pa.Array, txn_ids: pa.Array,
                  scenarios: list[Scenario]) -> pd.DataFrame:
    rows = np.flatnonzero(b.scenario >= 0)
    sc = b.scenario[rows]
    typology_of = np.array([TYPOLOGIES.index(s.typology) for s in scenarios], dtype=np.int64)
    scenario_ids = pa.array([s.scenario_id for s in scenarios], pa.string())
    reported = covered(rep, b.customer, day, rows)
    return pd.DataFrame({
        "txn_id": _series(_take(txn_ids, rows)),
        "customer_id": _series(_take(cust_ids, b.customer[rows])),
        "typology": _codes(TYPOLOGIES, typology_of[sc] if len(sc) else sc),
        "scenario_id": _series(_take(scenario_ids, sc)),
        "reported": reported,
    })[list(GROUND_TRUTH_COLUMNS)]
