"""The portfolio report: alerts per day, channel and typology; customer risk levels; overdue reviews.

Alerts come from, in this order of preference:

1. the serving **audit log** (every decision the service made), when one is given;
2. **batch scoring** of the whole data set with a model set (cached in the case store per model);
3. the **transaction rules** alone (a transaction whose rule score reaches
   ``behaviour.unusual_rule_score``), when no model set is available.

An alert's typology is the strongest rule it fired (rules are the bank's typology indicators);
alerts that fired no rule are "model only". On synthetic data the generator's ground truth adds the
true typology of each alert. Risk levels are the PBoC weighted rating of every customer at the last
day of the data; overdue reviews need the rating history (an earlier ``ratings.csv``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from amlscore.reports import charts, i18n
from amlscore.reports.case_facts import versions_facts
from amlscore.reports.case_types import ModelInfo, Versions
from amlscore.reports.store import CaseStore, Progress

if TYPE_CHECKING:
    from amlscore.core.audit import AuditLog
    from amlscore.models.rules import RulesConfig
    from amlscore.models.rules.rating import RatingResult

MAX_OVERDUE_LISTED = 25


@dataclass(frozen=True)
class CountRow:
    key: str
    label: str
    count: int
    total: int = 0  # transactions (channels) or customers (levels), when meaningful
    rank: int = 0


@dataclass(frozen=True, eq=False)
class PortfolioFacts:
    """What the portfolio report shows; frames are small summaries."""

    lang: str
    start: date
    end: date
    generated_at: pd.Timestamp
    source: str  # "audit", "batch" or "rules"
    n_scored: int
    n_alerts: int
    n_alerted_customers: int
    per_day: pd.DataFrame  # day, alerts
    per_channel: tuple[CountRow, ...]
    per_typology: tuple[CountRow, ...]
    per_truth: tuple[CountRow, ...]  # synthetic ground truth: alerts per true typology (total = its transactions)
    levels: tuple[CountRow, ...]
    n_customers_rated: int
    overdue: pd.DataFrame  # customer_id, level_name, rated_at, next_review, days_overdue
    n_overdue: int
    due_90: int
    unrated_new: int
    has_history: bool
    versions: Versions
    threshold: float | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def alert_rate(self) -> float:
        return self.n_alerts / self.n_scored if self.n_scored else float("nan")


def strongest_rule(fired: pd.Series, config: RulesConfig) -> pd.Series:
    """The highest-weight rule id of each ``|``-joined list (``""`` when none fired)."""
    weights = {rid: float(r.weight) for rid, r in config.transaction_rules.rules.items()}
    uniq = {v: max((x for x in str(v).split("|") if x), key=lambda x: weights.get(x, 0.0), default="")
            for v in pd.unique(fired.astype(str))}
    return fired.astype(str).map(uniq)


def alerts_from_audit(audit: AuditLog, store: CaseStore) -> pd.DataFrame:
    """``txn_id, customer_id, time, channel, alert, fired`` of every decision in an audit log."""
    rows = []
    for rec in audit.iter_records():
        d = rec.decision if isinstance(rec.decision, Mapping) else {}
        rows.append({"txn_id": rec.txn_id, "customer_id": rec.customer_id, "timestamp": rec.input.get("timestamp"),
                     "channel": rec.input.get("channel"), "alert": bool(rec.alert),
                     "fired": "|".join(str(f.get("rule_id")) for f in d.get("rules_fired", ()))})
    f = pd.DataFrame(rows, columns=["txn_id", "customer_id", "timestamp", "channel", "alert", "fired"])
    f["time"] = store.local(pd.to_datetime(f["timestamp"], utc=True)) if len(f) else pd.Series(dtype="datetime64[ns]")
    return f.drop(columns=["timestamp"])


def alerts_from_store(store: CaseStore, model: ModelInfo | None, config: RulesConfig,
                      progress: Progress | None = None) -> tuple[pd.DataFrame, str]:
    """Every transaction of the data set with its alert flag: batch-scored by ``model``, else by the rules."""
    rules = store.table("rules", ["txn_id", "customer_id", "timestamp", "rule_score", "fired"])
    tx = store.table("transactions", ["txn_id", "channel"])
    f = pd.DataFrame({"txn_id": rules["txn_id"].astype(str).to_numpy(), "customer_id": rules["customer_id"].astype(str).to_numpy(),
                      "time": store.local(rules["timestamp"]).to_numpy(), "channel": tx["channel"].astype(str).to_numpy(),
                      "fired": rules["fired"].astype(str).to_numpy()})
    if model is not None and model.model_set is not None:
        from amlscore.reports.model_cache import model_scores

        scores = model_scores(store, model, progress=progress)
        alert = pd.Series(scores["alert"].to_numpy(dtype=bool), index=scores["txn_id"].astype(str).to_numpy())
        f["alert"] = alert.reindex(f["txn_id"].to_numpy()).fillna(False).to_numpy(dtype=bool)
        return f, "batch"
    f["alert"] = rules["rule_score"].to_numpy(dtype=float) >= float(config.behaviour.unusual_rule_score)
    return f, "rules"


def rate_everyone(store: CaseStore, as_of: date, config: RulesConfig) -> RatingResult:
    """The rating of every customer onboarded by ``as_of`` (behaviour from the store's features)."""
    from amlscore.models.rules import customer_behaviour, rate_customers
    from amlscore.models.rules.behaviour import BEHAVIOUR_FEATURES
    from amlscore.models.rules.transaction_rules import rule_features
    cols = list(dict.fromkeys(("txn_id", "customer_id", "timestamp") + BEHAVIOUR_FEATURES + rule_features(config)))
    feats = store.table("features", cols)
    txns = store.table("transactions", ["customer_id", "timestamp", "counterparty_country"])
    behaviour = customer_behaviour(feats, as_of, config, transactions=txns)
    c = store.customers
    c = c[(pd.to_datetime(c["onboarded_at"]) <= pd.Timestamp(as_of)).to_numpy()].reset_index(drop=True)
    return rate_customers(c, store.reports, behaviour, config, as_of)


def gather_portfolio(store: CaseStore, *, model: ModelInfo | None = None, audit: AuditLog | None = None,
                     history: pd.DataFrame | None = None, start: date | pd.Timestamp | str | None = None,
                     end: date | pd.Timestamp | str | None = None, lang: str = "en", config: RulesConfig | None = None,
                     progress: Progress | None = None) -> PortfolioFacts:
    """Gather the portfolio facts over ``start..end`` (bank days; default: the whole data set).

    Parameters
    ----------
    store : the data set's case store.
    model : the model set for batch scoring when no audit log is given (None: rules only).
    audit : a :class:`amlscore.core.audit.AuditLog` to read the decisions from.
    history : earlier ratings (``customer_id, rated_at`` and ``next_review`` or ``level``) for overdue reviews.
    """
    from amlscore.models.rules import (
        load_rules_config,
        overdue_reviews,
        unrated_new_customers,
    )

    lang = i18n.check_lang(lang)
    if config is None:
        config = getattr(getattr(model, "model_set", None), "rules_config", None) or load_rules_config()
    if audit is not None:
        f, source = alerts_from_audit(audit, store), "audit"
    else:
        f, source = alerts_from_store(store, model, config, progress)
    lo = pd.Timestamp(start).normalize() if start is not None else store.first_day
    hi = pd.Timestamp(end).normalize() if end is not None else store.last_day
    day = pd.to_datetime(f["time"]).dt.normalize()
    f = f[((day >= lo) & (day <= hi)).to_numpy()].copy()
    f["day"] = pd.to_datetime(f["time"]).dt.normalize()
    alerts = f[f["alert"].to_numpy(dtype=bool)]

    per_day = alerts.groupby("day").size().rename("alerts").reset_index()
    ch_total = f.groupby("channel").size()
    ch_alerts = alerts.groupby("channel").size()
    per_channel = tuple(CountRow(ch, i18n.word(i18n.CHANNELS, ch, lang), int(ch_alerts.get(ch, 0)), int(ch_total.get(ch, 0)))
                        for ch in ch_total.sort_values(ascending=False).index if ch in ch_total.index)
    per_channel = tuple(sorted(per_channel, key=lambda r: -r.count))
    strongest = strongest_rule(alerts["fired"], config) if len(alerts) else pd.Series(dtype=str)
    typ = strongest.value_counts()
    rules = config.transaction_rules.rules
    per_typology = tuple(CountRow(k or "model_only",
                                  (rules[k].name.zh if lang == "zh" else rules[k].name.en) if k in rules else i18n.t("model_only", lang),
                                  int(v)) for k, v in typ.items())
    per_truth: tuple[CountRow, ...] = ()
    gt = store.ground_truth
    if gt is not None and len(alerts):
        truth = gt.drop_duplicates("txn_id").set_index("txn_id")["typology"]
        t_alerts = alerts["txn_id"].map(truth).fillna("none")
        totals = truth[truth.index.isin(f["txn_id"])].value_counts()
        counts = t_alerts.value_counts()
        keys = [k for k in list(totals.index) + ["none"] if k in counts.index or k in totals.index]
        per_truth = tuple(CountRow(k, i18n.word(i18n.TYPOLOGIES, k, lang), int(counts.get(k, 0)),
                                   int(totals.get(k, 0))) for k in dict.fromkeys(keys))
        per_truth = tuple(sorted(per_truth, key=lambda r: (r.key == "none", -r.count)))

    as_of = hi.date()
    result = rate_everyone(store, as_of, config)
    r = result.ratings
    name_col = "level_name_zh" if lang == "zh" else "level_name_en"
    n_rated = len(r)
    levels = tuple(CountRow(lv.id, lv.name.zh if lang == "zh" else lv.name.en, int((r["level"] == lv.id).sum()), n_rated, i)
                   for i, lv in enumerate(config.levels))

    has_history = history is not None and len(history) > 0
    if has_history:
        over = overdue_reviews(history, as_of, config)
        names = {lv.id: (lv.name.zh if lang == "zh" else lv.name.en) for lv in config.levels}
        over = over.assign(level_name=over["level"].map(names) if "level" in over else "")
        latest = history.sort_values("rated_at").groupby(history["customer_id"].astype(str)).tail(1)
        if "next_review" in latest:
            nxt = pd.to_datetime(latest["next_review"])
        else:
            from amlscore.models.rules import review_schedule

            nxt = pd.to_datetime(review_schedule(latest, config)["next_review"])
        due_90 = int(((nxt >= pd.Timestamp(as_of)) & (nxt <= pd.Timestamp(as_of) + pd.Timedelta(days=90))).sum())
        unrated = unrated_new_customers(store.customers, history[["customer_id", "rated_at"]], as_of, config)
    else:
        over = pd.DataFrame(columns=["customer_id", "level_name", "rated_at", "next_review", "days_overdue"])
        nxt = pd.to_datetime(r["next_review"])
        due_90 = int((nxt <= pd.Timestamp(as_of) + pd.Timedelta(days=90)).sum())
        unrated = pd.DataFrame()
    threshold = model.threshold if (model is not None and source == "batch") else None
    del name_col
    return PortfolioFacts(
        lang=lang, start=lo.date(), end=hi.date(), generated_at=pd.Timestamp.now(tz="UTC"), source=source,
        n_scored=int(len(f)), n_alerts=int(len(alerts)), n_alerted_customers=int(alerts["customer_id"].nunique()),
        per_day=per_day, per_channel=per_channel, per_typology=per_typology, per_truth=per_truth, levels=levels,
        n_customers_rated=n_rated, overdue=over.reset_index(drop=True), n_overdue=int(len(over)), due_90=due_90,
        unrated_new=int(len(unrated)), has_history=has_history, versions=versions_facts(store, model, config),
        threshold=threshold)


def portfolio_charts(p: PortfolioFacts) -> dict[str, str]:
    """SVG charts of the portfolio report."""
    lang = p.lang
    out = {}
    if len(p.per_day):
        out["per_day"] = charts.daily_bars(p.per_day["day"].tolist(), p.per_day["alerts"].tolist(), lang,
                                           name="alerts-per-day")
    if p.per_channel:
        out["per_channel"] = charts.hbars([r.label for r in p.per_channel], [r.count for r in p.per_channel], lang,
                                          name="alerts-per-channel",
                                          colours=[charts.CHANNEL_COLOURS.get(r.key, "#5b7db1") for r in p.per_channel],
                                          note=[f"({i18n.fmt_pct(r.count / r.total if r.total else np.nan, lang, 2)})"
                                                for r in p.per_channel])
    if p.per_typology:
        out["per_typology"] = charts.hbars([r.label for r in p.per_typology], [r.count for r in p.per_typology], lang,
                                           name="alerts-per-typology", colours=["#8e5b9a"] * len(p.per_typology))
    if p.levels:
        n = len(p.levels)
        colours = [charts.LEVEL_COLOURS[min(4, round(r.rank * 4 / max(n - 1, 1)))] for r in p.levels]
        out["levels"] = charts.hbars([r.label for r in p.levels], [r.count for r in p.levels], lang, name="risk-levels",
                                     colours=colours,
                                     note=[f"({i18n.fmt_pct(r.count / r.total if r.total else np.nan, lang, 1)})" for r in p.levels])
    return out
