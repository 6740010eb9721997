"""Static facts about customers that features need, indexed once.

Both feature paths look customers up here: the offline path for a whole table at once, the online
path for one transaction. Shared-identifier counts (agent, phone, emergency phone) are answered
point in time from sorted onboarding days, so a customer onboarded after a transaction never counts
for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError

DAY_NS = 86_400 * 1_000_000_000
HOUR_NS = 3_600 * 1_000_000_000


class UnknownCustomerError(AmlError):
    """A transaction names a customer that is not in the customers table."""


def _text_or_none(value: object) -> str | None:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    text = str(value)
    return text if text else None


def _day_index(dates: pd.Series) -> np.ndarray:
    """Calendar dates (naive datetime64) as whole days since 1970-01-01."""
    return (dates.to_numpy(dtype="datetime64[ns]").astype("int64") // DAY_NS).astype(np.int64)


#: ``onboard_ns`` of a customer whose onboarded_at is empty: no onboarding instant is known, so the
#: features measured from it (account age, the gap before the first transaction) are missing.
UNKNOWN_ONBOARD_NS = int(np.iinfo(np.int64).min)

_DAY_STRIDE = 10_000_000  # > any day index we meet (year 29,000): key * stride + day stays ordered
NEVER = _DAY_STRIDE  # a day after every day we meet


@dataclass(frozen=True)
class MembershipIndex:
    """Point-in-time membership counts: how many customers hold key k and were onboarded by day d.

    ``combined`` holds ``key * _DAY_STRIDE + onboard_day`` for every (key, customer) membership, sorted,
    so one ``searchsorted`` answers a whole array of queries (the offline path) or a single one (online).
    """

    combined: np.ndarray
    key_start: np.ndarray

    @classmethod
    def build(cls, keys: np.ndarray, days: np.ndarray, n_keys: int) -> "MembershipIndex":
        combined = np.sort(keys.astype(np.int64) * _DAY_STRIDE + days.astype(np.int64))
        key_start = np.searchsorted(combined, np.arange(n_keys, dtype=np.int64) * _DAY_STRIDE, side="left")
        return cls(combined=combined, key_start=key_start.astype(np.int64))

    def count(self, keys: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Members of each key onboarded on or before each day; 0 where key < 0."""
        if len(self.key_start) == 0:  # nobody holds any key (e.g. no customer has an agent)
            return np.zeros(len(keys), dtype=np.int64)
        safe = np.maximum(keys, 0)
        n = np.searchsorted(self.combined, safe * _DAY_STRIDE + days, side="right") - self.key_start[safe]
        return np.where(keys >= 0, n, 0).astype(np.int64)

    def count_one(self, key: int, day: int) -> tuple[int, int]:
        """:meth:`count` of one key and day, and the first later day on which that count changes
        (:data:`NEVER` when no later member joins)."""
        if key < 0 or len(self.key_start) == 0:
            return 0, NEVER
        combined = self.combined
        pos = int(np.searchsorted(combined, key * _DAY_STRIDE + day, side="right"))
        n = pos - int(self.key_start[key])
        if pos < len(combined) and int(combined[pos]) // _DAY_STRIDE == key:
            return n, int(combined[pos]) % _DAY_STRIDE
        return n, NEVER


def _membership(key_sets: list[set[str]], onboard_day: np.ndarray) -> tuple[MembershipIndex, np.ndarray]:
    """Index customers by the text keys they hold; return the index and each customer's own key code."""
    vocab: dict[str, int] = {}
    member_keys: list[int] = []
    member_days: list[int] = []
    for code, keys in enumerate(key_sets):
        for key in sorted(keys):
            k = vocab.setdefault(key, len(vocab))
            member_keys.append(k)
            member_days.append(int(onboard_day[code]))
    index = MembershipIndex.build(np.asarray(member_keys, np.int64), np.asarray(member_days, np.int64), len(vocab))
    return index, vocab  # type: ignore[return-value]


@dataclass(frozen=True)
class CustomerRegistry:
    """Per-customer attributes as arrays indexed by customer code (the row in ``customer_ids``)."""

    customer_ids: np.ndarray
    code_of: dict[str, int]
    is_corporate: np.ndarray
    home_region: np.ndarray
    onboard_day: np.ndarray
    onboard_ns: np.ndarray
    income: np.ndarray
    peer_group: np.ndarray
    peer_group_names: tuple[str, ...]
    peer_index: MembershipIndex = field(repr=False)
    agent_key: np.ndarray = field(repr=False)
    agent_index: MembershipIndex = field(repr=False)
    phone_key: np.ndarray = field(repr=False)
    phone_index: MembershipIndex = field(repr=False)
    emergency_key: np.ndarray = field(repr=False)
    emergency_index: MembershipIndex = field(repr=False)
    # the customer's own phone as a key of the emergency-phone index (-1 when empty): an emergency
    # phone links a customer whose contact it is to the customer whose own phone it is
    own_phone_emergency_key: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, np.int64))
    utc_offset_ns: int = 8 * HOUR_NS

    @classmethod
    def from_customers(cls, customers: pd.DataFrame, utc_offset_hours: int = 8) -> "CustomerRegistry":
        """Index a typed customers frame (as returned by :func:`contract.load_dataset`)."""
        ids = customers["customer_id"].astype(str).to_numpy(dtype=object)
        onboarded = customers["onboarded_at"]
        onboard_known = onboarded.notna().to_numpy(dtype=bool)
        # For the shared-identifier and peer-group counts a customer with an unknown onboarding date
        # is a member from the start (day 0); its own onboarding instant stays unknown (below).
        onboard_day = np.where(onboard_known, _day_index(onboarded.fillna(pd.Timestamp(0))), 0).astype(np.int64)
        offset_ns = utc_offset_hours * HOUR_NS
        ctype = customers["customer_type"].astype(str).to_numpy(dtype=object)
        occupation = customers["occupation_or_industry"].astype(str).to_numpy(dtype=object)
        group_codes, group_names = pd.factorize(pd.Series(ctype + "|" + occupation), sort=True)
        group_codes = group_codes.astype(np.int64)

        agents = [_text_or_none(v) for v in customers["agent_id"].tolist()]
        phones = [_text_or_none(v) for v in customers["phone"].tolist()]
        emergencies = [_text_or_none(v) for v in customers["emergency_contact_phone"].tolist()]
        agent_index, agent_vocab = _membership([{a} if a else set() for a in agents], onboard_day)
        phone_index, phone_vocab = _membership([{p} if p else set() for p in phones], onboard_day)
        # A customer is linked to emergency phone E when E is its emergency contact or its own phone.
        emerg_index, emerg_vocab = _membership([{x for x in (p, e) if x} for p, e in zip(phones, emergencies)], onboard_day)

        def own_key(values: list[str | None], vocab: dict[str, int]) -> np.ndarray:
            return np.asarray([vocab[v] if v else -1 for v in values], dtype=np.int64)

        income = pd.to_numeric(customers["declared_annual_income"], errors="coerce").to_numpy(dtype=np.float64)
        home = np.array([_text_or_none(v) for v in customers["home_region"].tolist()], dtype=object)
        return cls(
            customer_ids=ids,
            code_of={cid: i for i, cid in enumerate(ids)},
            is_corporate=(ctype == "corporate"),
            home_region=home,
            onboard_day=onboard_day,
            # local midnight of the onboarding date, in UTC
            onboard_ns=np.where(onboard_known, onboard_day * DAY_NS - offset_ns, UNKNOWN_ONBOARD_NS).astype(np.int64),
            income=income,
            peer_group=group_codes,
            peer_group_names=tuple(str(n) for n in group_names),
            peer_index=MembershipIndex.build(group_codes, onboard_day, len(group_names)),
            agent_key=own_key(agents, agent_vocab),
            agent_index=agent_index,
            phone_key=own_key(phones, phone_vocab),
            phone_index=phone_index,
            emergency_key=own_key(emergencies, emerg_vocab),
            emergency_index=emerg_index,
            own_phone_emergency_key=own_key(phones, emerg_vocab),
            utc_offset_ns=offset_ns,
        )

    def __len__(self) -> int:
        return len(self.customer_ids)

    def codes(self, customer_ids: np.ndarray) -> np.ndarray:
        """Customer codes for ids; unknown ids raise :class:`UnknownCustomerError` naming them."""
        try:
            if len(customer_ids) <= 64:
                return np.fromiter((self.code_of[c] for c in customer_ids), dtype=np.int64, count=len(customer_ids))
            # a big batch: look each distinct id up once (missing ids stay values, so they are refused too)
            local, uniques = pd.factorize(pd.Series(customer_ids, dtype=object), use_na_sentinel=False)
            found = np.fromiter((self.code_of[c] for c in uniques), dtype=np.int64, count=len(uniques))
            return found[local]
        except KeyError as exc:
            raise UnknownCustomerError(
                f"customer_id {exc.args[0]!r} is not in the customers table; score only transactions of known customers"
            ) from None

    def codes_of(self, codes: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Customer codes for an id column given as codes into its distinct ``values`` (-1 = missing)."""
        if len(codes) and codes.min() < 0:
            raise UnknownCustomerError("a transaction has no customer_id; score only transactions of known customers")
        return self.codes(values)[codes]

    def local_day(self, t_ns: np.ndarray) -> np.ndarray:
        """Calendar day on the bank's clock for UTC nanosecond timestamps."""
        return (t_ns + self.utc_offset_ns) // DAY_NS

    def peer_group_size(self, codes: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Customers of each customer's peer group onboarded on or before ``day`` (at least 1)."""
        return np.maximum(self.peer_index.count(self.peer_group[codes], day), 1)

    def other_customers(self, kind: str, codes: np.ndarray, day: np.ndarray) -> np.ndarray:
        """Other customers sharing this customer's agent, phone or emergency phone, onboarded by ``day``."""
        key, index = {
            "agent": (self.agent_key, self.agent_index),
            "phone": (self.phone_key, self.phone_index),
            "emergency": (self.emergency_key, self.emergency_index),
        }[kind]
        k = key[codes]
        n = index.count(k, day)
        self_counted = (k >= 0) & (self.onboard_day[codes] <= day)
        return n - self_counted.astype(np.int64)

    def static_counts(self, code: int, day: int) -> tuple[tuple[int, int, int, int], int]:
        """One customer's peer-group size and other customers sharing its agent, phone and emergency
        phone on ``day`` (as :meth:`peer_group_size` and :meth:`other_customers`), and the first later
        day on which any of them can change: they only change when a member is onboarded, so a caller
        can keep them until then."""
        size, until = self.peer_index.count_one(int(self.peer_group[code]), day)
        onboard = int(self.onboard_day[code])
        if day < onboard:
            until = min(until, onboard)  # the customer starts counting itself
        values = [max(size, 1)]
        for key, index in ((self.agent_key, self.agent_index), (self.phone_key, self.phone_index),
                           (self.emergency_key, self.emergency_index)):
            k = int(key[code])
            n, changes = index.count_one(k, day)
            values.append(n - int(k >= 0 and onboard <= day))
            until = min(until, changes)
        return (values[0], values[1], values[2], values[3]), until


# -- customers added or changed while serving -------------------------------------------------------
def customer_records(customers: pd.DataFrame) -> list[dict[str, object]]:
    """Rows of a typed customers frame as plain JSON values (dates as YYYY-MM-DD, missing as None), in the
    contract's columns: what a customers change is logged as, and compared by."""
    from amlscore.contract.schema import CUSTOMERS  # noqa: PLC0415

    cols = [c for c in CUSTOMERS.column_names if c in customers.columns]
    out: list[dict[str, object]] = []
    for row in customers[cols].itertuples(index=False, name=None):
        rec: dict[str, object] = {}
        for c, v in zip(cols, row):
            if v is None or (not isinstance(v, str) and pd.isna(v)):
                rec[c] = None
            elif isinstance(v, pd.Timestamp):
                rec[c] = v.strftime("%Y-%m-%d")
            elif isinstance(v, np.generic):
                rec[c] = v.item()
            else:
                rec[c] = v
        rec["customer_id"] = str(rec["customer_id"])
        out.append(rec)
    return out


def typed_customers(records: list[dict[str, object]] | pd.DataFrame) -> pd.DataFrame:
    """Customer rows (records or a frame of contract values) checked against the contract and typed as the
    loader types them; :class:`~amlscore.contract.problems.ContractViolationError` names what is wrong."""
    from amlscore.contract import dataset_from_frames  # noqa: PLC0415
    from amlscore.contract.schema import CUSTOMERS, TRANSACTIONS  # noqa: PLC0415

    frame = records if isinstance(records, pd.DataFrame) else pd.DataFrame(records, columns=list(CUSTOMERS.column_names))
    empty = pd.DataFrame(columns=list(TRANSACTIONS.column_names))
    return dataset_from_frames(frame, empty).customers


def upsert_customer_table(customers: pd.DataFrame, records: list[dict[str, object]]) -> pd.DataFrame:
    """``customers`` with ``records`` merged in: a known customer_id's row replaced where it stands, new
    customers appended in the order given (so the codes of the customers already there do not move)."""
    new = typed_customers(records)
    ids = customers["customer_id"].astype(str)
    pos = {cid: i for i, cid in enumerate(ids.tolist())}
    new_ids = new["customer_id"].astype(str).tolist()
    known = [i for i, cid in enumerate(new_ids) if cid in pos]
    out = customers.copy()
    if known:
        rows = new.iloc[known]
        targets = [pos[new_ids[i]] for i in known]
        for c in out.columns:
            if c in rows.columns:
                values = rows[c].to_numpy()
                if out[c].dtype != rows[c].dtype:
                    out[c] = out[c].astype(object)
                out.iloc[targets, out.columns.get_loc(c)] = values
    added = new.iloc[[i for i, cid in enumerate(new_ids) if cid not in pos]]
    if len(added):
        out = pd.concat([out, added[out.columns]], ignore_index=True)
    return typed_customers(customer_records(out)) if known or len(added) else out
