"""The facts of a case, gathered into plain data (no HTML, no charts).

A case is either one **alert** (a decision of the scoring service, by its request id in the audit
log) or a **customer and a period**. :func:`gather_case` collects what a compliance officer reads,
in the order of the report:

* the customer's profile and its risk rating at the case date, with every sub-item;
* the suspicion score of the alerted (or highest-scored) transaction, its components, the feature
  attributions (TreeSHAP on LightGBM), the anomaly attribution and the rules fired;
* the customer's transactions around the case, each scored, the alerted ones marked;
* the customer against its peer group over the 30 days to the case date;
* counterparties, and identifiers (IP address, device, operator, agent, phone) shared with other
  customers;
* the versions of the model set, the data and the configurations.

Everything is data: numbers, codes and a few sentences already worded in the case's language by
the packages that own them (the rating lines of :func:`amlscore.models.rules.explain_rating`). The HTML
(:mod:`amlscore.reports.html`) and the narrative (:mod:`amlscore.reports.narrative`) are written from these facts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.reports import i18n
from amlscore.reports.store import CaseStore

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

    model_set: Any = None
    name: str | None = None
    version: str | None = None
    alias: str | None = None
    run_id: str | None = None

    def meta(self, key: str, default: Any = None) -> Any:
        meta = getattr(self.model_set, "metadata", None)
        if meta is None:
            return default
        if isinstance(meta, Mapping):
            return meta.get(key, default)
        return getattr(meta, key, default)

    @property
    def threshold(self) -> float | None:
        v = getattr(self.model_set, "alert_threshold", None)
        return None if v is None else float(v)


def score_frame_fast(model_set: Any, features: pd.DataFrame) -> pd.DataFrame:
    """``model_set.score_frame`` without its per-row reasons (TreeSHAP for every alert costs more
    than the scores; reports explain one transaction themselves)."""
    try:
        return model_set.score_frame(features, reasons="none")
    except TypeError:  # a model set without the option
        return model_set.score_frame(features)


def score_transactions(model: ModelInfo | None, features: pd.DataFrame, rules: pd.DataFrame,
                       rules_alert_score: float) -> pd.DataFrame:
    """``suspicion_score, rule_score, lgbm_probability, anomaly_score, alert`` per feature row.

    With a model set: its ``score_frame``. Without: the rule score stands for the suspicion score
    and a transaction is marked when it reaches ``rules_alert_score``.
    """
    n = len(features)
    if model is not None and model.model_set is not None and n:
        s = score_frame_fast(model.model_set, features)
        out = pd.DataFrame(index=features.index)
        for c in ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score"):
            out[c] = np.asarray(s[c], dtype=float) if c in s else np.nan
        out["alert"] = np.asarray(s["alert"], dtype=bool)
        return out
    rs = rules["rule_score"].to_numpy(dtype=float) if n else np.zeros(0)
    return pd.DataFrame({"suspicion_score": rs, "rule_score": rs, "lgbm_probability": np.nan, "anomaly_score": np.nan,
                         "alert": rs >= rules_alert_score}, index=features.index)


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------
def _opt(v: Any) -> Any:
    """None for missing values (NA, NaN, NaT, empty text)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and not v.strip():
        return None
    return v


def _opt_str(v: Any) -> str | None:
    v = _opt(v)
    return None if v is None else str(v)


def _opt_flag(v: Any) -> bool | None:
    """A true/false KYC flag; None when unknown."""
    v = _opt(v)
    return None if v is None else bool(v)


def _opt_date(v: Any) -> date | None:
    v = _opt(v)
    return None if v is None else pd.Timestamp(v).date()


def _flt(v: Any) -> float | None:
    v = _opt(v)
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _day(v: Any, name: str) -> pd.Timestamp:
    """A date-like value as a naive midnight (:func:`amlscore.models.rules.review.to_day`); :class:`CaseError` if it is not one."""
    from amlscore.models.rules.review import to_day

    try:
        return to_day(v, name)
    except AmlError as exc:
        raise CaseError(str(exc)) from None


def _whole_years(born: date | None, day: date) -> int | None:
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


# ---------------------------------------------------------------------------------------------
# Gathering
# ---------------------------------------------------------------------------------------------
def profile_facts(store: CaseStore, customer_id: str, txns: pd.DataFrame, as_of: date) -> Profile:
    """The customer's profile from the customers table, its accounts and its earlier reports."""
    c = store.customer(customer_id)
    born = _opt_date(c["birth_or_incorporation_date"])
    reps = store.reports
    mine = reps[(reps["customer_id"].astype(str) == str(customer_id))
                & (pd.to_datetime(reps["report_date"]) <= pd.Timestamp(as_of))]
    labels = mine["label"].astype(str)
    layers = _opt(c["ownership_layers"])
    return Profile(
        customer_id=str(customer_id),
        customer_type=str(c["customer_type"]),
        occupation=str(c["occupation_or_industry"]),
        peer_group=f"{c['customer_type']}|{c['occupation_or_industry']}",
        birth_or_incorporation_date=born,
        age_years=_whole_years(born, as_of),
        nationality=_opt_str(c["nationality"]),
        residence_country=_opt_str(c["residence_country"]),
        home_region=_opt_str(c["home_region"]),
        id_document_type=_opt_str(c["id_document_type"]),
        is_pep=_opt_flag(c["is_pep"]),
        on_watchlist=_opt_flag(c["on_watchlist"]),
        refused_cdd=_opt_flag(c["refused_cdd"]),
        is_resident=_opt_flag(c["is_resident"]),
        onboarding_channel=_opt_str(c["onboarding_channel"]),
        onboarded_at=_opt_date(c["onboarded_at"]),
        agent_id=_opt_str(c["agent_id"]),
        phone=_opt_str(c["phone"]),
        emergency_contact_phone=_opt_str(c["emergency_contact_phone"]),
        ownership_layers=None if layers is None else int(layers),
        declared_annual_income=_flt(c["declared_annual_income"]),
        accounts=tuple(sorted(txns["account_id"].dropna().astype(str).unique())) if len(txns) else (),
        reports_suspicious=int((labels == "suspicious").sum()),
        reports_not_suspicious=int((labels == "not_suspicious").sum()),
    )


def rate_for_case(store: CaseStore, customer_ids: Sequence[str], as_of: date, config: Any) -> Any:
    """Rate ``customer_ids`` at ``as_of`` (their behaviour from the store; others are not rated).

    Returns a :class:`amlscore.models.rules.RatingResult` restricted to those customers.
    """
    from amlscore.models.rules import customer_behaviour, rate_customers

    from amlscore.models.rules.behaviour import BEHAVIOUR_FEATURES
    from amlscore.models.rules.transaction_rules import rule_features

    ids = list(dict.fromkeys(str(c) for c in customer_ids))
    columns = list(dict.fromkeys(("txn_id", "customer_id", "timestamp") + BEHAVIOUR_FEATURES + rule_features(config)))
    feats = store.features(ids, columns=columns)
    txns = store.transactions(ids, columns=["customer_id", "timestamp", "counterparty_country"])
    behaviour = customer_behaviour(feats, as_of, config, transactions=txns)
    customers = store.customers
    # The only look across customers is the shared-phone count: pass ``ids`` and everyone sharing
    # their phones (onboarded by as_of), which rates ``ids`` exactly as rating everyone would.
    onboarded = (pd.to_datetime(customers["onboarded_at"]) <= pd.Timestamp(as_of)).to_numpy()
    cid = customers["customer_id"].astype(str)
    phone = customers["phone"].astype("string").str.strip()
    mine = cid.isin(ids).to_numpy()
    phones = set(phone[mine].dropna()) - {""}
    keep = onboarded & (mine | phone.isin(phones).fillna(False).to_numpy(dtype=bool))
    result = rate_customers(customers[keep].reset_index(drop=True), store.reports, behaviour, config, as_of)
    keep_r = result.ratings["customer_id"].astype(str).isin(ids).to_numpy()
    keep_b = result.breakdown["customer_id"].astype(str).isin(ids).to_numpy()
    return type(result)(ratings=result.ratings[keep_r].reset_index(drop=True),
                        breakdown=result.breakdown[keep_b].reset_index(drop=True), config=result.config, as_of=result.as_of)


def rating_facts(result: Any, customer_id: str, lang: str) -> Rating | None:
    """The :class:`Rating` of one customer out of a rating result (None when it was not rated)."""
    from amlscore.models.rules import explain_rating, spec
    from amlscore.models.rules import texts as rt
    from amlscore.models.rules.explain import sub_item_line

    r = result.ratings
    rows = r[r["customer_id"].astype(str) == str(customer_id)]
    if not len(rows):
        return None
    row = rows.iloc[0]
    cfg = result.config
    level = cfg.level(row["level"])
    b = result.breakdown
    mine = b[b["customer_id"].astype(str) == str(customer_id)]
    items = []
    for t in mine.itertuples(index=False):
        el_label, sub_label = rt.pick(rt.ELEMENTS[str(t.element)], lang), rt.pick(rt.SUB_ITEMS[str(t.sub_item)], lang)
        text = sub_item_line(cfg, str(t.sub_item), str(t.case), str(t.input), float(t.value), int(t.score),
                             float(t.weight), float(t.contribution), bool(t.missing), lang)
        head = f"{el_label} › {sub_label}" + ("：" if lang == "zh" else ": ")
        detail = text[len(head):] if text.startswith(head) else text
        detail = detail.split(" → ")[0]
        items.append(RatingItem(
            element=str(t.element), element_label=el_label, sub_item=str(t.sub_item), sub_item_label=sub_label,
            score=int(t.score), weight=float(t.weight), contribution=float(t.contribution), missing=bool(t.missing),
            detail=detail, text=text))
    score_level = cfg.level(row["score_level"])
    return Rating(
        as_of=pd.Timestamp(row["rated_at"]).date(),
        level=str(row["level"]),
        level_name=level.name.zh if lang == "zh" else level.name.en,
        level_rank=int(row["level_rank"]),
        n_levels=len(cfg.levels),
        score=float(row["score"]),
        score_level_name=score_level.name.zh if lang == "zh" else score_level.name.en,
        basis=str(row["rating_basis"]),
        elements=tuple((el, rt.pick(rt.ELEMENTS[el], lang), float(row[f"score_{el}"])) for el in spec.ELEMENTS),
        items=tuple(items),
        lines=tuple(explain_rating(result, customer_id, lang=lang)),
        next_review=_opt_date(row["next_review"]),
        review_interval_months=int(row["review_interval_months"]),
        max_item_score=int(cfg.max_item_score),
        config_hash=str(cfg.hash),
        config_revision=str(cfg.revision),
    )


def _level_names(result: Any, lang: str) -> dict[str, str]:
    r = result.ratings
    col = "level_name_zh" if lang == "zh" else "level_name_en"
    return dict(zip(r["customer_id"].astype(str), r[col].astype(str)))


def timeline_frame(store: CaseStore, txns: pd.DataFrame, scores: pd.DataFrame, rules: pd.DataFrame) -> pd.DataFrame:
    """The transactions of the shown window, on the bank clock, with their scores (see :class:`CaseFacts`)."""
    out = pd.DataFrame({
        "txn_id": txns["txn_id"].astype(str).to_numpy(),
        "time": store.local(txns["timestamp"]).to_numpy(),
        "amount": txns["amount"].to_numpy(dtype=float),
        "direction": txns["direction"].astype(str).to_numpy(),
        "channel": txns["channel"].astype(str).to_numpy(),
        "txn_type": txns["txn_type"].astype(str).to_numpy(),
        "counterparty_id": txns["counterparty_id"].astype("string").to_numpy(dtype=object, na_value=None),
        "counterparty_type": txns["counterparty_type"].astype(str).to_numpy(),
        "counterparty_country": txns["counterparty_country"].astype("string").to_numpy(dtype=object, na_value=None),
        "ip_address": txns["ip_address"].astype("string").to_numpy(dtype=object, na_value=None),
        "device_id": txns["device_id"].astype("string").to_numpy(dtype=object, na_value=None),
        "operator_id": txns["operator_id"].astype("string").to_numpy(dtype=object, na_value=None),
        "suspicion_score": scores["suspicion_score"].to_numpy(dtype=float),
        "rule_score": scores["rule_score"].to_numpy(dtype=float),
        "alert": scores["alert"].to_numpy(dtype=bool),
        "rules_fired": rules["fired"].astype(str).to_numpy(),
    })
    out["time"] = pd.to_datetime(out["time"])
    return out


def txn_fact(row: Mapping[str, Any] | pd.Series) -> Txn:
    """A :class:`Txn` from a row of :func:`timeline_frame`."""
    fired = str(row.get("rules_fired") or "")
    return Txn(
        txn_id=str(row["txn_id"]), time=pd.Timestamp(row["time"]), amount=float(row["amount"]),
        direction=str(row["direction"]), channel=str(row["channel"]), txn_type=str(row["txn_type"]),
        counterparty_id=_opt_str(row.get("counterparty_id")), counterparty_type=_opt_str(row.get("counterparty_type")),
        counterparty_country=_opt_str(row.get("counterparty_country")), ip_address=_opt_str(row.get("ip_address")),
        device_id=_opt_str(row.get("device_id")), operator_id=_opt_str(row.get("operator_id")),
        suspicion_score=float(row.get("suspicion_score", float("nan"))), rule_score=float(row.get("rule_score", float("nan"))),
        alert=bool(row.get("alert", False)), rules_fired=tuple(x for x in fired.split("|") if x),
    )


#: Peer measures: (key, daily columns summed, kind, en, zh).
PEER_MEASURES: tuple[tuple[str, tuple[str, ...], str, str, str], ...] = (
    ("cash_dep_sum", ("cash_dep_sum",), "amount", "cash deposits", "现金存款"),
    ("cash_wd_sum", ("cash_wd_sum",), "amount", "cash withdrawals", "现金取款"),
    ("in_sum", ("in_sum",), "amount", "money in", "转入金额"),
    ("out_sum", ("out_sum",), "amount", "money out", "转出金额"),
    ("n_txn", ("n_txn",), "count", "number of transactions", "交易笔数"),
    ("cross_border_sum", ("cross_border_sum",), "amount", "cross-border amount", "跨境交易金额"),
    ("high_risk_sum", ("high_risk_sum",), "amount", "amount with high-risk jurisdictions", "与高风险国家（地区）往来金额"),
    ("n_near_threshold_cash", ("n_near_threshold_cash",), "count",
     "cash transactions just below the large-value threshold", "略低于大额标准的现金交易笔数"),
    ("n_night", ("n_night",), "count", "night-time transactions", "夜间交易笔数"),
    ("n_operated_by_other", ("n_operated_by_other",), "count", "transactions executed by someone else", "他人代为操作的交易笔数"),
)


def peer_facts(store: CaseStore, profile: Profile, as_of: date, lang: str, days: int = PEER_WINDOW_DAYS) -> PeerComparison | None:
    """The customer against the average of its peer group (same customer type and occupation or
    industry, onboarded by ``as_of``, the customer excluded) over the ``days`` days to ``as_of``.

    Inactive peers count as zero, so the average is per peer customer, as in the peer features.
    """
    end = pd.Timestamp(as_of)
    start = end - pd.Timedelta(days=days - 1)
    c = store.customers
    group = (c["customer_type"].astype(str) + "|" + c["occupation_or_industry"].astype(str)).to_numpy()
    onboarded = (pd.to_datetime(c["onboarded_at"]) <= end).to_numpy()
    ids = c["customer_id"].astype(str).to_numpy()
    peers = set(ids[(group == profile.peer_group) & onboarded]) - {profile.customer_id}
    if not peers:
        return None
    daily = store.daily(start, end)
    cid = daily["customer_id"].astype(str)
    mine = daily[(cid == profile.customer_id).to_numpy()]
    theirs = daily[cid.isin(peers).to_numpy()]
    metrics = []
    for key, cols, kind, en, zh in PEER_MEASURES:
        own = float(mine[list(cols)].to_numpy().sum())
        mean = float(theirs[list(cols)].to_numpy().sum()) / len(peers)
        ratio = own / mean if mean > 0 else (math.inf if own > 0 else float("nan"))
        metrics.append(PeerMetric(key=key, label=zh if lang == "zh" else en, kind=kind, customer_value=own,
                                  peer_mean=mean, ratio=ratio))
    return PeerComparison(group=profile.peer_group, group_words=i18n.peer_group_words(profile.peer_group, lang),
                          n_peers=len(peers), start=start.date(), end=end.date(), metrics=tuple(metrics))


def counterparty_facts(period: pd.DataFrame, limit: int = MAX_COUNTERPARTIES) -> list[Counterparty]:
    """Counterparties of the period's transactions, by total amount: customers of the bank one by one,
    external parties grouped by type and country."""
    if not len(period):
        return []
    cp_id = period["counterparty_id"].astype(object).where(period["counterparty_id"].notna(), None)
    ctype = period["counterparty_type"].astype(str)
    country = period["counterparty_country"].astype(object).where(period["counterparty_country"].notna(), None)
    key = np.where(cp_id.notna(), "id:" + cp_id.astype(str), "ext:" + ctype + ":" + country.astype(str))
    f = pd.DataFrame({"key": key, "customer_id": cp_id, "type": ctype, "country": country,
                      "is_in": period["direction"].to_numpy() == "in", "amount": period["amount"].to_numpy(dtype=float),
                      "time": period["time"].to_numpy()})
    f["sum_in"] = np.where(f["is_in"], f["amount"], 0.0)
    f["sum_out"] = np.where(f["is_in"], 0.0, f["amount"])
    g = f.groupby("key", sort=False).agg(customer_id=("customer_id", "first"), type=("type", "first"),
                                         country=("country", "first"), n_in=("is_in", "sum"), n=("is_in", "size"),
                                         sum_in=("sum_in", "sum"), sum_out=("sum_out", "sum"),
                                         first=("time", "min"), last=("time", "max"))
    g["total"] = g["sum_in"] + g["sum_out"]
    g = g.sort_values(["total"], ascending=False).head(limit)
    return [Counterparty(key=str(k), customer_id=_opt_str(r.customer_id), counterparty_type=str(r.type),
                         country=_opt_str(r.country), n_in=int(r.n_in), n_out=int(r.n - r.n_in), sum_in=float(r.sum_in),
                         sum_out=float(r.sum_out), first=pd.Timestamp(r.first), last=pd.Timestamp(r.last))
            for k, r in g.iterrows()]


_KIND_ORDER = {"device": 0, "operator": 1, "agent": 2, "phone": 3, "emergency_phone": 4, "ip": 5}


def shared_facts(store: CaseStore, customer_id: str, window: pd.DataFrame, limit: int = MAX_SHARED
                 ) -> tuple[list[tuple[str, str, int, Any, Any, list[tuple[str, Any, Any]]]], int]:
    """Identifiers of the customer used by other customers.

    IP addresses, devices and operators count when the customer used them in the shown window;
    agent and phones always. Returns (rows, total) where each row is ``(kind, value, own n_txn,
    first, last, [(other customer, first, last), ...])``, fewest sharers and strongest kinds first.
    """
    links = store.links
    mine = links[links["customer_id"] == str(customer_id)]
    if not len(mine):
        return [], 0
    kind, value = mine["kind"].astype(str), mine["value"].astype(str)
    keep = kind.isin(["agent", "phone", "emergency_phone"]).to_numpy().copy()
    for k, col in (("ip", "ip_address"), ("device", "device_id"), ("operator", "operator_id")):
        used = set(window[col].dropna().astype(str))
        keep = keep | ((kind == k) & value.isin(used)).to_numpy(dtype=bool)
    mine = mine[keep]
    if not len(mine):
        return [], 0
    keys = mine[["kind", "value"]].drop_duplicates()
    others = links.merge(keys, on=["kind", "value"], how="inner")
    others = others[others["customer_id"] != str(customer_id)]
    grouped = {k: g for k, g in others.groupby(["kind", "value"], sort=False)}
    rows = []
    for r in mine.itertuples(index=False):
        o = grouped.get((r.kind, r.value))
        listed = [] if o is None else list(zip(o["customer_id"].astype(str).tolist(), o["first_seen"].tolist(),
                                               o["last_seen"].tolist()))
        rows.append((str(r.kind), str(r.value), int(r.n_txn), r.first_seen, r.last_seen, listed))
    # Devices, operators, agents and phones first (each is a strong link); IP addresses last, the
    # fewest sharers first (a public address shared by hundreds says little).
    rows.sort(key=lambda x: (_KIND_ORDER.get(x[0], 9), len(x[5]), x[1]))
    return rows[:limit], len(rows)


@dataclass
class _Expl:
    base: float | None = None
    attributions: list = field(default_factory=list)
    other: float = 0.0
    n_other: int = 0
    anomaly: list = field(default_factory=list)
    terms: dict = field(default_factory=dict)
    intercept: float | None = None
    rules: list | None = None


def _items(obj: Any, x: Mapping[str, float], lang: str, key: str) -> list[Attribution]:
    """Attributions out of a list of ``{feature, value, <key>}`` records (or ``(name, value, amount)``)."""
    from amlscore.reports.features_text import feature_label

    out = []
    for it in obj or []:
        if isinstance(it, Mapping):
            name = it.get("feature") or it.get("name")
            amount = it.get(key)
            value = it.get("value", x.get(str(name)))
        else:
            name, value, amount = it
        if name is None or amount is None:
            continue
        out.append(Attribution(str(name), feature_label(str(name), lang), _flt(value), float(amount)))
    return out


def explanation_facts(expl: Mapping[str, Any] | None, x: Mapping[str, float], lang: str,
                      lgbm_probability: float | None = None) -> _Expl:
    """Read a model-set explanation (:meth:`amlscore.models.model_set.Explanation.to_dict`).

    What the listed TreeSHAP contributions leave out ("other features") is
    ``logit(lgbm_probability) - expected value - sum(listed)``: LightGBM's contributions of all
    features plus the expected value give its raw log-odds.
    """
    e = _Expl()
    if not expl:
        return e
    e.base = _flt(expl.get("lgbm_expected_value"))
    e.attributions = _items(expl.get("lgbm_contributions"), x, lang, "contribution")
    e.anomaly = _items(expl.get("anomaly_attribution"), x, lang, "share")
    e.terms = {str(k): float(v) for k, v in (expl.get("fusion_terms") or {}).items() if _flt(v) is not None}
    e.intercept = _flt(expl.get("fusion_intercept"))
    e.rules = list(expl.get("rules_fired") or [])
    p = lgbm_probability if lgbm_probability is not None else _flt((expl.get("components") or {}).get("lgbm_probability"))
    if e.base is not None and p is not None and 0.0 < p < 1.0:
        total = math.log(p) - math.log1p(-p)
        e.other = total - e.base - sum(a.contribution for a in e.attributions)
        if abs(e.other) < 1e-9:
            e.other = 0.0
    return e


def rule_facts(fired: Sequence[Mapping[str, Any]], config: Any, lang: str) -> tuple[FiredRule, ...]:
    """Fired rules (``rule_id, weight, conditions[feature, op, threshold, value]``) with names and labels."""
    from amlscore.models.rules import texts as rt

    out = []
    for f in fired:
        rule = config.transaction_rules.rules.get(str(f["rule_id"]))
        name = (rule.name.zh if lang == "zh" else rule.name.en) if rule is not None else str(f["rule_id"])
        conds = tuple(Condition(label=rt.feature_label(str(c["feature"]), lang), feature=str(c["feature"]), op=str(c["op"]),
                                threshold=float(c["threshold"]), value=_flt(c.get("value"))) for c in f.get("conditions", ()))
        out.append(FiredRule(rule_id=str(f["rule_id"]), name=name, weight=float(f["weight"]), conditions=conds))
    return tuple(sorted(out, key=lambda r: -r.weight))


def _fired_from_row(values: Mapping[str, float], config: Any) -> list[dict[str, Any]]:
    from amlscore.models.rules import score_transaction_rules

    rs = score_transaction_rules(dict(values), config)
    return [{"rule_id": f.rule_id, "weight": f.weight,
             "conditions": [{"feature": c.feature, "op": c.op, "threshold": c.threshold, "value": c.value} for c in f.conditions]}
            for f in rs.fired]


def versions_facts(store: CaseStore, model: ModelInfo | None, config: Any, record: Any = None) -> Versions:
    """Versions of the model set, the data and the configurations (and of the audit record, when any)."""
    import amlscore

    extra: dict[str, str] = {}
    m = model if model is not None and model.model_set is not None else None
    if m is not None:
        for key in ("lgbm_hash", "lightgbm_hash", "iforest_hash", "model_set_hash", "fusion_hash", "feature_spec_hash",
                    "trained_at", "train_cutoff", "code_version", "git_commit"):
            v = m.meta(key)
            if v is not None:
                extra[key] = str(v)
        hashes = m.meta("hashes")
        if isinstance(hashes, Mapping):
            for k, v in hashes.items():
                extra.setdefault(f"{k}", str(v))
    decision = getattr(record, "decision", None) or {}
    dv = decision.get("versions", {}) if isinstance(decision, Mapping) else {}
    return Versions(
        model_name=(getattr(record, "model_name", None) or (m.name if m else None)),
        model_version=(getattr(record, "model_version", None) or (m.version if m else None)),
        model_alias=(dv.get("model_alias") if record is not None else (m.alias if m else None)),
        run_id=(m.run_id if m else None),
        model_trained_on=_opt_str(m.meta("data_fingerprint")) if m else None,
        feature_set_version=_opt_str(getattr(record, "feature_set_version", None) or (m.meta("feature_set_version") if m else None)),
        feature_params_hash=_opt_str(getattr(record, "feature_params_hash", None) or (m.meta("feature_params_hash") if m else None)
                                     or store.meta.get("feature_params_hash")),
        rules_config_hash=_opt_str(getattr(record, "rules_config_hash", None) or config.hash),
        rules_config_revision=str(config.revision),
        data_fingerprint=store.fingerprint,
        contract_version=str(store.meta.get("contract_version")),
        code_version=str(getattr(amlscore, "__version__", "") or ""),
        extra=extra,
        request_id=getattr(record, "request_id", None),
        decided_at=getattr(record, "decided_at", None),
        caller=(f"{record.caller_key_id} ({record.caller_role})" if record is not None else None),
        chain_hash=getattr(record, "chain_hash", None),
    )


def gather_case(store: CaseStore, *, customer_id: str | None = None, start: Any = None, end: Any = None,
                txn_id: str | None = None, record: Any = None, model: ModelInfo | None = None, explanation: Mapping[str, Any] | None = None,
                explanation_source: str | None = None, lang: str = "en", config: Any = None,
                lookback_days: int = ALERT_LOOKBACK_DAYS, lookahead_days: int = ALERT_LOOKAHEAD_DAYS) -> CaseFacts:
    """Gather the facts of a case.

    Parameters
    ----------
    store : CaseStore
        The data set's store (:meth:`CaseStore.open`).
    customer_id, start, end
        A customer and a period (bank days, inclusive). The period's highest-scored transaction is
        explained.
    txn_id
        One transaction of the data set (e.g. an alert of a batch run): explained, with the same
        window as an alert.
    record : amlscore.core.audit.AuditRecord, optional
        An alert: the decision as the audit log holds it. Its customer, transaction, scores, rules
        and explanation are used as recorded; the window is ``lookback_days`` before the alert to
        ``lookahead_days`` after it.
    model : ModelInfo, optional
        The model set that scores the other transactions (for an alert: the version that decided).
        None: the rule score alone.
    explanation : dict, optional
        For an alert: the explanation computed later for the decision (when the decision has none).
    lang : {"en", "zh"}
    config : RulesConfig, optional
        Default: the model set's, else the packaged one.
    """
    from amlscore.features.catalogue import FEATURE_NAMES
    from amlscore.models.rules import load_rules_config
    from amlscore.reports.model_cache import cached_scores, explain

    lang = i18n.check_lang(lang)
    if config is None:
        config = getattr(getattr(model, "model_set", None), "rules_config", None) or load_rules_config()
    notes: list[str] = []
    if record is not None:
        customer_id = str(record.customer_id)
        ts = pd.Timestamp(record.input["timestamp"])
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        alert_day = store.local(ts).normalize()
        lo = alert_day - pd.Timedelta(days=lookback_days)
        hi = alert_day + pd.Timedelta(days=lookahead_days)
        p_start, p_end, as_of = alert_day, alert_day, alert_day
        mode, case_id = "alert", str(record.request_id)
    elif txn_id is not None:
        found = store.find_transaction(str(txn_id))
        if found is None:
            raise CaseError(f"transaction {txn_id!r} is not in the data set {store.data}")
        customer_id, ts = found
        alert_day = store.local(ts).normalize()
        lo = alert_day - pd.Timedelta(days=lookback_days)
        hi = alert_day + pd.Timedelta(days=lookahead_days)
        p_start, p_end, as_of = alert_day, alert_day, alert_day
        mode, case_id = "alert", str(txn_id)
    else:
        if customer_id is None or start is None or end is None:
            raise CaseError("A case is an alert (its audit record) or a customer with a start and an end date.")
        p_start, p_end = _day(start, "start"), _day(end, "end")
        if p_end < p_start:
            raise CaseError(f"The 'end' parameter must be on or after start ({p_start.date()}). Got {p_end.date()} instead.")
        lo, hi, as_of = p_start, p_end, p_end
        mode, case_id = "period", f"{customer_id} {p_start.date()}..{p_end.date()}"
    store.customer(str(customer_id))  # unknown customer -> error naming it
    customer_id = str(customer_id)

    # -- the customer's transactions in the window, scored ------------------------------------
    txns_all = store.transactions(customer_id)
    local_day = store.local(txns_all["timestamp"]).dt.normalize()
    in_window = ((local_day >= lo) & (local_day <= hi)).to_numpy()
    txns = txns_all[in_window].reset_index(drop=True)
    feats = store.features(customer_id)[in_window].reset_index(drop=True)
    rules = store.rules(customer_id)[in_window].reset_index(drop=True)
    # the store keeps a registered model set's scores of every transaction (amlscore.reports.model_cache)
    scores = cached_scores(store, model, customer_id, feats["txn_id"])
    if scores is None:
        scores = score_transactions(model, feats, rules, float(config.behaviour.unusual_rule_score))
    window = timeline_frame(store, txns, scores, rules)

    # -- the focal transaction and its decision ----------------------------------------------
    focus_row: dict[str, Any] | None = None
    values: dict[str, float] = {}
    if record is not None:
        hit = window.index[window["txn_id"] == str(record.txn_id)]
        if len(hit):
            focus_row = window.loc[hit[0]].to_dict()
        else:  # scored live, not (yet) in the data folder: shown from the audit record
            inp = record.input
            focus_row = {"txn_id": record.txn_id, "time": store.local(ts), "amount": float(inp.get("amount", np.nan)),
                         "direction": inp.get("direction"), "channel": inp.get("channel"), "txn_type": inp.get("txn_type"),
                         "counterparty_id": inp.get("counterparty_id"), "counterparty_type": inp.get("counterparty_type"),
                         "counterparty_country": inp.get("counterparty_country"), "ip_address": inp.get("ip_address"),
                         "device_id": inp.get("device_id"), "operator_id": inp.get("operator_id")}
            notes.append("txn_not_in_data")
        d = record.decision
        comps = d.get("components", {}) if isinstance(d, Mapping) else {}
        focus_row.update(suspicion_score=float(record.suspicion_score), alert=bool(record.alert),
                         rule_score=float(comps.get("rule_score", np.nan)),
                         rules_fired="|".join(str(f["rule_id"]) for f in d.get("rules_fired", ())))
        if len(hit):  # the timeline shows the decision as recorded
            for k in ("suspicion_score", "alert", "rule_score", "rules_fired"):
                window.at[hit[0], k] = focus_row[k]
        else:
            window = pd.concat([window, pd.DataFrame([focus_row])], ignore_index=True).sort_values("time", kind="stable")
            window = window.reset_index(drop=True)
        values = dict(zip(FEATURE_NAMES, np.asarray(record.features, dtype=float).tolist()))
        expl = d.get("explanation") if isinstance(d, Mapping) else None
        source = "audit log"
        if expl is None and explanation is not None:
            expl, source = explanation, explanation_source or "audit log (explained later)"
        if expl is None and model is not None and model.model_set is not None:
            expl = explain(store, model, np.asarray(record.features, dtype=float)[None, :], TOP_ATTRIBUTIONS, lang,
                           txn_id=str(record.txn_id))
            expl["components"] = {**expl.get("components", {}), **comps}  # the decision's own components
            source = "recomputed"
        fired = list(d.get("rules_fired", ()))
        threshold = _flt(d.get("alert_threshold"))
        lgbm_p, anomaly = _flt(comps.get("lgbm_probability")), _flt(comps.get("anomaly_score"))
        rule_score = _flt(comps.get("rule_score"))
    else:
        if txn_id is not None:
            i = window.index[window["txn_id"] == str(txn_id)][0]
        else:
            period_mask = ((window["time"].dt.normalize() >= p_start) & (window["time"].dt.normalize() <= p_end)).to_numpy()
            if not period_mask.any():
                raise CaseError(f"customer {customer_id} has no transaction between {p_start.date()} and {p_end.date()} "
                                f"(the data covers {store.first_day.date()} to {store.last_day.date()})")
            cand = window[period_mask]
            i = cand.sort_values(["suspicion_score", "time"], ascending=[False, True], kind="stable").index[0]
        focus_row = window.loc[i].to_dict()
        pos = int(np.flatnonzero(feats["txn_id"].astype(str).to_numpy() == focus_row["txn_id"])[0])
        values = {n: float(feats[n].iat[pos]) for n in FEATURE_NAMES}
        expl, source = None, "rules only"
        has_model = model is not None and model.model_set is not None
        threshold = model.threshold if has_model else float(config.behaviour.unusual_rule_score)
        if model is not None and model.model_set is not None:
            x = feats[list(FEATURE_NAMES)].iloc[[pos]].to_numpy(dtype=float)
            expl = explain(store, model, x, TOP_ATTRIBUTIONS, lang, txn_id=str(focus_row["txn_id"]))
            source = "recomputed"
        fired = _fired_from_row(values, config)
        rule_score = _flt(focus_row.get("rule_score"))
        lgbm_p, anomaly = _flt(scores["lgbm_probability"].iat[pos]), _flt(scores["anomaly_score"].iat[pos])

    e = explanation_facts(expl, values, lang, lgbm_p)
    attributions = sorted((a for a in e.attributions if a.contribution != 0), key=lambda a: -abs(a.contribution))
    listed = attributions[:TOP_ATTRIBUTIONS]
    n_other = max(len(FEATURE_NAMES) - len(listed), 0) if expl else 0
    focus = txn_fact(focus_row)
    score = ScoreFacts(
        txn=focus, suspicion_score=float(focus.suspicion_score), alert=bool(focus.alert), threshold=threshold,
        rule_score=rule_score, lgbm_probability=lgbm_p, anomaly_score=anomaly, fusion_terms=e.terms,
        fusion_intercept=e.intercept, base_value=e.base, attributions=tuple(listed), other_contribution=float(e.other),
        n_other=int(n_other), anomaly_attributions=tuple(sorted(e.anomaly, key=lambda a: -abs(a.contribution))[:6]),
        rules=rule_facts(fired, config, lang), source=source)

    # -- period, profile, rating, peers, links -------------------------------------------------
    period = window[((window["time"].dt.normalize() >= p_start) & (window["time"].dt.normalize() <= p_end)).to_numpy()]
    alerted_rows = window[window["alert"].to_numpy(dtype=bool)]
    if mode == "period":
        alerted_rows = alerted_rows[alerted_rows["txn_id"].isin(period["txn_id"])]
    alerted = tuple(txn_fact(r) for _, r in alerted_rows.sort_values("suspicion_score", ascending=False).iterrows())
    as_of_d = as_of.date()
    profile = profile_facts(store, customer_id, txns_all, as_of_d)
    counterparties = counterparty_facts(period if mode == "period" else window)
    shared_rows, n_shared = shared_facts(store, customer_id, window)
    linked_ids = [c.customer_id for c in counterparties if c.customer_id] + \
                 [o[0] for r in shared_rows for o in r[5][:MAX_LINKED_LISTED]]
    linked_ids = [c for c in dict.fromkeys(linked_ids) if c in store.customer_index][:20]
    result = rate_for_case(store, [customer_id] + linked_ids, as_of_d, config)
    rating = rating_facts(result, customer_id, lang)
    if rating is None:
        notes.append("not_rated")
    levels = _level_names(result, lang)
    reps = store.reports
    sus = reps[(reps["label"].astype(str) == "suspicious") & (pd.to_datetime(reps["report_date"]) <= as_of)]
    sus_count = sus["customer_id"].astype(str).value_counts().to_dict()
    counterparties = [Counterparty(**{**c.__dict__, "level_name": levels.get(c.customer_id or ""),
                                      "reports_suspicious": int(sus_count.get(c.customer_id or "", 0))})
                      for c in counterparties]
    rank = dict(zip(result.ratings["customer_id"].astype(str), result.ratings["level_rank"].astype(int)))
    shared = []
    for kind, value, n_txn, first, last, others in shared_rows:
        linked = [LinkedCustomer(customer_id=o, level_name=levels.get(o), reports_suspicious=int(sus_count.get(o, 0)),
                                 first_seen=_opt_date(f), last_seen=_opt_date(l_)) for o, f, l_ in others]
        linked.sort(key=lambda x: (-x.reports_suspicious, rank.get(x.customer_id, 99), x.customer_id))
        shared.append(SharedIdentifier(kind=kind, value=value, n_txn=n_txn, first_seen=_opt_date(first),
                                       last_seen=_opt_date(last), n_others=len(linked), others=tuple(linked[:MAX_LINKED_LISTED])))
    peers = peer_facts(store, profile, as_of_d, lang)
    return CaseFacts(
        lang=lang, mode=mode, case_id=case_id, customer_id=customer_id, start=p_start.date(), end=p_end.date(),
        as_of=as_of_d, generated_at=pd.Timestamp.now(tz="UTC"), profile=profile, rating=rating, score=score,
        transactions=window, alerted=alerted, peers=peers, counterparties=tuple(counterparties), shared=tuple(shared),
        n_shared_total=n_shared, versions=versions_facts(store, model, config, record), notes=tuple(notes))
