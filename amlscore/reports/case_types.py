"""The facts of a case as plain data types (no HTML, no charts), and the model a case is scored with.

:func:`amlscore.reports.case.gather_case` fills them (with the builders of
:mod:`amlscore.reports.case_facts`); the HTML (:mod:`amlscore.reports.html`) and the narrative
(:mod:`amlscore.reports.narrative`) are written from them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.core.decision import ModelSetLike

#: Days of history shown before an alert, and after it, when the case is one alert.
ALERT_LOOKBACK_DAYS = 90
ALERT_LOOKAHEAD_DAYS = 14
PEER_WINDOW_DAYS = 30
TOP_ATTRIBUTIONS = 10
MAX_COUNTERPARTIES = 12
MAX_SHARED = 15
MAX_LINKED_LISTED = 6


class CaseError(AmlError):
    """The case cannot be built: unknown request id or customer, empty period, bad dates."""


# ---------------------------------------------------------------------------------------------
# The facts
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Profile:
    """Who the customer is (contract fields, typed) and what has been reported about it."""

    customer_id: str
    customer_type: str
    occupation: str
    peer_group: str
    birth_or_incorporation_date: date | None
    age_years: int | None
    nationality: str | None
    residence_country: str | None
    home_region: str | None
    id_document_type: str | None  # None: unknown (the contract lets these KYC columns be empty)
    is_pep: bool | None
    on_watchlist: bool | None
    refused_cdd: bool | None
    is_resident: bool | None
    onboarding_channel: str | None
    onboarded_at: date | None
    agent_id: str | None
    phone: str | None
    emergency_contact_phone: str | None
    ownership_layers: int | None
    declared_annual_income: float | None
    accounts: tuple[str, ...]
    reports_suspicious: int
    reports_not_suspicious: int


@dataclass(frozen=True)
class RatingItem:
    """One weighted sub-item of the rating; ``text`` is the line of :func:`amlscore.models.rules.explain_rating`."""

    element: str
    element_label: str
    sub_item: str
    sub_item_label: str
    score: int
    weight: float
    contribution: float
    missing: bool
    detail: str
    text: str


@dataclass(frozen=True)
class Rating:
    """The customer's risk rating at ``as_of`` (PBoC weighted method, the higher the riskier)."""

    as_of: date
    level: str
    level_name: str
    level_rank: int
    n_levels: int
    score: float
    score_level_name: str
    basis: str
    elements: tuple[tuple[str, str, float], ...]  # (element id, label, subtotal)
    items: tuple[RatingItem, ...]
    lines: tuple[str, ...]
    next_review: date | None
    review_interval_months: int
    max_item_score: int
    config_hash: str
    config_revision: str


@dataclass(frozen=True)
class Txn:
    """One transaction as the report shows it; ``time`` is on the bank's clock."""

    txn_id: str
    time: pd.Timestamp
    amount: float
    direction: str
    channel: str
    txn_type: str
    counterparty_id: str | None
    counterparty_type: str | None
    counterparty_country: str | None
    ip_address: str | None
    device_id: str | None
    operator_id: str | None
    suspicion_score: float
    rule_score: float
    alert: bool
    rules_fired: tuple[str, ...]


@dataclass(frozen=True)
class Attribution:
    """A feature's contribution to the model output (log-odds for LightGBM; anomaly units for the IF)."""

    feature: str
    label: str
    value: float | None
    contribution: float


@dataclass(frozen=True)
class Condition:
    label: str
    feature: str
    op: str
    threshold: float
    value: float | None


@dataclass(frozen=True)
class FiredRule:
    rule_id: str
    name: str
    weight: float
    conditions: tuple[Condition, ...]


@dataclass(frozen=True)
class ScoreFacts:
    """The decision on one transaction: the fused score, its parts and why.

    ``suspicion_score`` is 0..100 (the higher, the more suspicious); ``alert`` is the model set's
    decision at ``threshold``. ``base_value`` + sum of all attributions = the LightGBM log-odds
    (``other_contribution`` is the sum of the attributions not listed). ``fusion_intercept`` + sum
    of ``fusion_terms`` = logit(suspicion_score / 100). Anomaly attributions are shares (sum 1).
    """

    txn: Txn
    suspicion_score: float
    alert: bool
    threshold: float | None
    rule_score: float | None
    lgbm_probability: float | None
    anomaly_score: float | None
    fusion_terms: Mapping[str, float]  # each component's additive term in the fused log-odds
    fusion_intercept: float | None
    base_value: float | None
    attributions: tuple[Attribution, ...]
    other_contribution: float
    n_other: int
    anomaly_attributions: tuple[Attribution, ...]
    rules: tuple[FiredRule, ...]
    source: str  # "audit log", "audit log (explained later)", "recomputed", "rules only"


@dataclass(frozen=True)
class PeerMetric:
    """One measure over the peer window: the customer's value, the peer average and their ratio."""

    key: str
    label: str
    kind: str  # "amount" or "count"
    customer_value: float
    peer_mean: float
    ratio: float  # inf when the peers average 0 and the customer does not


@dataclass(frozen=True)
class PeerComparison:
    group: str
    group_words: str
    n_peers: int
    start: date
    end: date
    metrics: tuple[PeerMetric, ...]


@dataclass(frozen=True)
class Counterparty:
    """Money exchanged with one counterparty (a customer of the bank) or one kind of external party."""

    key: str
    customer_id: str | None
    counterparty_type: str
    country: str | None
    n_in: int
    n_out: int
    sum_in: float
    sum_out: float
    first: pd.Timestamp
    last: pd.Timestamp
    level_name: str | None = None
    reports_suspicious: int = 0


@dataclass(frozen=True)
class LinkedCustomer:
    customer_id: str
    level_name: str | None
    reports_suspicious: int
    first_seen: date | None
    last_seen: date | None


@dataclass(frozen=True)
class SharedIdentifier:
    """An identifier the customer shares with other customers (all of the data set)."""

    kind: str  # ip, device, operator, agent, phone, emergency_phone
    value: str
    n_txn: int
    first_seen: date | None
    last_seen: date | None
    n_others: int
    others: tuple[LinkedCustomer, ...]  # the first few, riskiest first


@dataclass(frozen=True)
class Versions:
    model_name: str | None = None
    model_version: str | None = None
    model_alias: str | None = None
    run_id: str | None = None
    model_trained_on: str | None = None  # data fingerprint of the training data
    feature_set_version: str | None = None
    feature_params_hash: str | None = None
    rules_config_hash: str | None = None
    rules_config_revision: str | None = None
    data_fingerprint: str | None = None
    contract_version: str | None = None
    code_version: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict)
    request_id: str | None = None
    decided_at: str | None = None
    caller: str | None = None
    chain_hash: str | None = None


@dataclass(frozen=True, eq=False)
class CaseFacts:
    """Everything a case report shows, in one language.

    ``transactions`` has one row per transaction of the customer in the shown window: ``txn_id,
    time`` (bank clock), ``amount, direction, channel, txn_type, counterparty_id, counterparty_type,
    counterparty_country, suspicion_score, rule_score, alert, rules_fired``, in time order.
    """

    lang: str
    mode: str  # "alert" or "period"
    case_id: str
    customer_id: str
    start: date
    end: date
    as_of: date
    generated_at: pd.Timestamp
    profile: Profile
    rating: Rating | None
    score: ScoreFacts | None
    transactions: pd.DataFrame
    alerted: tuple[Txn, ...]
    peers: PeerComparison | None
    counterparties: tuple[Counterparty, ...]
    shared: tuple[SharedIdentifier, ...]
    n_shared_total: int
    versions: Versions
    notes: tuple[str, ...] = ()

    @property
    def in_period(self) -> pd.DataFrame:
        """The transactions between ``start`` and ``end`` (bank days, inclusive)."""
        t = self.transactions
        day = t["time"].dt.normalize()
        return t[(day >= pd.Timestamp(self.start)) & (day <= pd.Timestamp(self.end))]

    @property
    def alert_count(self) -> int:
        return int(self.in_period["alert"].sum()) if len(self.transactions) else 0

    @property
    def highest_score(self) -> float:
        p = self.in_period
        return float(p["suspicion_score"].max()) if len(p) else float("nan")


# ---------------------------------------------------------------------------------------------
# Model access (a model set, or the rules alone)
# ---------------------------------------------------------------------------------------------
@dataclass
class ModelInfo:
    """A loaded model set with where it came from (None ``model_set``: rules only)."""

    model_set: ModelSetLike | None = None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    def meta(self, key: str, default: Any = None) -> Any:
        """``model_set.metadata[key]`` (``default`` without a model set or the key)."""
        return default if self.model_set is None else self.model_set.metadata.get(key, default)

    @property
    def threshold(self) -> float | None:
        return None if self.model_set is None else float(self.model_set.alert_threshold)
