"""Customer risk ratings inside the service: computed at start, refreshed for one customer on request.

Where the inputs come from:

* the customers and the reports of the data folder, plus the analysts' feedback recorded by the
  service (a suspicious disposition counts as a suspicious report from its report date on);
* the business sub-items' behaviour (cash share, peer ratios, non-face-to-face, cross-border,
  unusual activity, counterparty countries, ...) from :func:`amlscore.models.rules.customer_behaviour` over
  the feature rows of the online state: the rows replayed at warm-up and every transaction scored
  since, read back from the feature store at start and kept in memory (:class:`BehaviourLog`, only
  the columns and the days the rating reads).

The rating date is the bank-clock day of the latest transaction the service has processed (in
production: today; on a synthetic data set: the end of its window), so the behaviour window is not
empty on historical data. A customer without transactions in the window gets its business sub-items
scored as missing (conservatively), as :func:`amlscore.models.rules.rate_customers` documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta, timezone
from typing import Any

import numpy as np
import pandas as pd

from amlscore.features.recent_rows import RecentRows, RecentRowsSpec
from amlscore.models.rules import RatingResult, RulesConfig, customer_behaviour, explain_rating, rate_customers
from amlscore.models.rules.behaviour import BEHAVIOUR_FEATURES
from amlscore.models.rules.explain import breakdown_text
from amlscore.models.rules.transaction_rules import rule_features
from amlscore.core.decision import json_safe

_DAY_NS = 86_400 * 1_000_000_000


class BehaviourLog:
    """Per customer, the feature values the rating reads, for the last ``keep_days`` days.

    The rows are a :class:`~amlscore.features.recent_rows.RecentRows` of the rating's columns: rows older
    than ``keep_days`` before the latest transaction seen are dropped as new ones arrive, so memory
    follows the window, not the history.
    """

    def __init__(self, config: RulesConfig, keep_days: int | None = None) -> None:
        columns = tuple(dict.fromkeys(BEHAVIOUR_FEATURES + rule_features(config)))
        keep_ns = int((keep_days if keep_days is not None else config.behaviour.lookback_days + 2) * _DAY_NS)
        self.utc_offset_hours = config.bank.utc_offset_hours
        self.recent = RecentRows(RecentRowsSpec(columns, keep_ns))

    @property
    def columns(self) -> tuple[str, ...]:
        return self.recent.spec.columns

    @property
    def keep_ns(self) -> int:
        return self.recent.spec.keep_ns

    @property
    def latest_ns(self) -> int | None:
        return self.recent.latest_ns

    def __len__(self) -> int:
        return len(self.recent)

    def add(self, customer_id: str, t_ns: int, counterparty_country: str | None, vector: np.ndarray) -> None:
        """Keep one processed transaction's values (``vector`` in feature order)."""
        self.recent.add({"customer_id": customer_id, "counterparty_country": counterparty_country}, t_ns,
                        np.asarray(vector, dtype=np.float64))

    def prune(self) -> None:
        """Drop every row older than the window (customers that stopped transacting included)."""
        self.recent.prune()

    def as_of(self) -> date:
        """The rating date: the bank-clock day of the latest transaction, or today without any."""
        offset = timedelta(hours=self.utc_offset_hours)
        if self.latest_ns is None:
            return (datetime.now(timezone.utc) + offset).date()
        return (pd.Timestamp(self.latest_ns, tz="UTC").to_pydatetime() + offset).date()

    def frames(self, customer_ids: Iterable[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(feature rows, transactions) frames for :func:`amlscore.models.rules.customer_behaviour`."""
        ids = self.recent.customers() if customer_ids is None else [c for c in customer_ids if self.recent.rows_of(c)]
        cust: list[str] = []
        ts: list[int] = []
        cps: list[str | None] = []
        vals: list[np.ndarray] = []
        for cid in ids:
            for t, cp, v in self.recent.rows_of(cid):
                cust.append(cid)
                ts.append(t)
                cps.append(cp)
                vals.append(v)
        matrix = np.vstack(vals) if vals else np.zeros((0, len(self.columns)))
        stamps = pd.to_datetime(np.asarray(ts, dtype=np.int64), utc=True)
        feats = pd.DataFrame(matrix, columns=list(self.columns))
        feats.insert(0, "timestamp", stamps)
        feats.insert(0, "customer_id", np.asarray(cust, dtype=object))
        txns = pd.DataFrame({"customer_id": np.asarray(cust, dtype=object), "timestamp": stamps,
                             "counterparty_country": pd.array(cps, dtype="string")})
        return feats, txns


def _rating_summary(row: Any, lang_zh: bool = False) -> dict[str, Any]:
    return {
        "level": str(row.level),
        "level_name_en": str(row.level_name_en),
        "level_name_zh": str(row.level_name_zh),
        "score": float(row.score),
        "rating_basis": str(row.rating_basis),
        "rated_at": pd.Timestamp(row.rated_at).date().isoformat(),
    }


class RatingBook:
    """The ratings of every customer of the data folder, plus customers refreshed since."""

    def __init__(self, customers: pd.DataFrame, reports: pd.DataFrame | None, config: RulesConfig) -> None:
        self.customers = customers
        self.config = config
        self.base_reports = reports if reports is not None else pd.DataFrame(
            columns=["report_id", "customer_id", "txn_id", "period_start", "period_end", "report_date", "label", "typology"])
        self._cust_pos = {str(c): i for i, c in enumerate(customers["customer_id"].astype(str).tolist())}
        self.result: RatingResult | None = None
        self._summary: dict[str, dict[str, Any]] = {}
        self._breakdown_pos: dict[str, np.ndarray] = {}
        self._refreshed: dict[str, RatingResult] = {}
        self.as_of: date | None = None

    def upsert(self, rows: pd.DataFrame, log: BehaviourLog, feedback: pd.DataFrame | None = None
               ) -> dict[str, dict[str, Any]]:
        """Take added or changed customers (typed rows as the online state now has them) and rate them again.

        Returns, per customer, its rating ``before`` (None for a new one) and ``after`` (None when it is not
        rated: onboarded after the rating date); the caller keeps them (the feedback store's rating changes).
        """
        from amlscore.features.registry import customer_records, upsert_customer_table  # noqa: PLC0415

        self.customers = upsert_customer_table(self.customers, customer_records(rows))
        self._cust_pos = {str(c): i for i, c in enumerate(self.customers["customer_id"].astype(str).tolist())}
        out: dict[str, dict[str, Any]] = {}
        for cid in rows["customer_id"].astype(str).tolist():
            before = self._summary.get(cid)
            if log.latest_ns is not None:
                self.refresh(cid, log, feedback)
            out[cid] = {"before": before, "after": self._summary.get(cid)}
        return out

    def _reports(self, feedback: pd.DataFrame | None, customer_ids: list[str] | None = None) -> pd.DataFrame:
        parts = [self.base_reports]
        if feedback is not None and len(feedback):
            parts.append(feedback)
        reports = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else self.base_reports
        if customer_ids is not None and len(reports):
            reports = reports[reports["customer_id"].astype(str).isin(customer_ids)]
        return reports

    def rate_all(self, log: BehaviourLog, feedback: pd.DataFrame | None = None) -> None:
        """Rate every customer as of the log's latest day."""
        as_of = log.as_of()
        feats, txns = log.frames()
        behaviour = customer_behaviour(feats, as_of, self.config, transactions=txns)
        result = rate_customers(self.customers, self._reports(feedback), behaviour, self.config, as_of)
        ratings = result.ratings
        summary = {}
        for row in ratings.itertuples(index=False):
            summary[str(row.customer_id)] = _rating_summary(row)
        self._breakdown_pos = {str(k): v for k, v in result.breakdown.groupby("customer_id", observed=True).indices.items()}
        self._summary = summary
        self._refreshed.clear()
        self.result = result
        self.as_of = as_of

    def refresh(self, customer_id: str, log: BehaviourLog, feedback: pd.DataFrame | None = None) -> None:
        """Rate one customer again now (behaviour since start and feedback included)."""
        as_of = log.as_of()
        pos = self._cust_pos[customer_id]
        one = self.customers.iloc[[pos]]
        feats, txns = log.frames([customer_id])
        behaviour = customer_behaviour(feats, as_of, self.config, transactions=txns)
        result = rate_customers(one, self._reports(feedback, [customer_id]), behaviour, self.config, as_of)
        self._refreshed[customer_id] = result
        if len(result.ratings):
            self._summary[customer_id] = _rating_summary(next(result.ratings.itertuples(index=False)))
        else:
            self._summary.pop(customer_id, None)

    def knows(self, customer_id: str) -> bool:
        return customer_id in self._cust_pos

    def summary(self, customer_id: str) -> dict[str, Any] | None:
        """Level, names, score, basis and date of a customer's current rating (None: not rated yet)."""
        return self._summary.get(customer_id)

    def _result_for(self, customer_id: str) -> RatingResult | None:
        if customer_id in self._refreshed:
            return self._refreshed[customer_id]
        if self.result is None or customer_id not in self._summary:
            return None
        r = self.result
        rows = r.ratings[r.ratings["customer_id"].astype(str) == customer_id]
        pos = self._breakdown_pos.get(customer_id, np.zeros(0, dtype=np.int64))
        return RatingResult(ratings=rows, breakdown=r.breakdown.iloc[pos], config=r.config, as_of=r.as_of)

    def detail(self, customer_id: str, lang: str, history: list[dict[str, Any]] | None = None
               ) -> dict[str, Any] | None:
        """The rating with its full sub-item breakdown and the sentences explaining it; None if unrated.

        ``history``: the ratings the customer had before its data changed while serving, oldest first, each
        with when and by whom it was replaced."""
        result = self._result_for(customer_id)
        if result is None or not len(result.ratings):
            return None
        row = result.ratings.iloc[0].to_dict()
        rating = {k: json_safe(v.isoformat() if isinstance(v, pd.Timestamp) else v) for k, v in row.items()}
        for k in ("rated_at", "next_review"):
            if rating.get(k):
                rating[k] = str(rating[k])[:10]
        b = result.breakdown.copy()
        b["text"] = breakdown_text(result, lang).to_numpy() if len(b) else []
        breakdown = [json_safe({k: (str(v) if k in ("element", "sub_item", "case", "input") else v) for k, v in rec.items()})
                     for rec in b.drop(columns=["customer_id"]).to_dict(orient="records")]
        return {
            "as_of": result.as_of.isoformat(),
            "rating": rating,
            "breakdown": breakdown,
            "explanation": explain_rating(result, customer_id, lang=lang),
            "history": list(history or []),
        }
