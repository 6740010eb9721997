"""Per-transaction facts derived from the contract fields, defined once for both paths.

Each fact is defined once, in two layers used by both paths: the predicates on text fields
(:class:`TextPredicates`, plain functions of one value) and the compiled :func:`fact_row`, which turns
a row of contract codes and those predicates (:data:`RAW_COLUMNS`) into the packed facts
(:data:`FACT_COLUMNS`). The offline path builds the rows for a whole table (:func:`derive_facts`,
each predicate evaluated once per distinct value); the online path builds one from a record
(:func:`raw_row`); both run :func:`fact_rows`. The stateful parts (windows, first-seen
counterparties, shared identifiers) are built on top of these facts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping

import numpy as np
import pandas as pd
from numba import njit

from amlscore.contract.schema import CHANNELS, COUNTERPARTY_TYPES, IP_CHANNELS, TXN_TYPES
from amlscore.features.params import FeatureParams
from amlscore.features.registry import DAY_NS, HOUR_NS, CustomerRegistry

TXN_TYPE_CODE = {name: i for i, name in enumerate(TXN_TYPES)}
CHANNEL_CODE = {name: i for i, name in enumerate(CHANNELS)}
CP_TYPE_CODE = {name: i for i, name in enumerate(COUNTERPARTY_TYPES)}
_TEXT_FIELDS = ("customer_id", "counterparty_id", "counterparty_country", "ip_address", "ip_country",
                "ip_region", "device_id", "operator_id")


@dataclass(frozen=True)
class Coded:
    """A text column as codes into its distinct values: ``values[codes[i]]``, code -1 when missing.

    The batch path reads text only through these codes, so every text predicate is evaluated once per
    distinct value and entity keys (IP, device, counterparty) need no further encoding.
    """

    codes: np.ndarray  # int64
    values: np.ndarray  # object array of str

    def __len__(self) -> int:
        return len(self.codes)

    @classmethod
    def of(cls, column: Any) -> "Coded":
        series = column if isinstance(column, pd.Series) else pd.Series(column, dtype=object)
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
        return cls(codes=codes.astype(np.int64, copy=False), values=np.asarray(uniques, dtype=object))

    def table(self, predicate: Callable[[Any], bool]) -> np.ndarray:
        """``predicate`` (0/1) of each distinct value, then of missing (None): ``table[codes]`` gives every
        cell's, as code -1 takes the last entry."""
        return np.array([predicate(v) for v in self.values.tolist()] + [predicate(None)], dtype=np.int64)


@dataclass
class TxnColumns:
    """The contract fields features read, for a batch of transactions: numbers as numpy arrays, text
    as :class:`Coded` columns. ``txn_id`` is not among them: no feature reads it, and the batch is
    in time order before it is built."""

    customer_id: Coded
    t_ns: np.ndarray  # int64, UTC nanoseconds
    fen: np.ndarray  # int64, amount in fen (0.01 CNY): exact sums
    amount: np.ndarray  # float64, CNY
    is_in: np.ndarray  # bool
    channel: np.ndarray  # int64 code, contract order
    txn_type: np.ndarray  # int64 code, contract order
    cp_type: np.ndarray  # int64 code, contract order
    counterparty_id: Coded
    counterparty_country: Coded
    ip_address: Coded
    ip_country: Coded
    ip_region: Coded
    device_id: Coded
    operator_id: Coded

    def __len__(self) -> int:
        return len(self.t_ns)

    @classmethod
    def from_frame(cls, txns: pd.DataFrame) -> "TxnColumns":
        """From a typed transactions frame (see :func:`contract.load_dataset`)."""
        amount = txns["amount"].to_numpy(dtype=np.float64)
        return cls(
            t_ns=_utc_ns(txns["timestamp"]),
            fen=np.rint(amount * 100).astype(np.int64),
            amount=amount,
            is_in=cls.direction_in(txns["direction"]),
            channel=_codes(txns["channel"], CHANNEL_CODE),
            txn_type=_codes(txns["txn_type"], TXN_TYPE_CODE),
            cp_type=_codes(txns["counterparty_type"], CP_TYPE_CODE),
            **{f: Coded.of(txns[f]) for f in _TEXT_FIELDS},
        )

    @staticmethod
    def direction_in(direction: pd.Series) -> np.ndarray:
        """``direction == "in"`` as a bool array."""
        return _equals(direction, "in")


ACCOUNT_KEY_PREFIX = "account:"  # keeps account numbers apart from customer ids among counterparty keys


def counterparty_key(counterparty_id: Any, counterparty_account: Any, code_of: Mapping[str, int]) -> str | None:
    """Who the counterparty is, for distinct-counterparty features: its customer_id when it names a
    customer of the bank, else its account (``account:<number>``) when given, else unknown (None).

    A counterparty_id that names no customer is an outside counterparty (a contract warning), so it
    is keyed by its account like any other.
    """
    if isinstance(counterparty_id, str) and counterparty_id and counterparty_id in code_of:
        return counterparty_id
    if isinstance(counterparty_account, str) and counterparty_account.strip():
        return ACCOUNT_KEY_PREFIX + counterparty_account.strip()
    return None


def counterparty_keys(txns: pd.DataFrame, code_of: Mapping[str, int]) -> Coded:
    """:func:`counterparty_key` of every row of a typed transactions frame, as codes."""
    ids = txns["counterparty_id"].astype(object)
    known = ids.isin(code_of.keys()).to_numpy() if len(code_of) else np.zeros(len(ids), dtype=bool)
    if "counterparty_account" in txns.columns:
        account = txns["counterparty_account"].astype(object)
        account_key = (ACCOUNT_KEY_PREFIX + account.where(account.notna(), "").astype(str).str.strip())
        account_key = account_key.where(account.notna() & (account_key != ACCOUNT_KEY_PREFIX), None)
    else:
        account_key = pd.Series([None] * len(ids), index=ids.index, dtype=object)
    keys = ids.where(known, account_key)
    return Coded.of(keys.reset_index(drop=True))


_EPOCH = datetime(1970, 1, 1)
_RECORD_FIELDS = ("txn_id", "timestamp", "customer_id", "account_id", "direction", "amount", "channel", "txn_type",
                  "counterparty_id", "counterparty_type", "counterparty_country", "ip_address", "ip_country",
                  "ip_region", "device_id", "terminal_id", "terminal_region", "operator_id", "counterparty_account")


def transaction_records(txns: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Contract-shaped dicts (what a channel sends) for the rows of a typed transactions frame."""
    cols = [c for c in _RECORD_FIELDS if c in txns.columns]
    stamps = pd.to_datetime(txns["timestamp"], utc=True)
    iso = stamps.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").tolist()
    data = {c: txns[c].astype(object).tolist() for c in cols if c != "timestamp"}
    for i in range(len(txns)):
        rec: dict[str, Any] = {}
        for c in cols:
            v = iso[i] if c == "timestamp" else data[c][i]
            rec[c] = None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v) and c != "amount") else v
        yield rec


def timestamp_ns(value: Any) -> int:
    """UTC nanoseconds for an ISO 8601 string or timestamp; without an offset it is UTC."""
    if isinstance(value, str) and len(value) <= 32:
        try:  # the stdlib parser is ~10x faster than pandas for the common microsecond forms
            dt = datetime.fromisoformat(value)
        except ValueError:
            dt = None
        if dt is not None:
            if dt.tzinfo is not None:
                dt = dt.astimezone(timezone.utc).replace(tzinfo=None)
            delta = dt - _EPOCH
            return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        return int(ts.value)
    return int(ts.tz_convert("UTC").value)


def _utc_ns(timestamps: pd.Series) -> np.ndarray:
    """int64 UTC nanoseconds of a timestamp column (naive means UTC), without a copy when it is one already."""
    values = timestamps.array
    if not isinstance(values, pd.arrays.DatetimeArray):
        values = pd.to_datetime(timestamps, utc=True).array
    return values.as_unit("ns").asi8


def _equals(column: pd.Series, value: str) -> np.ndarray:
    """``column == value`` as a bool array; through the codes when the column is categorical."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        categories = list(column.cat.categories)
        if value not in categories:
            return np.zeros(len(column), dtype=bool)
        return column.cat.codes.to_numpy() == categories.index(value)
    return column.astype(str).to_numpy() == value


def _codes(column: pd.Series, mapping: dict[str, int]) -> np.ndarray:
    if isinstance(column.dtype, pd.CategoricalDtype) and list(column.cat.categories) == list(mapping):
        return column.cat.codes.to_numpy(dtype=np.int64)
    return column.astype(str).map(mapping).to_numpy(dtype=np.int64)


# Columns of the packed fact matrix (one int64 row per transaction; flags are 0/1). The history-free
# part of every feature row; the finalize kernel reads it by these positions.
FACT_COLUMNS = ("t_ns", "fen", "is_in", "channel", "txn_type", "hour_local", "is_weekend", "is_night", "is_cash",
                "is_cash_dep", "is_cash_wd", "is_large_cash", "is_near_threshold", "is_round", "is_cross_border",
                "is_high_risk", "is_ip_abroad", "is_ip_outside", "is_corp_indiv", "is_operated")
_FC = {name: j for j, name in enumerate(FACT_COLUMNS)}
N_FACTS = len(FACT_COLUMNS)
# The inputs of the fact kernel, one int64 row per transaction: contract codes and the predicates on
# text fields (0/1). The offline path builds them for a whole table, the online path for one record.
RAW_COLUMNS = ("t_ns", "fen", "is_in", "channel", "txn_type", "cp_type", "cust_corporate", "cp_country_foreign",
               "cp_country_high_risk", "has_ip_address", "ip_country_foreign", "ip_region_away", "has_operator")
_RC = {name: j for j, name in enumerate(RAW_COLUMNS)}
N_RAW = len(RAW_COLUMNS)


@dataclass
class EventFacts:
    """Facts about each transaction that need no history.

    ``matrix`` holds them packed (columns :data:`FACT_COLUMNS`); ``is_cash`` is a view of its column.
    """

    cust: np.ndarray  # customer code
    local_day: np.ndarray
    matrix: np.ndarray  # int64 (n, len(FACT_COLUMNS))

    @property
    def is_cash(self) -> np.ndarray:
        return self.matrix[:, _FC["is_cash"]]


class TextPredicates:
    """The facts read from text fields, each written once as a function of one value (missing = None).

    The online path applies them to a record's values; the offline path to each distinct value of a
    column (:meth:`lookup_tables`), which is both faster and the same code.
    """

    def __init__(self, params: FeatureParams) -> None:
        self.bank_country = params.bank_country
        self.high_risk = frozenset(params.high_risk_countries)

    def foreign(self, country: str | None) -> bool:
        """A known country other than the bank's."""
        return country is not None and country != self.bank_country

    def high_risk_country(self, country: str | None) -> bool:
        return country in self.high_risk

    @staticmethod
    def present(value: str | None) -> bool:
        return value is not None

    @staticmethod
    def away(region: str | None, home: str | None) -> bool:
        """A known IP region other than the customer's home region (any region, when home is unknown)."""
        return region is not None and region != home

    def of_values(self, cp_country: str | None, ip_address: str | None, ip_country: str | None,
                  ip_region: str | None, home: str | None, operator: str | None) -> list[int]:
        """The text columns of :data:`RAW_COLUMNS` for one transaction."""
        return [int(self.foreign(cp_country)), int(self.high_risk_country(cp_country)), int(self.present(ip_address)),
                int(self.foreign(ip_country)), int(self.away(ip_region, home)), int(self.present(operator))]

    def lookup_tables(self, tx: TxnColumns, cust: np.ndarray, registry: CustomerRegistry
                      ) -> list[tuple[np.ndarray, tuple[np.ndarray, ...]]]:
        """For a batch, the text columns of :data:`RAW_COLUMNS` as (table, codes): each predicate
        evaluated once per distinct value (or pair of values), missing (code -1) last; a row's flag is
        ``table[codes[row]]``."""
        home = Coded.of(registry.home_region)  # one code per customer
        away = np.array([[self.away(r, h) for h in [*home.values.tolist(), None]]
                         for r in [*tx.ip_region.values.tolist(), None]], dtype=np.int64)
        return [(tx.counterparty_country.table(self.foreign), (tx.counterparty_country.codes,)),
                (tx.counterparty_country.table(self.high_risk_country), (tx.counterparty_country.codes,)),
                (tx.ip_address.table(self.present), (tx.ip_address.codes,)),
                (tx.ip_country.table(self.foreign), (tx.ip_country.codes,)),
                (away, (tx.ip_region.codes, home.codes[cust])),
                (tx.operator_id.table(self.present), (tx.operator_id.codes,))]


def _fill_raw_rows(raw: np.ndarray, tx: TxnColumns, cust: np.ndarray, registry: CustomerRegistry,
                   text: list[tuple[np.ndarray, tuple[np.ndarray, ...]]], a: int, b: int) -> None:
    """Rows ``a:b`` of the batch's kernel inputs (:data:`RAW_COLUMNS`) into ``raw`` (column by column)."""
    for name, column in (("t_ns", tx.t_ns), ("fen", tx.fen), ("is_in", tx.is_in), ("channel", tx.channel),
                         ("txn_type", tx.txn_type), ("cp_type", tx.cp_type)):
        raw[:, _RC[name]] = column[a:b]
    raw[:, _RC["cust_corporate"]] = registry.is_corporate[cust[a:b]]
    for j, (table, codes) in enumerate(text, start=_RC["cp_country_foreign"]):
        raw[:, j] = table[tuple(c[a:b] for c in codes)]


def amount_fen(amount: float) -> int:
    """An amount in whole fen, rounded half to even like ``np.rint`` (the batch conversion)."""
    return int(round(amount * 100))


def raw_row(record: Mapping[str, Any], t_ns: int, cust: int, registry: CustomerRegistry,
            predicates: TextPredicates) -> list[int]:
    """The kernel inputs (:data:`RAW_COLUMNS`) of one checked contract record."""
    text = record.get
    return [t_ns, amount_fen(float(record["amount"])), int(record["direction"] == "in"), CHANNEL_CODE[record["channel"]],
            TXN_TYPE_CODE[record["txn_type"]], CP_TYPE_CODE[record["counterparty_type"]],
            int(registry.is_corporate[cust]),
            *predicates.of_values(text("counterparty_country") or None, text("ip_address") or None,
                                  text("ip_country") or None, text("ip_region") or None, registry.home_region[cust],
                                  text("operator_id") or None)]


def fact_constants(params: FeatureParams) -> np.ndarray:
    """What the fact kernel reads besides a row: UTC offset (ns), night start and end hours, large-cash
    threshold, near-threshold lower bound and round unit (fen), then the contract's codes of cash
    deposit, cash withdrawal, transfer, remittance, corporate and individual counterparties and the two
    IP channels. Passed in rather than read as globals, so the compiled kernel's cache cannot keep
    codes of an older contract."""
    return np.array([params.bank_utc_offset_hours * HOUR_NS, params.night_hours[0], params.night_hours[1],
                     params.large_cash_fen, params.near_threshold_low_fen, params.round_unit_fen,
                     TXN_TYPE_CODE["cash_deposit"], TXN_TYPE_CODE["cash_withdrawal"], TXN_TYPE_CODE["transfer"],
                     TXN_TYPE_CODE["remittance"], CP_TYPE_CODE["corporate"], CP_TYPE_CODE["individual"],
                     CHANNEL_CODE[IP_CHANNELS[0]], CHANNEL_CODE[IP_CHANNELS[1]]], dtype=np.int64)


_CHUNK_ROWS = 65_536  # rows of kernel inputs built at a time: a small buffer, reused


def derive_facts(tx: TxnColumns, registry: CustomerRegistry, params: FeatureParams,
                 out: np.ndarray | None = None) -> EventFacts:
    """Compute the history-free facts of a batch (see the catalogue for each definition).

    ``out`` (n, at least len(FACT_COLUMNS)) int64 receives the packed facts in its first columns,
    so a caller can gather them with other per-row data; by default a new matrix.
    """
    cust = registry.codes_of(tx.customer_id.codes, tx.customer_id.values)
    consts = fact_constants(params)
    n = len(tx)
    matrix = np.empty((n, N_FACTS), dtype=np.int64) if out is None else out[:, :N_FACTS]
    text = TextPredicates(params).lookup_tables(tx, cust, registry)
    raw = np.empty((min(n, _CHUNK_ROWS), N_RAW), dtype=np.int64, order="F")
    for a in range(0, n, _CHUNK_ROWS):
        b = min(n, a + _CHUNK_ROWS)
        _fill_raw_rows(raw[: b - a], tx, cust, registry, text, a, b)
        fact_rows(raw[: b - a], consts, matrix[a:b])
    return EventFacts(cust=cust, local_day=(tx.t_ns + consts[0]) // DAY_NS, matrix=matrix)


_F_T, _F_FEN, _F_IN, _F_CHANNEL, _F_TYPE = _FC["t_ns"], _FC["fen"], _FC["is_in"], _FC["channel"], _FC["txn_type"]
_F_HOUR, _F_WEEKEND, _F_NIGHT = _FC["hour_local"], _FC["is_weekend"], _FC["is_night"]
_F_CASH, _F_DEP, _F_WD = _FC["is_cash"], _FC["is_cash_dep"], _FC["is_cash_wd"]
_F_LARGE, _F_NEAR, _F_ROUND = _FC["is_large_cash"], _FC["is_near_threshold"], _FC["is_round"]
_F_CROSS, _F_HR, _F_IPAB, _F_IPOUT = _FC["is_cross_border"], _FC["is_high_risk"], _FC["is_ip_abroad"], _FC["is_ip_outside"]
_F_CI, _F_OP = _FC["is_corp_indiv"], _FC["is_operated"]
_R_T, _R_FEN, _R_IN, _R_CHANNEL, _R_TYPE = _RC["t_ns"], _RC["fen"], _RC["is_in"], _RC["channel"], _RC["txn_type"]
_R_CP, _R_CORP, _R_CP_FOREIGN, _R_HIGH_RISK = _RC["cp_type"], _RC["cust_corporate"], _RC["cp_country_foreign"], \
    _RC["cp_country_high_risk"]
_R_HAS_IP, _R_IP_FOREIGN, _R_AWAY, _R_OPERATOR = _RC["has_ip_address"], _RC["ip_country_foreign"], \
    _RC["ip_region_away"], _RC["has_operator"]


@njit(cache=True)
def fact_rows(raw: np.ndarray, consts: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """The packed facts (columns :data:`FACT_COLUMNS`) of rows of :data:`RAW_COLUMNS`, into ``out``; the
    definitions in words are in the catalogue. ``consts`` from :func:`fact_constants`."""
    for i in range(raw.shape[0]):
        fact_row(raw[i], consts, out[i])


@njit(cache=True)
def fact_row(raw: np.ndarray, consts: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """One row of :func:`fact_rows`, written into ``out``."""
    offset, night_start, night_end = consts[0], consts[1], consts[2]
    large_fen, near_low_fen, round_fen = consts[3], consts[4], consts[5]
    cash_deposit, cash_withdrawal, transfer_code, remittance = consts[6], consts[7], consts[8], consts[9]
    cp_corporate, cp_individual, ip_channel_a, ip_channel_b = consts[10], consts[11], consts[12], consts[13]
    t, fen, kind, channel, cp_type = raw[_R_T], raw[_R_FEN], raw[_R_TYPE], raw[_R_CHANNEL], raw[_R_CP]
    local_ns = t + offset
    local_day = local_ns // DAY_NS
    hour = (local_ns // HOUR_NS) % 24
    weekday = (local_day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    dep = kind == cash_deposit
    wd = kind == cash_withdrawal
    cash = dep or wd
    has_ip = raw[_R_HAS_IP] != 0 and (channel == ip_channel_a or channel == ip_channel_b)
    ip_abroad = has_ip and raw[_R_IP_FOREIGN] != 0
    # transfers only: paying a corporate biller or shop is not the corporate-to-personal pattern, nor is payroll
    transfer = kind == transfer_code or kind == remittance
    corp = raw[_R_CORP] != 0
    corp_indiv = transfer and ((corp and cp_type == cp_individual) or (not corp and cp_type == cp_corporate))
    out[_F_T] = t
    out[_F_FEN] = fen
    out[_F_IN] = raw[_R_IN]
    out[_F_CHANNEL] = channel
    out[_F_TYPE] = kind
    out[_F_HOUR] = hour
    out[_F_WEEKEND] = weekday >= 5
    out[_F_NIGHT] = night_start <= hour and hour < night_end
    out[_F_CASH] = cash
    out[_F_DEP] = dep
    out[_F_WD] = wd
    out[_F_LARGE] = cash and fen >= large_fen
    out[_F_NEAR] = cash and near_low_fen <= fen and fen < large_fen
    out[_F_ROUND] = fen % round_fen == 0
    out[_F_CROSS] = raw[_R_CP_FOREIGN] != 0
    out[_F_HR] = raw[_R_HIGH_RISK] != 0
    out[_F_IPAB] = ip_abroad
    out[_F_IPOUT] = has_ip and (ip_abroad or raw[_R_AWAY] != 0)
    out[_F_CI] = corp_indiv
    out[_F_OP] = raw[_R_OPERATOR] != 0


# Windowed integer sums per customer: (name, window). Each is summed over (t - window, t] in integer
# units (counts, or fen for amounts), so both paths get exactly the same number.
WINDOW_SUMS: tuple[tuple[str, str], ...] = tuple(
    [(f"{d}_cnt_{w}", w) for w in ("1h", "24h", "7d", "30d", "90d") for d in ("in", "out")]
    + [(f"{d}_fen_{w}", w) for w in ("1h", "24h", "7d", "30d", "90d") for d in ("in", "out")]
    + [(f"cash_dep_cnt_{w}", w) for w in ("24h", "7d", "30d")]
    + [(f"cash_dep_fen_{w}", w) for w in ("24h", "7d", "30d")]
    + [(f"cash_wd_cnt_{w}", w) for w in ("24h", "7d", "30d")]
    + [(f"cash_wd_fen_{w}", w) for w in ("24h", "7d", "30d")]
    + [(f"near_cnt_{w}", w) for w in ("24h", "7d", "30d")]
    + [("near_fen_7d", "7d"), ("round_cnt_30d", "30d"), ("night_cnt_30d", "30d")]
    + [(f"ch{c}_cnt_30d", "30d") for c in range(len(CHANNELS))]
    + [("cross_cnt_30d", "30d"), ("hr_cnt_30d", "30d"), ("hr_fen_30d", "30d"), ("ipab_cnt_7d", "7d"),
       ("ipout_cnt_7d", "7d"), ("newcp_cnt_7d", "7d"), ("newcp_cnt_30d", "30d"), ("ci_cnt_30d", "30d"),
       ("ci_fen_30d", "30d"), ("react_cnt_30d", "30d")]
)
WINDOW_SUM_INDEX = {name: i for i, (name, _) in enumerate(WINDOW_SUMS)}
