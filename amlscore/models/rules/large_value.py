"""Large-value transaction reports (大额交易报告), kept apart from suspicion.

PBoC order 2016 No. 3 requires reporting, for a single transaction or the same-day total
(bank clock) of one customer:

* cash (``large_value.cash_types``) at or above ``cash_threshold`` (50,000 CNY), any customer;
* transfers (``large_value.transfer_types``) by non-individuals at or above
  ``corporate_transfer_threshold`` (2,000,000 CNY);
* transfers by individuals at or above ``individual_domestic_transfer_threshold`` (500,000 CNY)
  domestic, or ``individual_cross_border_transfer_threshold`` (200,000 CNY) cross-border.

Cross-border = the counterparty country is known and differs from ``bank.country``; with
``unknown_country_is_cross_border`` an individual's transfer with no counterparty country is held
to the lower cross-border threshold. A customer missing from ``customers`` is held to the
individual thresholds (the lower ones). Same-day totals are summed exactly in integer fen, per
customer, day, category and direction (money in and money out are totalled separately, "单边累计",
article 6 of the order); with ``aggregate_daily`` every transaction of a day whose total reaches
the threshold is reported (``basis = daily_total``) as well as single ones (``basis = single``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.models.rules.config import RulesConfig, load_rules_config

CATEGORIES: tuple[str, ...] = ("cash", "corporate_transfer", "individual_domestic_transfer", "individual_cross_border_transfer")


def large_value_reports(transactions: pd.DataFrame, customers: pd.DataFrame, config: RulesConfig | None = None) -> pd.DataFrame:
    """The transactions that must be reported as large-value transactions.

    Parameters
    ----------
    transactions : DataFrame
        The contract's transactions (``txn_id``, ``timestamp``, ``customer_id``, ``amount``,
        ``txn_type``, ``counterparty_country``; ``direction`` and ``channel`` are carried over).
    customers : DataFrame
        ``customer_id`` and ``customer_type``.
    config : RulesConfig, optional

    Returns
    -------
    DataFrame
        One row per reportable transaction: ``txn_id``, ``customer_id``, ``customer_type``,
        ``timestamp``, ``local_date``, ``direction``, ``txn_type``, ``channel``, ``amount``,
        ``counterparty_country``, ``category``, ``threshold``, ``basis`` (``single`` or
        ``daily_total``), ``daily_total`` and ``config_hash``; ordered by day, customer, time.
    """
    config = config if config is not None else load_rules_config()
    lv = config.large_value
    need = ("txn_id", "timestamp", "customer_id", "amount", "txn_type", "counterparty_country")
    missing = [c for c in need if c not in transactions.columns]
    if missing:
        raise AmlError(f"transactions is missing column(s): {', '.join(missing)}")
    t = transactions
    txn_type = t["txn_type"].astype("string")
    is_cash = txn_type.isin(lv.cash_types).to_numpy(dtype=bool, na_value=False)
    is_transfer = txn_type.isin(lv.transfer_types).to_numpy(dtype=bool, na_value=False)
    cust_codes, cust_ids = pd.factorize(t["customer_id"].astype("string"))
    known = pd.Index(customers["customer_id"].astype("string")).get_indexer(pd.Index(cust_ids))
    types = customers["customer_type"].astype("string").to_numpy(dtype=object, na_value="individual")
    # unknown customer: the (lower) individual thresholds
    type_of = np.where(known >= 0, types[np.clip(known, 0, None)] if len(types) else "individual", "individual")
    ctype = type_of[cust_codes]
    corporate = ctype == "corporate"
    country = t["counterparty_country"].astype("string").str.strip().str.upper()
    country = country.mask(country == "")
    cross = (country.notna() & (country != config.bank.country)).to_numpy(dtype=bool, na_value=False)
    if lv.unknown_country_is_cross_border:
        cross = cross | country.isna().to_numpy()
    # index into CATEGORIES; -1 = neither cash nor a transfer
    cat_code = np.select([is_cash, is_transfer & corporate, is_transfer & cross, is_transfer], [0, 1, 3, 2], default=-1)
    thresholds = np.array([lv.cash_threshold, lv.corporate_transfer_threshold,
                           lv.individual_domestic_transfer_threshold, lv.individual_cross_border_transfer_threshold])
    threshold_fen = np.append(np.round(thresholds * 100).astype(np.int64), np.iinfo(np.int64).max)[cat_code]
    fen = np.round(pd.to_numeric(t["amount"], errors="coerce").to_numpy(dtype=float) * 100).astype(np.int64)
    ts = pd.to_datetime(t["timestamp"], utc=True, errors="coerce")
    local_date = (ts + pd.Timedelta(hours=config.bank.utc_offset_hours)).dt.tz_localize(None).dt.normalize()
    day = local_date.to_numpy().astype("datetime64[D]").astype(np.int64)
    direction = pd.factorize(t["direction"])[0] if "direction" in t.columns else np.zeros(len(t), dtype=np.int64)
    # one integer key per (customer, local day, category, direction); totals in fen (exact below 2**53 fen)
    day0 = day.min() if len(day) else 0
    key = ((cust_codes.astype(np.int64) * (int(day.max() - day0) + 1 if len(day) else 1) + (day - day0)) * 5
           + (cat_code + 1)) * (int(direction.max()) + 2 if len(direction) else 1) + (direction + 1)
    groups, _ = pd.factorize(key)
    daily = np.rint(np.bincount(groups, weights=fen.astype(float))[groups]).astype(np.int64) if len(t) else fen
    single = (cat_code >= 0) & (fen >= threshold_fen)
    report = np.flatnonzero((cat_code >= 0) & (single | (lv.aggregate_daily & (daily >= threshold_fen))))
    keep = [c for c in ("txn_id", "customer_id", "timestamp", "direction", "txn_type", "channel", "amount",
                        "counterparty_country") if c in t.columns]
    out = t[keep].iloc[report].reset_index(drop=True)  # only the reported rows from here on
    out["customer_id"] = out["customer_id"].astype("string")
    out.insert(2, "customer_type", ctype[report])
    out["timestamp"] = ts.array[report]
    out.insert(4, "local_date", local_date.to_numpy()[report])
    out["amount"] = fen[report] / 100.0
    out["counterparty_country"] = country.array[report]
    out["category"] = np.array(CATEGORIES, dtype=object)[cat_code[report]]
    out["threshold"] = thresholds[cat_code[report]]
    out["basis"] = np.where(single[report], "single", "daily_total")
    out["daily_total"] = daily[report] / 100.0
    out["config_hash"] = config.hash
    return out.sort_values(["local_date", "customer_id", "timestamp", "txn_id"], kind="stable").reset_index(drop=True)
