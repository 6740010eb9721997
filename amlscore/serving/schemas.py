"""Request and response bodies of the HTTP API (version 1), as strict pydantic models.

Requests are strict: no type coercion (``"100"`` is not an amount), no unknown fields, no NaN or
infinity, enumerations exactly as in the data contract (:mod:`amlscore.contract.schema`). Responses are
documented here for the OpenAPI page; the service fills them from the decision it records.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from datetime import date, datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from amlscore.contract.countries import ISO_ALPHA2
from amlscore.core.decision import AnomalyAttribution, FeatureContribution
from amlscore.contract.schema import CHANNELS, COUNTERPARTY_TYPES, DIRECTIONS, IP_CHANNELS, LABELS, TERMINAL_CHANNELS, TXN_TYPES

API_VERSION = "v1"
MAX_BATCH_ITEMS = 10_000  # hard ceiling of the schema; AML_MAX_BATCH_SIZE sets the limit in force
MAX_AMOUNT = 1e12  # CNY; a sanity bound above any real transaction, so a typo cannot poison the state
# The span of datetime64[ns] the online features compute in, whole days (as the data contract's range).
TIMESTAMP_MIN = datetime(1677, 9, 22, tzinfo=timezone.utc)
TIMESTAMP_MAX = datetime(2262, 4, 11, tzinfo=timezone.utc)
TIMESTAMP_RANGE = f"between {TIMESTAMP_MIN:%Y-%m-%d} and {TIMESTAMP_MAX:%Y-%m-%d} (UTC)"
Lang = Literal["en", "zh"]

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)
_ID = dict(min_length=1, max_length=128)
_IDENTIFIERS = ("txn_id", "customer_id", "account_id", "counterparty_id", "device_id", "terminal_id", "operator_id")
_OPTIONAL_TEXT = ("counterparty_id", "ip_address", "ip_region", "device_id", "terminal_id", "terminal_region",
                  "operator_id", "counterparty_country", "ip_country", "counterparty_account")


def check_identifier(v: str | None) -> str | None:
    """Refuse control characters and invisible formatting characters (Unicode categories Cc and Cf: bidirectional
    overrides and isolates, zero-width characters) in an identifier: they make one id display as another
    in case files, logs and the audit log."""
    if v is None:
        return v
    bad = next((c for c in v if unicodedata.category(c) in ("Cc", "Cf")), None)
    if bad is not None:
        name = unicodedata.name(bad, "control character")
        raise ValueError(f"must not contain control or invisible formatting characters; found U+{ord(bad):04X} "
                         f"({name}) at position {v.index(bad)}")
    return v


class Transaction(BaseModel):
    """One transaction, with the fields of the data contract's ``transactions`` table."""

    model_config = _STRICT

    txn_id: str = Field(description="Transaction identifier, unique. Sending it again returns the original decision.", **_ID)
    timestamp: datetime = Field(description="When it happened, ISO 8601; without an offset it is UTC.")
    customer_id: str = Field(description="The customer, who must be in the customers table.", **_ID)
    account_id: str = Field(description="The customer's account.", **_ID)
    direction: Literal[DIRECTIONS] = Field(description="Seen from the customer: in or out.")  # type: ignore[valid-type]
    amount: float = Field(gt=0, le=MAX_AMOUNT, description="Amount in CNY, > 0.")
    channel: Literal[CHANNELS] = Field(description="Channel the transaction came through.")  # type: ignore[valid-type]
    txn_type: Literal[TXN_TYPES] = Field(description="Kind of transaction.")  # type: ignore[valid-type]
    counterparty_id: str | None = Field(None, max_length=128, description="The other customer's customer_id when it banks here.")
    counterparty_type: Literal[COUNTERPARTY_TYPES] = Field(description="Kind of counterparty.")  # type: ignore[valid-type]
    counterparty_country: str | None = Field(None, description="ISO 3166-1 alpha-2 country of the counterparty.")
    ip_address: str | None = Field(None, max_length=64, description="Client IP; online and mobile banking only.")
    ip_country: str | None = Field(None, description="ISO 3166-1 alpha-2 country of the client IP.")
    ip_region: str | None = Field(None, max_length=64, description="Region of the client IP, e.g. CN-11.")
    device_id: str | None = Field(None, max_length=128, description="Client device; online and mobile banking only.")
    terminal_id: str | None = Field(None, max_length=128, description="POS or ATM terminal; POS and ATM only.")
    terminal_region: str | None = Field(None, max_length=64, description="Region of the terminal.")
    operator_id: str | None = Field(None, max_length=128, description="Empty unless someone other than the customer executed it.")
    counterparty_account: str | None = Field(None, max_length=128,
                                             description="The other side's account number, whether or not it banks here.")

    @field_validator(*_OPTIONAL_TEXT, mode="before")
    @classmethod
    def _empty_is_unknown(cls, v: Any) -> Any:
        return None if isinstance(v, str) and v.strip() == "" else v

    @field_validator(*_IDENTIFIERS)
    @classmethod
    def _identifier(cls, v: str | None) -> str | None:
        return check_identifier(v)

    @field_validator("ip_address")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(f"must be an IPv4 or IPv6 address, got {v[:64]!r}") from None
        return v

    @field_validator("counterparty_country", "ip_country")
    @classmethod
    def _country(cls, v: str | None) -> str | None:
        if v is not None and v not in ISO_ALPHA2:
            raise ValueError(f"must be an ISO 3166-1 alpha-2 country code in upper case, got {v!r}")
        return v

    @field_validator("timestamp")
    @classmethod
    def _utc(cls, v: datetime) -> datetime:
        """In UTC, and inside :data:`TIMESTAMP_RANGE` (year 1 with a positive offset, or year 9999 with a
        negative one, cannot even be converted: that is out of range too)."""
        try:
            utc = v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)
            inside = TIMESTAMP_MIN <= utc <= TIMESTAMP_MAX
        except OverflowError:
            inside = False
        if not inside:
            raise ValueError(f"must be {TIMESTAMP_RANGE}, got {v.isoformat()}")
        return utc

    @model_validator(mode="after")
    def _channel_fields(self) -> "Transaction":
        problems = []
        for name, channels in (("ip_address", IP_CHANNELS), ("device_id", IP_CHANNELS), ("terminal_id", TERMINAL_CHANNELS)):
            present = getattr(self, name) is not None
            where = " or ".join(channels)
            required = self.direction == "out" or channels is TERMINAL_CHANNELS  # an in row carries no session of its own
            if self.channel in channels and required and not present:
                problems.append(f"{name} must not be empty when channel is {where}"
                                + (" and direction is out" if channels is IP_CHANNELS else ""))
            elif self.channel not in channels and present:
                problems.append(f"{name} must be empty unless channel is {where} (channel is {self.channel})")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def to_record(self) -> dict[str, Any]:
        """The contract record the online feature state takes (timestamp as ISO 8601 UTC with ``Z``)."""
        rec = self.model_dump()
        rec["timestamp"] = self.timestamp.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"  # 4-digit year
        return rec


class ScoreRequest(BaseModel):
    """Body of ``POST /v1/score``."""

    model_config = _STRICT

    transaction: Transaction = Field(description="The transaction to score.")
    explain: bool = Field(True, description="Compliance and admin callers: compute the feature attributions now "
                                            "(ignored for the channel role, which never sees them).")
    lang: Lang = Field("en", description="Language of the written explanations: en or zh.")


class ScoreBatchRequest(BaseModel):
    """Body of ``POST /v1/score_batch``: transactions scored in order, as if sent one by one."""

    model_config = _STRICT

    transactions: list[Transaction] = Field(min_length=1, max_length=MAX_BATCH_ITEMS,
                                            description="Transactions, scored in the order given.")
    explain: bool = Field(False, description="Compliance and admin callers: compute feature attributions for each.")
    lang: Lang = Field("en", description="Language of the written explanations.")


class ExplainRequest(BaseModel):
    """Body of ``POST /v1/explain``."""

    model_config = _STRICT

    request_id: str = Field(description="The request id a score call returned.", **_ID)
    lang: Lang = Field("en", description="Language of the written explanation.")

    _identifier = field_validator("request_id")(check_identifier)


class CustomerRiskRequest(BaseModel):
    """Body of ``POST /v1/customer_risk``."""

    model_config = _STRICT

    customer_id: str = Field(description="The customer.", **_ID)
    lang: Lang = Field("en", description="Language of the written breakdown.")
    _identifier = field_validator("customer_id")(check_identifier)
    refresh: bool = Field(False, description="Rate the customer again now, with the transactions scored since start "
                                             "and the feedback recorded, instead of returning the rating made at start.")


class FeedbackRequest(BaseModel):
    """Body of ``POST /v1/feedback``: an analyst's disposition of an alert (or of any scored transaction)."""

    model_config = _STRICT

    request_id: str | None = Field(None, max_length=128, description="The decision's request id (or give txn_id).")
    txn_id: str | None = Field(None, max_length=128, description="The scored transaction (or give request_id).")
    label: Literal[LABELS] = Field(description="suspicious or not_suspicious.")  # type: ignore[valid-type]
    typology: str | None = Field(None, max_length=64, description="Laundering typology, when suspicious.")
    analyst: str | None = Field(None, max_length=128, description="Who decided (stored with the caller's key id).")
    note: str | None = Field(None, max_length=2000, description="Free text, kept in the feedback store only.")
    report_date: date | None = Field(None, description="Filing date YYYY-MM-DD (bank clock); default today.")

    _identifiers = field_validator("request_id", "txn_id", "analyst", "typology")(check_identifier)

    @model_validator(mode="after")
    def _one_reference(self) -> "FeedbackRequest":
        if (self.request_id is None) == (self.txn_id is None):
            raise ValueError("give exactly one of request_id and txn_id")
        return self


class ReloadRequest(BaseModel):
    """Body of ``POST /v1/admin/reload``."""

    model_config = _STRICT

    alias: str | None = Field(None, max_length=64, description="Alias to load (default: the one the service started with).")
    version: str | None = Field(None, pattern=r"^[0-9]+$", description="A registry version to load instead of an alias.")

    _identifier = field_validator("alias")(check_identifier)


class CustomersRequest(BaseModel):
    """Body of ``POST /v1/admin/customers``: customers to add or change, in the contract's customers columns."""

    model_config = _STRICT

    customers: list[dict[str, Any]] = Field(..., min_length=1, max_length=10_000,
                                            description="Rows of the customers table (customer_id is the key).")


class DriftRequest(BaseModel):
    """Body of ``POST /v1/admin/drift``."""

    model_config = _STRICT

    day: str | None = Field(None, pattern=r"^\d{4}-\d{2}-\d{2}$",
                            description="Bank day YYYY-MM-DD (default: the latest day scored).")

    @field_validator("day")
    @classmethod
    def _a_date(cls, value: str | None) -> str | None:
        if value is not None:
            date.fromisoformat(value)  # ValueError: not a calendar day
        return value


class EmptyRequest(BaseModel):
    """Body of endpoints without parameters (may be empty)."""

    model_config = _STRICT


# -- responses --------------------------------------------------------------------------------------
class Components(BaseModel):
    rule_score: float = Field(description="Rule score 0..100, the higher the more suspicious.")
    lgbm_probability: float = Field(description="LightGBM probability of a suspicious transaction, 0..1.")
    anomaly_score: float = Field(description="IsolationForest anomaly score, the higher the more anomalous.")


class RiskSummary(BaseModel):
    level: str | None = Field(description="Customer risk level id; null when the customer is not rated yet.")
    level_name: str | None = Field(description="Level name in the requested language.")
    score: float | None = Field(description="Weighted rating score 0..100, the higher the riskier.")
    rating_basis: str | None = Field(description="weighted_score, direct_to_highest or direct_to_lowest.")
    rated_at: str | None = Field(description="Rating date (bank clock).")


class Versions(BaseModel):
    model_name: str
    model_version: str
    model_alias: str | None
    feature_set_version: str | None
    feature_params_hash: str | None
    rules_config_hash: str | None
    data_fingerprint: str | None


class Decision(BaseModel):
    """A scoring decision. Channel callers get the first six fields only."""

    request_id: str = Field(description="Identifies this decision in the audit log (ULID).")
    txn_id: str
    suspicion_score: float = Field(description="Fused suspicion score 0..100, the higher the more suspicious.")
    alert: bool = Field(description="The alert decision (suspicion score at or above the model set's threshold).")
    decided_at: str = Field(description="When the decision was made (UTC).")
    replayed: bool = Field(description="True when the txn_id was scored before: this is the original decision.")
    customer_id: str | None = None
    components: Components | None = None
    alert_threshold: float | None = None
    customer_risk: RiskSummary | None = None
    peer_group: str | None = Field(None, description="The customer's peer group: customer type | occupation or industry.")
    attributions: list[FeatureContribution] | None = Field(
        None, description="Top TreeSHAP contributions (LightGBM) with feature values: the explanation's lgbm_contributions.")
    anomaly_attribution: list[AnomalyAttribution] | None = Field(
        None, description="What made the transaction anomalous (IsolationForest): the explanation's anomaly_attribution.")
    rules_fired: list[dict[str, Any]] | None = Field(None, description="Rules fired, with each condition's value and threshold.")
    rules_summary: str | None = Field(None, description="The rule score and how the fired rules combine, in words.")
    peer_comparisons: list[str] | None = Field(None, description="The customer against its peer group and its own history, in words.")
    explanation: dict[str, Any] | None = Field(None, description="The model set's full explanation (when computed): "
                                                                 "amlscore.models.decision.Explanation.to_dict().")
    explanation_lang: str | None = Field(None, description="Language the explanation's words were written in.")
    versions: Versions | None = None


class BatchItemError(BaseModel):
    index: int
    txn_id: str
    status: int
    code: str
    error: str


class BatchResult(BaseModel):
    batch_id: str
    n: int
    n_scored: int
    n_replayed: int
    n_errors: int
    results: list[dict[str, Any]] = Field(description="One entry per transaction, in order: a Decision or a BatchItemError.")


class ExplainResult(BaseModel):
    request_id: str
    decision: Decision = Field(description="The decision exactly as recorded then (full view).")
    explanation: dict[str, Any] | None = Field(description="Feature attributions, anomaly attribution and rules, "
                                                            "computed with the model version that decided.")
    explanation_source: str = Field(description="'decision' (computed when scoring) or 'deferred' (computed later "
                                                "with the same model version and feature row, then frozen).")
    caller: dict[str, str] = Field(description="Who asked for the decision then.")


class ReplacedRating(BaseModel):
    rating: dict[str, Any] = Field(description="The rating's summary (level, names, score, basis, date) before the change.")
    replaced_at: str = Field(description="When the customer's data changed (UTC).")
    replaced_by: str = Field(description="The key id (or user:<name>) that sent the change.")


class CustomerRiskResult(BaseModel):
    customer_id: str
    as_of: str
    refreshed: bool
    rating: dict[str, Any]
    breakdown: list[dict[str, Any]]
    explanation: list[str]
    history: list[ReplacedRating] = Field(default_factory=list, description=(
        "The ratings the customer had before its data changed while serving, oldest first (kept in the feedback "
        "store, so they outlive a restart)."))


class FeedbackReceipt(BaseModel):
    report_id: str
    request_id: str
    txn_id: str
    customer_id: str
    label: str
    report_date: str
    export_file: str


class Metadata(BaseModel):
    service: str
    api_version: str
    versions: Versions
    model_ref: str
    loaded_at: str
    alert_threshold: float
    thresholds: dict[str, Any]
    feature_names: list[str]
    rules_config_revision: str | None
    customers: int
    state: dict[str, Any]


class Health(BaseModel):
    status: str
    ready: bool
    model_version: str | None
    audit_decisions: int
    state_transactions: int
    uptime_seconds: float


class DriftSummary(BaseModel):
    """A bank day's drift figures against the served model set's training reference."""

    model_version: str
    day: str | None
    days: list[str] = Field(description="The days kept.")
    rows: int = Field(description="Decisions of the day.")
    alerts: int = 0
    alert_rate: float = 0.0
    reference_alert_rate: float | None = None
    score_quantiles: dict[str, float] = Field(default_factory=dict, description="Suspicion score quantiles (to 0.1).")
    worst_psi: dict[str, Any] = Field(default_factory=dict, description="The column with the largest PSI and its PSI.")
    psi: dict[str, float] = Field(default_factory=dict, description="PSI of every feature and score.")
    segments: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict,
                                                             description="Rows, alerts and alert rate per channel and customer type.")


class CustomersResult(BaseModel):
    added: list[str] = Field(description="customer_ids that were not in the customers table.")
    updated: list[str] = Field(description="customer_ids whose row changed.")
    unchanged: int = Field(description="Rows sent that were already as given.")
    ratings: dict[str, dict[str, Any]] = Field(description="Per changed customer: its rating before (None: new) and after.")


class ReloadResult(BaseModel):
    previous: Versions
    current: Versions
    changed: bool
