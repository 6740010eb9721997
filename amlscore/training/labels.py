"""Labels from the ``reports`` table: which transactions are suspicious, which are confirmed normal.

Rules (docs: the module docstring is the reference)
---------------------------------------------------
* Only reports filed **before the cut-off** count: ``report_date < cutoff`` (dates on the bank's
  clock). ``cutoff=None`` uses every report.
* A **transaction report** (``txn_id`` given) labels that transaction.
* A **period report** (``txn_id`` empty) labels every transaction of its customer whose date on the
  bank's clock (UTC + ``utc_offset_hours``, from the feature parameters) is in
  ``[period_start, period_end]``, both ends included.
* ``suspicious`` gives label 1. ``not_suspicious`` (an analyst's disposition) gives a **confirmed**
  0 and overrides any suspicious report covering the same transaction: the analyst looked at it.
* A transaction no report covers gets label 0, **presumed normal**; the ``status`` column keeps
  the difference (``unlabelled`` vs ``not_suspicious``), because much laundering is never reported.

The result also says how a positive was labelled (``source``: ``transaction`` when a transaction
report names it, else ``period``) and, for positives known only from a period report, which report
(``bag``): a period report says "there was laundering in this customer's activity in this period",
not that every one of those transactions was laundering. :mod:`amlscore.training.train` uses the bags to
refine the positives (see there).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

__all__ = ["LABEL_STATUSES", "bank_days", "derive_labels", "reported_customers", "to_day"]

LABEL_STATUSES = ("suspicious", "not_suspicious", "unlabelled")
_UNLABELLED, _SUSPICIOUS, _NOT_SUSPICIOUS = 0, 1, 2


def to_day(value: dt.date | pd.Timestamp | str | None) -> np.datetime64 | None:
    """A date-like value as ``datetime64[D]`` (None stays None)."""
    if value is None:
        return None
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert(None)
    return np.datetime64(ts.date(), "D")


def bank_days(timestamps: pd.Series | np.ndarray, utc_offset_hours: float) -> np.ndarray:
    """The date of each timestamp on the bank's clock, as ``datetime64[D]``."""
    ts = pd.to_datetime(pd.Series(timestamps), utc=True)
    local = ts.dt.tz_convert(None) + pd.Timedelta(hours=float(utc_offset_hours))
    return local.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def _report_days(values: pd.Series) -> np.ndarray:
    return pd.to_datetime(values).to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")


def usable_reports(reports: pd.DataFrame, cutoff: dt.date | str | pd.Timestamp | None) -> pd.DataFrame:
    """The reports filed before ``cutoff`` (``report_date < cutoff``); all of them when None."""
    day = to_day(cutoff)
    if day is None or len(reports) == 0:
        return reports
    return reports[_report_days(reports["report_date"]) < day]


def reported_customers(reports: pd.DataFrame, cutoff: dt.date | str | pd.Timestamp | None = None) -> set[str]:
    """Customers with at least one suspicious report filed before ``cutoff``."""
    r = usable_reports(reports, cutoff)
    return set(r.loc[r["label"].astype(str) == "suspicious", "customer_id"].astype(str))


def derive_labels(transactions: pd.DataFrame, reports: pd.DataFrame, *,
                  cutoff: dt.date | str | pd.Timestamp | None, utc_offset_hours: float = 8) -> pd.DataFrame:
    """Label every transaction from the reports filed before ``cutoff``.

    Parameters
    ----------
    transactions : DataFrame
        At least ``txn_id``, ``customer_id``, ``timestamp`` (any row order).
    reports : DataFrame
        The contract's reports table (typed: dates as datetime64).
    cutoff : date, str, Timestamp or None
        Only reports with ``report_date < cutoff`` are used; None uses all.
    utc_offset_hours : float, default=8
        The bank's clock, for period reports.

    Returns
    -------
    DataFrame
        Same index and order as ``transactions``: ``txn_id``, ``label`` (int8: 1 suspicious,
        0 otherwise), ``status`` (``suspicious`` / ``not_suspicious`` / ``unlabelled``),
        ``source`` (``transaction`` / ``period`` / ``""``), ``bag`` (report_id of the period report
        behind a period-only positive, else ``""``) and ``typology`` (written on a covering
        suspicious report, else ``""``).
    """
    n = len(transactions)
    rep = usable_reports(reports, cutoff)
    status = np.zeros(n, dtype=np.int8)
    by_txn = np.zeros(n, dtype=bool)  # positive named by a transaction report
    bag = np.full(n, "", dtype=object)
    typology = np.full(n, "", dtype=object)
    txn_ids = pd.Index(transactions["txn_id"].astype(str).to_numpy(dtype=object))
    if len(rep):
        label = rep["label"].astype(str).to_numpy(dtype=object)
        rtxn = rep["txn_id"]
        has_txn = rtxn.notna().to_numpy() & (rtxn.astype(str).str.len() > 0).to_numpy()
        rtyp = rep["typology"].astype(object).where(rep["typology"].notna(), "").astype(str).to_numpy(dtype=object)
        rid = rep["report_id"].astype(str).to_numpy(dtype=object)
        # filing order, so that "the first covering report" is well defined
        order = np.lexsort((rid, _report_days(rep["report_date"])))
        # 1) transaction reports
        pos = txn_ids.get_indexer(rtxn.astype(str).to_numpy(dtype=object))
        for i in order:
            if not has_txn[i] or pos[i] < 0:
                continue
            j = pos[i]
            if label[i] == "suspicious":
                by_txn[j] = True
                if status[j] != _NOT_SUSPICIOUS:
                    status[j] = _SUSPICIOUS
                if not typology[j] and rtyp[i]:
                    typology[j] = rtyp[i]
            else:
                status[j] = _NOT_SUSPICIOUS
        # 2) period reports: rows of the customer sorted by day, one searchsorted per report
        period = [i for i in order if not has_txn[i]]
        if period:
            cust_codes, cust_uniques = pd.factorize(transactions["customer_id"].astype(str).to_numpy(dtype=object))
            days = bank_days(transactions["timestamp"], utc_offset_hours).astype(np.int64)
            key = cust_codes.astype(np.int64) * 1_000_000 + days
            sort = np.argsort(key, kind="stable")
            skey = key[sort]
            code_of = {c: k for k, c in enumerate(cust_uniques)}
            start = _report_days(rep["period_start"]).astype(np.int64)
            end = _report_days(rep["period_end"]).astype(np.int64)
            rcust = rep["customer_id"].astype(str).to_numpy(dtype=object)
            for i in period:
                code = code_of.get(rcust[i])
                if code is None:
                    continue
                lo = np.searchsorted(skey, code * 1_000_000 + start[i], "left")
                hi = np.searchsorted(skey, code * 1_000_000 + end[i], "right")
                rows = sort[lo:hi]
                if len(rows) == 0:
                    continue
                if label[i] == "suspicious":
                    fresh = rows[status[rows] == _UNLABELLED]
                    status[fresh] = _SUSPICIOUS
                    new_bag = rows[(bag[rows] == "") & ~by_txn[rows]]
                    bag[new_bag] = rid[i]
                    if rtyp[i]:
                        no_typ = rows[typology[rows] == ""]
                        typology[no_typ] = rtyp[i]
                else:
                    status[rows] = _NOT_SUSPICIOUS
    positive = status == _SUSPICIOUS
    source = np.where(positive & by_txn, "transaction", np.where(positive, "period", "")).astype(object)
    bag = np.where(positive & ~by_txn, bag, "")
    typology = np.where(positive, typology, "")
    names = np.array(["unlabelled", "suspicious", "not_suspicious"], dtype=object)
    return pd.DataFrame({
        "txn_id": transactions["txn_id"].to_numpy(),
        "label": positive.astype(np.int8),
        "status": pd.Categorical(names[status], categories=list(LABEL_STATUSES)),
        "source": source,
        "bag": bag.astype(object),
        "typology": typology.astype(object),
    }, index=transactions.index)
