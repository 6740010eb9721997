"""Alert suppression as the guideline allows; every auto-closed alert keeps its reason.

Two reasons, checked in this order:

``state_counterparty``
    Every counterparty of the alert is a state organ or the armed forces: a customer of the bank
    whose industry is in ``suppression.exempt_counterparty_industries`` (the contract has
    ``state_organ``; it has no armed-forces category) or an id in
    ``suppression.exempt_counterparty_ids``. An alert without counterparties is never screened
    out, and neither is an alert on a customer on a watch list.
``repeat_dismissed_low_risk``
    The customer's level is in ``suppression.low_risk_levels`` and the latest analyst disposition
    of the same pattern - same customer, same set of rules fired, same set of counterparties -
    made at or before the alert was raised was ``dismissed``, no more than
    ``suppression.dismissal_valid_days`` earlier. A later ``reported`` (or any other) disposition of
    the pattern stops the suppression.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.models.rules import texts
from amlscore.models.rules.config import RulesConfig, load_rules_config


def _set_key(value: object) -> str:
    """A set of ids (``a|b`` text, or a list) as a canonical ``|``-joined sorted key."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return ""
    items: Iterable = value.split("|") if isinstance(value, str) else value  # type: ignore[assignment]
    return "|".join(sorted({str(v).strip() for v in items if str(v).strip()}))


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AmlError(f"{name} is missing column(s): {', '.join(missing)}")


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True, errors="coerce")


def suppress_alerts(alerts: pd.DataFrame, ratings: pd.DataFrame, dispositions: pd.DataFrame | None,
                    config: RulesConfig | None = None, *, customers: pd.DataFrame | None = None,
                    lang: str = "en") -> pd.DataFrame:
    """Decide which alerts are closed automatically, and why.

    Parameters
    ----------
    alerts : DataFrame
        ``alert_id``, ``customer_id``, ``rules_fired`` and ``counterparty_ids`` (``|``-joined text
        or lists), ``created_at``.
    ratings : DataFrame
        ``customer_id``, ``level`` and optionally ``highest_reasons`` (``RatingResult.ratings``).
    dispositions : DataFrame or None
        Earlier analyst decisions: ``customer_id``, ``rules_fired``, ``counterparty_ids``,
        ``disposition`` (``dismissed``, ``reported``, ...) and ``decided_at``.
    customers : DataFrame, optional
        ``customer_id`` and ``occupation_or_industry``, to recognise state-organ counterparties.
    lang : {"en", "zh"}
        Language of ``reason_text``.

    Returns
    -------
    DataFrame
        ``alerts`` with ``level``, ``status`` (``open`` or ``auto_closed``), ``reason`` (a code,
        empty when open), ``reason_text`` and ``matched_disposition_at``.
    """
    config = config if config is not None else load_rules_config()
    if lang not in texts.LANGS:
        raise AmlError(f"The 'lang' parameter must be one of {', '.join(texts.LANGS)}. Got {lang!r} instead.")
    _require(alerts, ("alert_id", "customer_id", "rules_fired", "counterparty_ids", "created_at"), "alerts")
    _require(ratings, ("customer_id", "level"), "ratings")
    s = config.suppression
    out = alerts.copy()
    cid = out["customer_id"].astype(str)
    rules_key = out["rules_fired"].map(_set_key)
    cp_key = out["counterparty_ids"].map(_set_key)
    created = _utc(out["created_at"])
    r = ratings.assign(customer_id=ratings["customer_id"].astype(str)).drop_duplicates("customer_id", keep="last").set_index("customer_id")
    level = cid.map(r["level"].astype(str))
    if "highest_reasons" in r.columns:
        watched = r.index[r["highest_reasons"].astype(str).str.contains("watchlist").to_numpy()]
        on_watch = cid.isin(watched).to_numpy(dtype=bool)
    else:
        on_watch = np.zeros(len(out), dtype=bool)

    # 1. state organs / armed forces only
    exempt = set(s.exempt_counterparty_ids)
    if customers is not None and s.exempt_counterparty_industries:
        _require(customers, ("customer_id", "occupation_or_industry"), "customers")
        ind = customers["occupation_or_industry"].astype(str)
        exempt |= set(customers.loc[ind.isin(s.exempt_counterparty_industries).to_numpy(), "customer_id"].astype(str))
    state = np.array([bool(k) and all(x in exempt for x in k.split("|")) for k in cp_key], dtype=bool) & ~on_watch

    # 2. repeat of a dismissed pattern, low-risk customer
    repeat = np.zeros(len(out), dtype=bool)
    matched_at = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns, UTC]")
    low = level.isin(s.low_risk_levels).to_numpy(dtype=bool)
    if dispositions is not None and len(dispositions) and low.any():
        _require(dispositions, ("customer_id", "rules_fired", "counterparty_ids", "disposition", "decided_at"), "dispositions")
        d = pd.DataFrame({
            "key": dispositions["customer_id"].astype(str) + "#" + dispositions["rules_fired"].map(_set_key) + "#"
                   + dispositions["counterparty_ids"].map(_set_key),
            "decided_at": _utc(dispositions["decided_at"]),
            "dismissed": dispositions["disposition"].astype(str).str.strip().str.lower().eq("dismissed").to_numpy(),
        }).dropna(subset=["decided_at"]).sort_values("decided_at", kind="stable")
        a = pd.DataFrame({"pos": np.arange(len(out)), "key": (cid + "#" + rules_key + "#" + cp_key).to_numpy(),
                          "created_at": created.to_numpy()})
        a = a[a["created_at"].notna().to_numpy() & low].sort_values("created_at", kind="stable")
        if len(a) and len(d):
            m = pd.merge_asof(a, d, left_on="created_at", right_on="decided_at", by="key", direction="backward")
            ok = m["dismissed"].eq(True).to_numpy(dtype=bool)
            if s.dismissal_valid_days is not None:
                age = (m["created_at"] - m["decided_at"]).dt.days
                ok = ok & (age <= s.dismissal_valid_days).fillna(False).to_numpy(dtype=bool)
            pos = m["pos"].to_numpy()[ok]
            repeat[pos] = True
            matched_at.iloc[pos] = m["decided_at"].to_numpy()[ok]
    repeat = repeat & ~state
    reason = np.where(state, "state_counterparty", np.where(repeat, "repeat_dismissed_low_risk", ""))
    out["level"] = level.to_numpy()
    out["status"] = np.where(reason != "", "auto_closed", "open")
    out["reason"] = reason
    labels = {k: texts.pick(v, lang) for k, v in texts.SUPPRESSION_REASONS.items()} | {"": ""}
    out["reason_text"] = [labels[k] for k in reason]
    out["matched_disposition_at"] = matched_at.to_numpy()
    return out
