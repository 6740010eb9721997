"""The builders of a case's facts: each section of the report from the case store, a model set and a
rating (:mod:`amlscore.reports.case_types` holds what they return).

Each builder reads what one section needs and returns plain data; :func:`amlscore.reports.case.gather_case`
decides what the case is (an alert, a transaction, a customer's period) and calls them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.core.decision import ModelSetLike, fired_rules_json
from amlscore.reports import i18n
from amlscore.reports.case_types import (
    MAX_COUNTERPARTIES,
    MAX_SHARED,
    PEER_WINDOW_DAYS,
    Attribution,
    CaseError,
    Condition,
    Counterparty,
    FiredRule,
    ModelInfo,
    PeerComparison,
    PeerMetric,
    Profile,
    Rating,
    RatingItem,
    Txn,
    Versions,
)
from amlscore.reports.store import CaseStore

if TYPE_CHECKING:
    from amlscore.core.audit import AuditRecord
    from amlscore.models.rules import RulesConfig
    from amlscore.models.rules.rating import RatingResult


def score_frame_fast(model_set: ModelSetLike, features: pd.DataFrame) -> pd.DataFrame:
    """``model_set.score_frame`` without its per-row reasons (TreeSHAP for every alert costs more
    than the scores; reports explain one transaction themselves)."""
    return model_set.score_frame(features, reasons="none")


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
def opt_value(v: Any) -> Any:
    """None for missing values (NA, NaN, NaT, empty text)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, str) and not v.strip():
        return None
    return v


def opt_str(v: Any) -> str | None:
    v = opt_value(v)
    return None if v is None else str(v)


def opt_flag(v: Any) -> bool | None:
    """A true/false KYC flag; None when unknown."""
    v = opt_value(v)
    return None if v is None else bool(v)


def opt_date(v: Any) -> date | None:
    v = opt_value(v)
    return None if v is None else pd.Timestamp(v).date()


def opt_float(v: Any) -> float | None:
    v = opt_value(v)
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def case_day(v: date | pd.Timestamp | str, name: str) -> pd.Timestamp:
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
    born = opt_date(c["birth_or_incorporation_date"])
    reps = store.reports
    mine = reps[(reps["customer_id"].astype(str) == str(customer_id))
                & (pd.to_datetime(reps["report_date"]) <= pd.Timestamp(as_of))]
    labels = mine["label"].astype(str)
    layers = opt_value(c["ownership_layers"])
    return Profile(
        customer_id=str(customer_id),
        customer_type=str(c["customer_type"]),
        occupation=str(c["occupation_or_industry"]),
        peer_group=f"{c['customer_type']}|{c['occupation_or_industry']}",
        birth_or_incorporation_date=born,
        age_years=_whole_years(born, as_of),
        nationality=opt_str(c["nationality"]),
        residence_country=opt_str(c["residence_country"]),
        home_region=opt_str(c["home_region"]),
        id_document_type=opt_str(c["id_document_type"]),
        is_pep=opt_flag(c["is_pep"]),
        on_watchlist=opt_flag(c["on_watchlist"]),
        refused_cdd=opt_flag(c["refused_cdd"]),
        is_resident=opt_flag(c["is_resident"]),
        onboarding_channel=opt_str(c["onboarding_channel"]),
        onboarded_at=opt_date(c["onboarded_at"]),
        agent_id=opt_str(c["agent_id"]),
        phone=opt_str(c["phone"]),
        emergency_contact_phone=opt_str(c["emergency_contact_phone"]),
        ownership_layers=None if layers is None else int(layers),
        declared_annual_income=opt_float(c["declared_annual_income"]),
        accounts=tuple(sorted(txns["account_id"].dropna().astype(str).unique())) if len(txns) else (),
        reports_suspicious=int((labels == "suspicious").sum()),
        reports_not_suspicious=int((labels == "not_suspicious").sum()),
    )


def rate_for_case(store: CaseStore, customer_ids: Sequence[str], as_of: date, config: RulesConfig) -> RatingResult:
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


def rating_facts(result: RatingResult, customer_id: str, lang: str) -> Rating | None:
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
        next_review=opt_date(row["next_review"]),
        review_interval_months=int(row["review_interval_months"]),
        max_item_score=int(cfg.max_item_score),
        config_hash=str(cfg.hash),
        config_revision=str(cfg.revision),
    )


def level_names(result: RatingResult, lang: str) -> dict[str, str]:
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
    """A :class:`Txn` from a row of :func:`amlscore.reports.case_facts.timeline_frame`."""
    fired = str(row.get("rules_fired") or "")
    return Txn(
        txn_id=str(row["txn_id"]), time=pd.Timestamp(row["time"]), amount=float(row["amount"]),
        direction=str(row["direction"]), channel=str(row["channel"]), txn_type=str(row["txn_type"]),
        counterparty_id=opt_str(row.get("counterparty_id")), counterparty_type=opt_str(row.get("counterparty_type")),
        counterparty_country=opt_str(row.get("counterparty_country")), ip_address=opt_str(row.get("ip_address")),
        device_id=opt_str(row.get("device_id")), operator_id=opt_str(row.get("operator_id")),
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
    return [Counterparty(key=str(k), customer_id=opt_str(r.customer_id), counterparty_type=str(r.type),
                         country=opt_str(r.country), n_in=int(r.n_in), n_out=int(r.n - r.n_in), sum_in=float(r.sum_in),
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
class ExplanationFacts:
    """What a report reads of an explanation's JSON form, worded in the case's language."""

    base: float | None = None
    attributions: list[Attribution] = field(default_factory=list)
    other: float = 0.0
    n_other: int = 0
    anomaly: list[Attribution] = field(default_factory=list)
    terms: dict[str, float] = field(default_factory=dict)
    intercept: float | None = None
    rules: list[dict[str, Any]] | None = None


def _items(records: Sequence[Mapping[str, Any]] | None, x: Mapping[str, float], lang: str, key: str) -> list[Attribution]:
    """Attributions out of an explanation's ``{feature, value, <key>}`` records (``key``: ``contribution`` or ``share``)."""
    from amlscore.features.labels import feature_label

    out = []
    for it in records or []:
        name, amount = str(it["feature"]), it.get(key)
        if amount is None:
            continue
        out.append(Attribution(name, feature_label(name, lang), opt_float(it.get("value", x.get(name))), float(amount)))
    return out


def explanation_facts(expl: Mapping[str, Any] | None, x: Mapping[str, float], lang: str,
                      lgbm_probability: float | None = None) -> ExplanationFacts:
    """Read a model-set explanation (:meth:`amlscore.models.decision.Explanation.to_dict`).

    What the listed TreeSHAP contributions leave out ("other features") is
    ``logit(lgbm_probability) - expected value - sum(listed)``: LightGBM's contributions of all
    features plus the expected value give its raw log-odds.
    """
    e = ExplanationFacts()
    if not expl:
        return e
    e.base = opt_float(expl.get("lgbm_expected_value"))
    e.attributions = _items(expl.get("lgbm_contributions"), x, lang, "contribution")
    e.anomaly = _items(expl.get("anomaly_attribution"), x, lang, "share")
    e.terms = {str(k): float(v) for k, v in (expl.get("fusion_terms") or {}).items() if opt_float(v) is not None}
    e.intercept = opt_float(expl.get("fusion_intercept"))
    e.rules = list(expl.get("rules_fired") or [])
    p = lgbm_probability if lgbm_probability is not None else opt_float((expl.get("components") or {}).get("lgbm_probability"))
    if e.base is not None and p is not None and 0.0 < p < 1.0:
        total = math.log(p) - math.log1p(-p)
        e.other = total - e.base - sum(a.contribution for a in e.attributions)
        if abs(e.other) < 1e-9:
            e.other = 0.0
    return e


def rule_facts(fired: Sequence[Mapping[str, Any]], config: RulesConfig, lang: str) -> tuple[FiredRule, ...]:
    """Fired rules (``rule_id, weight, conditions[feature, op, threshold, value]``) with names and labels."""
    from amlscore.features.labels import feature_label

    out = []
    for f in fired:
        rule = config.transaction_rules.rules.get(str(f["rule_id"]))
        name = (rule.name.zh if lang == "zh" else rule.name.en) if rule is not None else str(f["rule_id"])
        conds = tuple(Condition(label=feature_label(str(c["feature"]), lang), feature=str(c["feature"]), op=str(c["op"]),
                                threshold=float(c["threshold"]), value=opt_float(c.get("value"))) for c in f.get("conditions", ()))
        out.append(FiredRule(rule_id=str(f["rule_id"]), name=name, weight=float(f["weight"]), conditions=conds))
    return tuple(sorted(out, key=lambda r: -r.weight))


def fired_from_row(values: Mapping[str, float], config: RulesConfig) -> list[dict[str, Any]]:
    """The rules ``config`` fires on a feature row, in the recorded form (:func:`amlscore.core.decision.fired_rules_json`)."""
    from amlscore.models.rules import score_transaction_rules

    return fired_rules_json(score_transaction_rules(dict(values), config).fired)


def versions_facts(store: CaseStore, model: ModelInfo | None, config: RulesConfig,
                   record: AuditRecord | None = None) -> Versions:
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
    decision = record.decision if record is not None else {}
    dv = decision.get("versions", {})
    return Versions(
        model_name=((record.model_name if record is not None else None) or (m.name if m else None)),
        model_version=((record.model_version if record is not None else None) or (m.version if m else None)),
        model_alias=(dv.get("model_alias") if record is not None else (m.alias if m else None)),
        run_id=(m.run_id if m else None),
        model_trained_on=opt_str(m.meta("data_fingerprint")) if m else None,
        feature_set_version=opt_str(_recorded(record, "feature_set_version") or (m.meta("feature_set_version") if m else None)),
        feature_params_hash=opt_str(_recorded(record, "feature_params_hash") or (m.meta("feature_params_hash") if m else None)
                                     or store.meta.get("feature_params_hash")),
        rules_config_hash=opt_str(_recorded(record, "rules_config_hash") or config.hash),
        rules_config_revision=str(config.revision),
        data_fingerprint=store.fingerprint,
        contract_version=str(store.meta.get("contract_version")),
        code_version=str(getattr(amlscore, "__version__", "") or ""),
        extra=extra,
        request_id=_recorded(record, "request_id"),
        decided_at=_recorded(record, "decided_at"),
        caller=(f"{record.caller_key_id} ({record.caller_role})" if record is not None else None),
        chain_hash=_recorded(record, "chain_hash"),
    )


def _recorded(record: AuditRecord | None, name: str) -> str | None:
    """A field of the audit record, None without one."""
    return None if record is None else getattr(record, name)
