"""From transaction feature rows to one behaviour row per customer (the business sub-items' inputs).

The window is the ``behaviour.lookback_days`` days ending with the rating date (bank clock):
transactions with ``as_of - lookback < local date <= as_of``. Over those rows, per customer:

==========================  ==========================================================================
column                      meaning
==========================  ==========================================================================
n_txn                       transactions in the window
last_txn_at                 timestamp of the latest one (UTC)
cash_share                  cash amount / total amount (``is_cash``, ``amount``)
peer_cash_ratio             highest ``peer_cash_ratio_30d`` (cash as a multiple of the peer average)
peer_txn_freq_ratio         highest ``peer_txn_freq_ratio_30d``
non_face_to_face_share      share of transactions on a non-face-to-face channel (all but the counter)
cross_border_share          share with ``is_cross_border``
high_risk_txn_count         transactions with ``is_high_risk_country``
operated_by_other_share     share with ``is_operated_by_other``
operator_customers          highest ``operator_customers_30d``
unusual_txn_count           transactions whose rule score reaches ``behaviour.unusual_rule_score``
sanctioned_cp_count, ...    with ``transactions`` only: transactions whose ``counterparty_country`` is on
                            the sanctioned / FATF black / FATF grey / offshore list
==========================  ==========================================================================

Shares are undefined without transactions, so a customer with none in the window has no row here;
:func:`amlscore.models.rules.rating.rate_customers` then marks those sub-items missing (never low risk) and
takes counts and highest ratios as 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.contract.schema import CHANNELS, NON_FACE_TO_FACE_CHANNELS
from amlscore.models.rules.config import RulesConfig, load_rules_config
from amlscore.models.rules.review import DateLike, to_day
from amlscore.models.rules.transaction_rules import rule_features, rule_scores

BEHAVIOUR_FEATURES: tuple[str, ...] = (
    "amount", "is_cash", "peer_cash_ratio_30d", "peer_txn_freq_ratio_30d", "channel_code",
    "is_cross_border", "is_high_risk_country", "is_operated_by_other", "operator_customers_30d",
)
SHARE_COLUMNS: tuple[str, ...] = ("cash_share", "non_face_to_face_share", "cross_border_share", "operated_by_other_share")
COUNT_COLUMNS: tuple[str, ...] = ("n_txn", "peer_cash_ratio", "peer_txn_freq_ratio", "high_risk_txn_count",
                                  "operator_customers", "unusual_txn_count")
COUNTERPARTY_COLUMNS: tuple[str, ...] = ("sanctioned_cp_count", "fatf_black_cp_count", "fatf_grey_cp_count", "offshore_cp_count")
_NON_F2F_CODES = np.array([CHANNELS.index(c) for c in NON_FACE_TO_FACE_CHANNELS])


def _utc(values: pd.Series) -> pd.Series:
    """Timestamps as UTC (a naive timestamp is UTC, as in the contract)."""
    return pd.to_datetime(values, utc=True, errors="coerce")


def _customer_codes(ids: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Codes of the customer ids, numbered in sorted id order (one hash pass, then a sort of the uniques)."""
    codes, uniques = pd.factorize(ids, sort=False)
    uniques = np.asarray(uniques, dtype=object).astype(str)
    order = np.argsort(uniques, kind="stable")
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order))
    return rank[codes], uniques[order]


def window_bounds(as_of: DateLike, config: RulesConfig) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The behaviour window ``[start, end)`` in UTC for a rating date on the bank's clock."""
    day = to_day(as_of)
    offset = pd.Timedelta(hours=config.bank.utc_offset_hours)
    end = (day + pd.Timedelta(days=1) - offset).tz_localize("UTC")
    start = end - pd.Timedelta(days=config.behaviour.lookback_days)
    return start, end


def customer_behaviour(features: pd.DataFrame, as_of: DateLike, config: RulesConfig | None = None,
                       transactions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Aggregate transaction feature rows into one behaviour row per customer.

    Parameters
    ----------
    features : DataFrame
        ``amlscore.features.offline.build_features`` output (``customer_id``, ``timestamp`` and the feature
        columns listed in :data:`BEHAVIOUR_FEATURES` plus those the transaction rules read).
    as_of : date
        Rating date; rows after it (bank clock) are ignored, so the result is point-in-time.
    config : RulesConfig, optional
    transactions : DataFrame, optional
        The contract's transactions (``customer_id``, ``timestamp``, ``counterparty_country``): adds
        the counterparty-country counts of the geography sub-items. Without it those are unknown.

    Returns
    -------
    DataFrame
        Indexed by ``customer_id``; columns as in the module docstring. ``attrs`` holds ``as_of``,
        ``lookback_days`` and ``config_hash``.
    """
    config = config if config is not None else load_rules_config()
    needed = ("customer_id", "timestamp") + BEHAVIOUR_FEATURES + rule_features(config)
    missing = [c for c in dict.fromkeys(needed) if c not in features.columns]
    if missing:
        raise AmlError(f"the feature frame is missing column(s) needed for customer behaviour: {', '.join(missing)}")
    start, end = window_bounds(as_of, config)
    ts = _utc(features["timestamp"])
    in_window = ((ts >= start) & (ts < end)).to_numpy()
    f = features[list(dict.fromkeys(needed))][in_window]
    ts = ts[in_window]
    codes, uniques = _customer_codes(f["customer_id"])
    k = len(uniques)

    def col(name: str) -> np.ndarray:
        return f[name].to_numpy(dtype=float, na_value=np.nan)

    def count(weights: np.ndarray | None = None) -> np.ndarray:
        w = None if weights is None else np.nan_to_num(weights, nan=0.0)
        return np.bincount(codes, weights=w, minlength=k).astype(float)

    def share(flags: np.ndarray) -> np.ndarray:  # undefined (NaN) without transactions
        return np.where(n > 0, count(flags) / np.maximum(n, 1), np.nan)

    def highest(values: np.ndarray) -> np.ndarray:
        out = np.full(k, np.nan)
        np.fmax.at(out, codes, values)
        return out

    n = count()
    amount = col("amount")
    total = count(amount)
    with np.errstate(invalid="ignore", divide="ignore"):
        cash_share = np.where(total > 0, count(amount * col("is_cash")) / total, np.nan)
        non_f2f = np.isin(col("channel_code"), _NON_F2F_CODES).astype(float)
        unusual = (rule_scores(f, config) >= config.behaviour.unusual_rule_score).astype(float)
        last = pd.Series(ts.array).groupby(codes).max() if k else pd.Series(dtype="datetime64[ns, UTC]")
        out = pd.DataFrame({
            "n_txn": n.astype(np.int64),
            "last_txn_at": last.array if k else pd.array([], dtype="datetime64[ns, UTC]"),
            "cash_share": cash_share,
            "peer_cash_ratio": np.nan_to_num(highest(col("peer_cash_ratio_30d")), nan=0.0),
            "peer_txn_freq_ratio": np.nan_to_num(highest(col("peer_txn_freq_ratio_30d")), nan=0.0),
            "non_face_to_face_share": share(non_f2f),
            "cross_border_share": share(col("is_cross_border")),
            "high_risk_txn_count": count(col("is_high_risk_country")),
            "operated_by_other_share": share(col("is_operated_by_other")),
            "operator_customers": np.nan_to_num(highest(col("operator_customers_30d")), nan=0.0),
            "unusual_txn_count": count(unusual),
        }, index=pd.Index(np.asarray(uniques, dtype=object), name="customer_id"))
    if transactions is not None:
        out = out.join(_counterparty_counts(transactions, start, end, config), how="left")
        for c in COUNTERPARTY_COLUMNS:
            out[c] = out[c].fillna(0.0)
    out.attrs.update(as_of=to_day(as_of).date().isoformat(), lookback_days=config.behaviour.lookback_days,
                     config_hash=config.hash, counterparty_countries=transactions is not None)
    return out


def _counterparty_counts(transactions: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp,
                         config: RulesConfig) -> pd.DataFrame:
    need = ("customer_id", "timestamp", "counterparty_country")
    missing = [c for c in need if c not in transactions.columns]
    if missing:
        raise AmlError(f"transactions is missing column(s): {', '.join(missing)}")
    lists = config.lists
    listed = sorted(set(lists.sanctioned) | set(lists.fatf_black) | set(lists.fatf_grey) | set(lists.offshore))
    on_a_list = transactions["counterparty_country"].isin(listed).to_numpy(dtype=bool, na_value=False)
    t = transactions.loc[on_a_list, ["customer_id", "timestamp", "counterparty_country"]]  # few rows
    ts = _utc(t["timestamp"])
    t = t.loc[((ts >= start) & (ts < end)).to_numpy()]
    country = t["counterparty_country"].astype("string")
    flags = pd.DataFrame({
        "sanctioned_cp_count": country.isin(lists.sanctioned).fillna(False).astype(float).to_numpy(),
        "fatf_black_cp_count": country.isin(lists.fatf_black).fillna(False).astype(float).to_numpy(),
        "fatf_grey_cp_count": country.isin(lists.fatf_grey).fillna(False).astype(float).to_numpy(),
        "offshore_cp_count": country.isin(lists.offshore).fillna(False).astype(float).to_numpy(),
    })
    flags["customer_id"] = t["customer_id"].astype(str).to_numpy()
    return flags.groupby("customer_id").sum()
