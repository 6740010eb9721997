"""Labels become reports the way a bank holds them, and the full truth goes to ground_truth.csv.

A public data set labels every laundering payment. A bank knows far less: it reports only some of
its laundering customers, days or weeks after the activity, sometimes as one report over a period
rather than per transaction, and its analysts close many alerts as not suspicious (now and then
wrongly). :class:`ReportPolicy` says how much of that to reproduce; every choice is a hash of the
customer id or the txn_id and the seed, so the same seed gives the same reports on every run and
in every block order (docs/adapters.md, "Labels").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError

#: Bank-local time of the contract (China Standard Time): report dates are its calendar days.
BANK_UTC_OFFSET_HOURS = 8
#: Columns of ground_truth.csv, as ``amlscore generate`` writes them (amlscore.synth.bank).
GROUND_TRUTH_COLUMNS = ("txn_id", "customer_id", "typology", "scenario_id", "reported")
#: Typology of a laundering payment whose source names none.
UNKNOWN_TYPOLOGY = "unknown"

_U53 = float(1 << 53)


@dataclass(frozen=True)
class ReportPolicy:
    """How labels become a bank's reports.

    Attributes
    ----------
    report_share : float
        Share of laundering customers the bank reports (the rest is never reported).
    period_share : float
        Share of reported customers reported by one period report (first to last laundering day)
        instead of one report per laundering transaction.
    min_lag_days, max_lag_days : int
        A report is filed this many days after the activity it covers (uniform per customer).
    missed_share : float
        Share of the unreported laundering customers whose first laundering transaction an analyst
        reviewed and closed as not suspicious (label noise a bank has).
    cleared_rate : float
        Share of other transactions reviewed and closed as not suspicious.
    """

    report_share: float = 0.6
    period_share: float = 0.3
    min_lag_days: int = 3
    max_lag_days: int = 45
    missed_share: float = 0.15
    cleared_rate: float = 0.0005

    def __post_init__(self) -> None:
        for name in ("report_share", "period_share", "missed_share", "cleared_rate"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise AmlError(f"The '{name}' parameter of ReportPolicy must be in [0, 1]. Got {value!r} instead.")
        if not 0 <= self.min_lag_days <= self.max_lag_days:
            raise AmlError("The lag parameters of ReportPolicy must satisfy 0 <= min_lag_days <= max_lag_days. "
                           f"Got {self.min_lag_days!r} and {self.max_lag_days!r} instead.")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a well-spread 64-bit hash of 64-bit keys."""
    with np.errstate(over="ignore"):
        x = x.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def uniform(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """A number in [0, 1) per key, fixed by (key, seed, salt): the same on every run and in any order."""
    s = _mix(np.array([seed * 1_000_003 + salt], dtype=np.uint64))[0]
    return (_mix(keys.astype(np.uint64) ^ s) >> np.uint64(11)).astype(np.float64) / _U53


def text_keys(values: pd.Series | np.ndarray) -> np.ndarray:
    """A 64-bit key per string (pandas' SipHash with its fixed key: stable across runs and machines)."""
    return pd.util.hash_array(np.asarray(values, dtype=object))


def local_days(ts: pd.Series) -> pd.Series:
    """Bank-local calendar day (datetime64 at midnight) of UTC instants."""
    return (ts.dt.tz_localize(None) + pd.Timedelta(hours=BANK_UTC_OFFSET_HOURS)).dt.floor("D")


def bank_reports(laundering: pd.DataFrame, cleared: pd.DataFrame, policy: ReportPolicy,
                 seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reports a bank would hold, and the ground truth.

    Parameters
    ----------
    laundering : DataFrame
        Every laundering row: txn_id, customer_id, timestamp (UTC), typology, scenario_id.
    cleared : DataFrame
        Candidate not-suspicious dispositions (txn_id, customer_id, timestamp), already sampled at
        ``policy.cleared_rate`` by the caller (it sees the rows block by block).
    policy, seed
        What to reproduce, and the seed of every choice.

    Returns
    -------
    (reports, ground_truth)
        Contract ``reports`` frame and the ground-truth frame (:data:`GROUND_TRUTH_COLUMNS`).
    """
    lau = laundering.assign(day=local_days(laundering["timestamp"]))
    customers = pd.Index(lau["customer_id"].unique()).sort_values()
    ckeys = text_keys(customers.to_numpy())
    reported = pd.Series(uniform(ckeys, seed, 1) < policy.report_share, index=customers)
    by_period = pd.Series(uniform(ckeys, seed, 2) < policy.period_share, index=customers)
    span = policy.max_lag_days - policy.min_lag_days + 1
    lag = pd.Series(policy.min_lag_days + np.floor(uniform(ckeys, seed, 3) * span).astype(np.int64), index=customers)
    missed = pd.Series(uniform(ckeys, seed, 4) < policy.missed_share, index=customers) & ~reported

    is_reported = reported.reindex(lau["customer_id"]).to_numpy()
    is_period = by_period.reindex(lau["customer_id"]).to_numpy()
    lags = pd.to_timedelta(lag.reindex(lau["customer_id"]).to_numpy(), unit="D")

    frames = [_txn_reports(lau[is_reported & ~is_period], lags[is_reported & ~is_period], "suspicious"),
              _period_reports(lau[is_reported & is_period], lag)]
    first = lau[missed.reindex(lau["customer_id"]).to_numpy()].sort_values(["timestamp", "txn_id"])
    first = first.drop_duplicates("customer_id")
    frames.append(_txn_reports(first, pd.to_timedelta(lag.reindex(first["customer_id"]).to_numpy(), unit="D"),
                               "not_suspicious", keep_typology=False))
    frames.append(_cleared_reports(cleared[~cleared["customer_id"].isin(customers)], policy, seed))
    reports = _number(pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames)
                      else _txn_reports(lau.iloc[:0], pd.to_timedelta([], unit="D"), "suspicious"))
    truth = pd.DataFrame({
        "txn_id": lau["txn_id"].to_numpy(dtype=object),
        "customer_id": lau["customer_id"].to_numpy(dtype=object),
        "typology": lau["typology"].fillna(UNKNOWN_TYPOLOGY).to_numpy(dtype=object),
        "scenario_id": lau["scenario_id"].to_numpy(dtype=object),
        "reported": is_reported.astype(bool),
    }).sort_values("txn_id", kind="stable").reset_index(drop=True)
    return reports, truth[list(GROUND_TRUTH_COLUMNS)]


def _txn_reports(rows: pd.DataFrame, lags: pd.TimedeltaIndex | np.ndarray, label: str, *,
                 keep_typology: bool = True) -> pd.DataFrame:
    day = local_days(rows["timestamp"]) if "day" not in rows else rows["day"]
    return pd.DataFrame({
        "customer_id": rows["customer_id"].to_numpy(dtype=object),
        "txn_id": rows["txn_id"].to_numpy(dtype=object),
        "period_start": pd.NaT, "period_end": pd.NaT,
        "report_date": (day + np.asarray(lags, dtype="timedelta64[ns]")).to_numpy(),
        "label": label,
        "typology": rows["typology"].to_numpy(dtype=object) if keep_typology else None,
    })


def _period_reports(rows: pd.DataFrame, lag: pd.Series) -> pd.DataFrame:
    """One report per customer over its first to last laundering day, with its most frequent typology."""
    if not len(rows):
        return _txn_reports(rows, pd.to_timedelta([], unit="D"), "suspicious")
    g = rows.groupby("customer_id", sort=True)
    typ = rows.assign(typology=rows["typology"].fillna("")).groupby("customer_id")["typology"]
    common = typ.agg(_most_frequent)
    frame = pd.DataFrame({"period_start": g["day"].min(), "period_end": g["day"].max(),
                          "typology": common.where(common != "", None)})
    frame["report_date"] = frame["period_end"] + pd.to_timedelta(lag.reindex(frame.index).to_numpy(), unit="D")
    frame = frame.reset_index()
    frame["txn_id"] = None
    frame["label"] = "suspicious"
    return frame


def _most_frequent(values: pd.Series) -> str:
    """The most frequent value; ties go to the first in alphabetical order (not to row order)."""
    counts = values.value_counts()
    return str(min(counts.index, key=lambda v: (-counts[v], v)))


def _cleared_reports(rows: pd.DataFrame, policy: ReportPolicy, seed: int) -> pd.DataFrame:
    span = policy.max_lag_days - policy.min_lag_days + 1
    lag = policy.min_lag_days + np.floor(uniform(text_keys(rows["txn_id"].to_numpy()), seed, 5) * span)
    return _txn_reports(rows.assign(typology=None), pd.to_timedelta(lag, unit="D"), "not_suspicious",
                        keep_typology=False)


def _number(reports: pd.DataFrame) -> pd.DataFrame:
    """Filing order (report date, customer, transaction) and report ids R00000001..."""
    out = reports.assign(_txn=reports["txn_id"].fillna(""))
    out = out.sort_values(["report_date", "customer_id", "_txn"], kind="stable").reset_index(drop=True)
    out["report_id"] = [f"R{i:08d}" for i in range(1, len(out) + 1)]
    for col in ("period_start", "period_end", "report_date"):
        out[col] = pd.to_datetime(out[col])
    return out[["report_id", "customer_id", "txn_id", "period_start", "period_end", "report_date", "label",
                "typology"]]
