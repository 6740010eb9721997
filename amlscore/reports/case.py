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

This module decides what the case is and which transaction it explains, one small function per
mode; the types are in :mod:`amlscore.reports.case_types`, the builders of each section in
:mod:`amlscore.reports.case_facts`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from amlscore.reports import case_facts as facts
from amlscore.reports import i18n
from amlscore.reports.case_types import (
    ALERT_LOOKAHEAD_DAYS,
    ALERT_LOOKBACK_DAYS,
    MAX_LINKED_LISTED,
    TOP_ATTRIBUTIONS,
    CaseError,
    CaseFacts,
    Counterparty,
    LinkedCustomer,
    ModelInfo,
    Rating,
    ScoreFacts,
    SharedIdentifier,
)
from amlscore.reports.store import CaseStore

if TYPE_CHECKING:
    from amlscore.core.audit import AuditRecord
    from amlscore.models.rules import RulesConfig

DayLike = date | pd.Timestamp | str  # a bank day: a date, a Timestamp or ISO text ("2025-06-01")


# ---------------------------------------------------------------------------------------------
# What the case is: its mode, its customer and its days
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CaseWindow:
    """A case's mode (``alert`` or ``period``), id and customer; the days shown (``lo``..``hi``), the
    case's own days (``start``..``end``) and the day it is rated at (bank days, naive midnights)."""

    mode: str
    case_id: str
    customer_id: str
    lo: pd.Timestamp
    hi: pd.Timestamp
    start: pd.Timestamp
    end: pd.Timestamp
    as_of: pd.Timestamp


def _alert_window(case_id: str, customer_id: str, day: pd.Timestamp, lookback_days: int, lookahead_days: int) -> CaseWindow:
    return CaseWindow(mode="alert", case_id=case_id, customer_id=customer_id, lo=day - pd.Timedelta(days=lookback_days),
                      hi=day + pd.Timedelta(days=lookahead_days), start=day, end=day, as_of=day)


def record_window(store: CaseStore, record: AuditRecord, lookback_days: int, lookahead_days: int) -> CaseWindow:
    """An alert recorded in the audit log: the days around its decision."""
    day = store.local(_utc(record.input["timestamp"])).normalize()
    return _alert_window(str(record.request_id), str(record.customer_id), day, lookback_days, lookahead_days)


def txn_window(store: CaseStore, txn_id: str, lookback_days: int, lookahead_days: int) -> CaseWindow:
    """One transaction of the data set, shown as an alert is."""
    found = store.find_transaction(str(txn_id))
    if found is None:
        raise CaseError(f"transaction {txn_id!r} is not in the data set {store.data}")
    customer_id, ts = found
    return _alert_window(str(txn_id), str(customer_id), store.local(ts).normalize(), lookback_days, lookahead_days)


def period_window(customer_id: str | None, start: DayLike | None, end: DayLike | None) -> CaseWindow:
    """A customer and a period (bank days, inclusive)."""
    if customer_id is None or start is None or end is None:
        raise CaseError("A case is an alert (its audit record) or a customer with a start and an end date.")
    p_start, p_end = facts.case_day(start, "start"), facts.case_day(end, "end")
    if p_end < p_start:
        raise CaseError(f"The 'end' parameter must be on or after start ({p_start.date()}). Got {p_end.date()} instead.")
    return CaseWindow(mode="period", case_id=f"{customer_id} {p_start.date()}..{p_end.date()}", customer_id=str(customer_id),
                      lo=p_start, hi=p_end, start=p_start, end=p_end, as_of=p_end)


def _utc(value: str | pd.Timestamp) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


# ---------------------------------------------------------------------------------------------
# The customer's transactions in the window, scored
# ---------------------------------------------------------------------------------------------
@dataclass
class ScoredWindow:
    """The customer's transactions (all, and those in the window with their features and scores) and
    the timeline of the window (:func:`amlscore.reports.case_facts.timeline_frame`)."""

    txns_all: pd.DataFrame
    feats: pd.DataFrame
    scores: pd.DataFrame
    timeline: pd.DataFrame


def scored_window(store: CaseStore, w: CaseWindow, model: ModelInfo | None, config: RulesConfig) -> ScoredWindow:
    from amlscore.reports.model_cache import cached_scores

    txns_all = store.transactions(w.customer_id)
    local_day = store.local(txns_all["timestamp"]).dt.normalize()
    in_window = ((local_day >= w.lo) & (local_day <= w.hi)).to_numpy()
    txns = txns_all[in_window].reset_index(drop=True)
    feats = store.features(w.customer_id)[in_window].reset_index(drop=True)
    rules = store.rules(w.customer_id)[in_window].reset_index(drop=True)
    # the store keeps a registered model set's scores of every transaction (amlscore.reports.model_cache)
    scores = cached_scores(store, model, w.customer_id, feats["txn_id"])
    if scores is None:
        scores = facts.score_transactions(model, feats, rules, float(config.behaviour.unusual_rule_score))
    return ScoredWindow(txns_all=txns_all, feats=feats, scores=scores, timeline=facts.timeline_frame(store, txns, scores, rules))


# ---------------------------------------------------------------------------------------------
# The focal transaction and its decision
# ---------------------------------------------------------------------------------------------
@dataclass
class Focus:
    """The explained transaction: its timeline row, feature values, explanation (JSON form) and where
    that comes from, the rules fired, the threshold and the components."""

    row: dict[str, Any]
    values: dict[str, float]
    explanation: Mapping[str, Any] | None
    source: str
    fired: list[dict[str, Any]]
    threshold: float | None
    rule_score: float | None
    lgbm_probability: float | None
    anomaly_score: float | None
    notes: list[str] = field(default_factory=list)


def _live_row(store: CaseStore, record: AuditRecord) -> dict[str, Any]:
    """A transaction scored live, not (yet) in the data folder, as the audit record holds it."""
    inp = record.input
    return {"txn_id": record.txn_id, "time": store.local(_utc(inp["timestamp"])), "amount": float(inp.get("amount", np.nan)),
            "direction": inp.get("direction"), "channel": inp.get("channel"), "txn_type": inp.get("txn_type"),
            "counterparty_id": inp.get("counterparty_id"), "counterparty_type": inp.get("counterparty_type"),
            "counterparty_country": inp.get("counterparty_country"), "ip_address": inp.get("ip_address"),
            "device_id": inp.get("device_id"), "operator_id": inp.get("operator_id")}


def record_focus(store: CaseStore, sw: ScoredWindow, record: AuditRecord, model: ModelInfo | None,
                 explanation: Mapping[str, Any] | None, explanation_source: str | None, lang: str) -> Focus:
    """An alert's transaction with its decision as recorded; the timeline shows the decision as recorded
    (``sw.timeline`` is updated, or the transaction added when it is not in the data folder)."""
    from amlscore.features.catalogue import FEATURE_NAMES
    from amlscore.reports.model_cache import explain

    window = sw.timeline
    notes: list[str] = []
    hit = window.index[window["txn_id"] == str(record.txn_id)]
    if len(hit):
        row = window.loc[hit[0]].to_dict()
    else:
        row = _live_row(store, record)
        notes.append("txn_not_in_data")
    d = record.decision
    comps = d.get("components", {})
    row.update(suspicion_score=float(record.suspicion_score), alert=bool(record.alert),
               rule_score=float(comps.get("rule_score", np.nan)),
               rules_fired="|".join(str(f["rule_id"]) for f in d.get("rules_fired", ())))
    if len(hit):
        for k in ("suspicion_score", "alert", "rule_score", "rules_fired"):
            window.at[hit[0], k] = row[k]
    else:
        window = pd.concat([window, pd.DataFrame([row])], ignore_index=True).sort_values("time", kind="stable")
        sw.timeline = window.reset_index(drop=True)
    expl = d.get("explanation")
    source = "audit log"
    if expl is None and explanation is not None:
        expl, source = explanation, explanation_source or "audit log (explained later)"
    if expl is None and model is not None and model.model_set is not None:
        expl = explain(store, model, np.asarray(record.features, dtype=float)[None, :], TOP_ATTRIBUTIONS, lang,
                       txn_id=str(record.txn_id))
        expl["components"] = {**expl.get("components", {}), **comps}  # the decision's own components
        source = "recomputed"
    return Focus(row=row, values=dict(zip(FEATURE_NAMES, np.asarray(record.features, dtype=float).tolist())),
                 explanation=expl, source=source, fired=list(d.get("rules_fired", ())),
                 threshold=facts.opt_float(d.get("alert_threshold")), rule_score=facts.opt_float(comps.get("rule_score")),
                 lgbm_probability=facts.opt_float(comps.get("lgbm_probability")), anomaly_score=facts.opt_float(comps.get("anomaly_score")),
                 notes=notes)


def focus_index(store: CaseStore, w: CaseWindow, timeline: pd.DataFrame, txn_id: str | None) -> Hashable:
    """The timeline row explained: the transaction asked for, else the period's highest-scored (the first on a tie)."""
    if txn_id is not None:
        return timeline.index[timeline["txn_id"] == str(txn_id)][0]
    day = timeline["time"].dt.normalize()
    period_mask = ((day >= w.start) & (day <= w.end)).to_numpy()
    if not period_mask.any():
        raise CaseError(f"customer {w.customer_id} has no transaction between {w.start.date()} and {w.end.date()} "
                        f"(the data covers {store.first_day.date()} to {store.last_day.date()})")
    cand = timeline[period_mask]
    return cand.sort_values(["suspicion_score", "time"], ascending=[False, True], kind="stable").index[0]


def row_focus(store: CaseStore, sw: ScoredWindow, i: Hashable, model: ModelInfo | None, config: RulesConfig, lang: str) -> Focus:
    """A transaction of the data set, scored and explained now (or from the store's caches)."""
    from amlscore.features.catalogue import FEATURE_NAMES
    from amlscore.reports.model_cache import explain

    row = sw.timeline.loc[i].to_dict()
    feats = sw.feats
    pos = int(np.flatnonzero(feats["txn_id"].astype(str).to_numpy() == row["txn_id"])[0])
    values = {n: float(feats[n].iat[pos]) for n in FEATURE_NAMES}
    expl: Mapping[str, Any] | None = None
    source = "rules only"
    has_model = model is not None and model.model_set is not None
    threshold = model.threshold if has_model else float(config.behaviour.unusual_rule_score)
    if has_model:
        x = feats[list(FEATURE_NAMES)].iloc[[pos]].to_numpy(dtype=float)
        expl = explain(store, model, x, TOP_ATTRIBUTIONS, lang, txn_id=str(row["txn_id"]))
        source = "recomputed"
    return Focus(row=row, values=values, explanation=expl, source=source, fired=facts.fired_from_row(values, config),
                 threshold=threshold, rule_score=facts.opt_float(row.get("rule_score")),
                 lgbm_probability=facts.opt_float(sw.scores["lgbm_probability"].iat[pos]),
                 anomaly_score=facts.opt_float(sw.scores["anomaly_score"].iat[pos]))


def score_facts(focus: Focus, config: RulesConfig, lang: str) -> ScoreFacts:
    """The explained transaction's score, components, attributions (largest first) and rules."""
    from amlscore.features.catalogue import FEATURE_NAMES

    e = facts.explanation_facts(focus.explanation, focus.values, lang, focus.lgbm_probability)
    attributions = sorted((a for a in e.attributions if a.contribution != 0), key=lambda a: -abs(a.contribution))
    listed = attributions[:TOP_ATTRIBUTIONS]
    n_other = max(len(FEATURE_NAMES) - len(listed), 0) if focus.explanation else 0
    txn = facts.txn_fact(focus.row)
    return ScoreFacts(
        txn=txn, suspicion_score=float(txn.suspicion_score), alert=bool(txn.alert), threshold=focus.threshold,
        rule_score=focus.rule_score, lgbm_probability=focus.lgbm_probability, anomaly_score=focus.anomaly_score,
        fusion_terms=e.terms, fusion_intercept=e.intercept, base_value=e.base, attributions=tuple(listed),
        other_contribution=float(e.other), n_other=int(n_other),
        anomaly_attributions=tuple(sorted(e.anomaly, key=lambda a: -abs(a.contribution))[:6]),
        rules=facts.rule_facts(focus.fired, config, lang), source=focus.source)


# ---------------------------------------------------------------------------------------------
# The customer's links: counterparties and shared identifiers, rated with the customer
# ---------------------------------------------------------------------------------------------
@dataclass
class Links:
    """The customer's rating and its counterparties and shared identifiers, each with its level and reports."""

    rating: Rating | None
    counterparties: tuple[Counterparty, ...]
    shared: tuple[SharedIdentifier, ...]
    n_shared: int


def link_facts(store: CaseStore, customer_id: str, seen: pd.DataFrame, timeline: pd.DataFrame, as_of: pd.Timestamp,
               config: RulesConfig, lang: str) -> Links:
    """Rate the customer with the customers it is linked to (counterparties in ``seen``, identifiers shared in
    ``timeline``) at ``as_of``, and word each link with its level and the suspicious reports on it."""
    as_of_d = as_of.date()
    counterparties = facts.counterparty_facts(seen)
    shared_rows, n_shared = facts.shared_facts(store, customer_id, timeline)
    linked_ids = [c.customer_id for c in counterparties if c.customer_id] + \
                 [o[0] for r in shared_rows for o in r[5][:MAX_LINKED_LISTED]]
    linked_ids = [c for c in dict.fromkeys(linked_ids) if c in store.customer_index][:20]
    result = facts.rate_for_case(store, [customer_id] + linked_ids, as_of_d, config)
    levels = facts.level_names(result, lang)
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
                                 first_seen=facts.opt_date(f), last_seen=facts.opt_date(l_)) for o, f, l_ in others]
        linked.sort(key=lambda x: (-x.reports_suspicious, rank.get(x.customer_id, 99), x.customer_id))
        shared.append(SharedIdentifier(kind=kind, value=value, n_txn=n_txn, first_seen=facts.opt_date(first),
                                       last_seen=facts.opt_date(last), n_others=len(linked), others=tuple(linked[:MAX_LINKED_LISTED])))
    return Links(rating=facts.rating_facts(result, customer_id, lang), counterparties=tuple(counterparties),
                 shared=tuple(shared), n_shared=n_shared)


# ---------------------------------------------------------------------------------------------
# The case
# ---------------------------------------------------------------------------------------------
def gather_case(store: CaseStore, *, customer_id: str | None = None, start: DayLike | None = None, end: DayLike | None = None,
                txn_id: str | None = None, record: AuditRecord | None = None, model: ModelInfo | None = None,
                explanation: Mapping[str, Any] | None = None, explanation_source: str | None = None, lang: str = "en",
                config: RulesConfig | None = None, lookback_days: int = ALERT_LOOKBACK_DAYS,
                lookahead_days: int = ALERT_LOOKAHEAD_DAYS) -> CaseFacts:
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
    from amlscore.models.rules import load_rules_config

    lang = i18n.check_lang(lang)
    if config is None:
        config = model.model_set.rules_config if model is not None and model.model_set is not None else load_rules_config()
    if record is not None:
        w = record_window(store, record, lookback_days, lookahead_days)
    elif txn_id is not None:
        w = txn_window(store, txn_id, lookback_days, lookahead_days)
    else:
        w = period_window(customer_id, start, end)
    store.customer(w.customer_id)  # unknown customer -> error naming it

    sw = scored_window(store, w, model, config)
    if record is not None:
        focus = record_focus(store, sw, record, model, explanation, explanation_source, lang)
    else:
        focus = row_focus(store, sw, focus_index(store, w, sw.timeline, txn_id), model, config, lang)
    window = sw.timeline

    day = window["time"].dt.normalize()
    period = window[((day >= w.start) & (day <= w.end)).to_numpy()]
    alerted_rows = window[window["alert"].to_numpy(dtype=bool)]
    if w.mode == "period":
        alerted_rows = alerted_rows[alerted_rows["txn_id"].isin(period["txn_id"])]
    alerted = tuple(facts.txn_fact(r) for _, r in alerted_rows.sort_values("suspicion_score", ascending=False).iterrows())
    as_of_d: date = w.as_of.date()
    profile = facts.profile_facts(store, w.customer_id, sw.txns_all, as_of_d)
    links = link_facts(store, w.customer_id, period if w.mode == "period" else window, window, w.as_of, config, lang)
    notes = focus.notes + ([] if links.rating is not None else ["not_rated"])
    return CaseFacts(
        lang=lang, mode=w.mode, case_id=w.case_id, customer_id=w.customer_id, start=w.start.date(), end=w.end.date(),
        as_of=as_of_d, generated_at=pd.Timestamp.now(tz="UTC"), profile=profile, rating=links.rating,
        score=score_facts(focus, config, lang), transactions=window, alerted=alerted,
        peers=facts.peer_facts(store, profile, as_of_d, lang), counterparties=links.counterparties, shared=links.shared,
        n_shared_total=links.n_shared, versions=facts.versions_facts(store, model, config, record), notes=tuple(notes))
