"""Review scheduling: next review dates, overdue ratings, new customers rated late.

* Next review = rating date + the level's ``review_months`` (the highest level at most 6 months,
  each lower level at most twice the level above - checked when the configuration loads). A
  customer's *first* rating is reviewed within ``reviews.first_rating_max_months`` (<= 36) whatever
  its level. Months are calendar months; a day that does not exist becomes the month's last day
  (31 Aug + 6 months = 28 or 29 Feb).
* Overdue = the customer's latest rating has a next review date before the as-of date.
* A new customer must be rated within ``reviews.new_customer_rating_working_days`` (10) working days
  after the onboarding day. Working days are Monday to Friday, minus ``calendar.holidays``, plus
  ``calendar.extra_working_days`` (weekend make-up days). A deadline in a year the calendar does not
  cover (no holiday listed) is computed as Monday to Friday and raises :class:`CalendarGapWarning`,
  because it may fall on a public holiday.
"""

from __future__ import annotations

import warnings
from datetime import date, datetime

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.models.rules.config import RulesConfig, load_rules_config

DateLike = date | datetime | str | pd.Timestamp


def to_day(value: DateLike, name: str = "as_of") -> pd.Timestamp:
    """A date-like value as a midnight, timezone-naive Timestamp."""
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError):
        ts = pd.NaT
    if ts is pd.NaT or pd.isna(ts):
        raise AmlError(f"The '{name}' parameter must be a date (YYYY-MM-DD). Got {value!r} instead.")
    if ts.tzinfo is not None:
        ts = ts.tz_localize(None)
    return ts.normalize()


def _day_series(values: pd.Series) -> pd.Series:
    s = pd.to_datetime(values, errors="coerce")
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_localize(None)
    return s.dt.normalize().astype("datetime64[ns]")


class CalendarGapWarning(UserWarning):
    """A working-day computation reached a year with no holidays in the configured calendar."""


def _warn_uncovered_years(config: RulesConfig, days: np.ndarray) -> None:
    if days.size == 0:
        return
    years = set(days.astype("datetime64[Y]").astype(int) + 1970)
    missing = sorted(years - config.calendar.covered_years)
    if missing:
        warnings.warn(f"The working-day calendar (calendar.holidays in rules.yaml) has no holidays for "
                      f"{', '.join(map(str, missing))}: deadlines there are counted Monday to Friday and may fall "
                      f"on a public holiday. Add the State Council's holiday notice for those years.",
                      CalendarGapWarning, stacklevel=3)


def working_day_calendar(config: RulesConfig, start: pd.Timestamp, end: pd.Timestamp) -> np.ndarray:
    """Sorted working days (``datetime64[D]``) in ``[start, end]``."""
    days = np.arange(np.datetime64(start.date(), "D"), np.datetime64(end.date(), "D") + 1)
    weekday = (days.astype("int64") + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    holidays = np.array([np.datetime64(d, "D") for d in config.calendar.holidays], dtype="datetime64[D]")
    extra = np.array([np.datetime64(d, "D") for d in config.calendar.extra_working_days], dtype="datetime64[D]")
    working = ((weekday < 5) & ~np.isin(days, holidays)) | np.isin(days, extra)
    return days[working]


def add_working_days(dates: pd.Series, n: int, config: RulesConfig) -> pd.Series:
    """The ``n``-th working day strictly after each date (NaT stays NaT)."""
    d = _day_series(dates)
    out = pd.Series(pd.NaT, index=d.index, dtype="datetime64[ns]")
    ok = d.notna()
    if not ok.any():
        return out
    lo, hi = d[ok].min(), d[ok].max()
    cal = working_day_calendar(config, lo, hi + pd.Timedelta(days=7 * n + 60))
    values = d[ok].to_numpy().astype("datetime64[D]")
    pos = np.searchsorted(cal, values, side="right") + (n - 1)
    _warn_uncovered_years(config, np.concatenate([values, cal[pos]]))
    out[ok] = pd.to_datetime(cal[pos]).astype("datetime64[ns]")
    return out


def _add_months(days: pd.Series, months: np.ndarray) -> pd.Series:
    out = pd.Series(pd.NaT, index=days.index, dtype="datetime64[ns]")
    for k in np.unique(months):
        sel = months == k
        out[sel] = (pd.DatetimeIndex(days[sel]) + pd.DateOffset(months=int(k))).astype("datetime64[ns]")
    return out


def review_schedule(ratings: pd.DataFrame, config: RulesConfig | None = None,
                    previous: pd.DataFrame | None = None) -> pd.DataFrame:
    """Next review date of each rating.

    Parameters
    ----------
    ratings : DataFrame
        ``customer_id``, ``level`` (a level id) and ``rated_at`` (date).
    config : RulesConfig, optional
    previous : DataFrame, optional
        Earlier ratings (``customer_id``, ``rated_at``). A rating with no earlier rating of the same
        customer is a first rating. Without it every rating is a first rating.

    Returns
    -------
    DataFrame
        ``customer_id``, ``level``, ``rated_at``, ``is_first_rating``, ``review_interval_months``,
        ``next_review``; same index as ``ratings``.
    """
    config = config if config is not None else load_rules_config()
    _require(ratings, ("customer_id", "level", "rated_at"), "ratings")
    months_by_level = {lv.id: lv.review_months for lv in config.levels}
    level = ratings["level"].astype(str)
    unknown = sorted(set(level.unique()) - set(months_by_level))
    if unknown:
        raise AmlError(f"The 'ratings.level' column must hold level ids ({', '.join(config.level_ids)}). Got {', '.join(map(repr, unknown))} instead.")
    rated_at = _day_series(ratings["rated_at"])
    months = level.map(months_by_level).to_numpy(dtype=np.int64)
    first = np.ones(len(ratings), dtype=bool)
    if previous is not None and len(previous):
        _require(previous, ("customer_id", "rated_at"), "previous")
        earliest = _day_series(previous["rated_at"]).groupby(previous["customer_id"].astype(str).to_numpy()).min()
        prior = ratings["customer_id"].astype(str).map(earliest)
        first = ~(prior.notna() & (prior < rated_at)).to_numpy()
    months = np.where(first, np.minimum(months, config.reviews.first_rating_max_months), months)
    return pd.DataFrame({
        "customer_id": ratings["customer_id"].to_numpy(),
        "level": level.to_numpy(),
        "rated_at": rated_at.to_numpy(),
        "is_first_rating": first,
        "review_interval_months": months,
        "next_review": _add_months(rated_at, months).to_numpy(),
    }, index=ratings.index)


def overdue_reviews(history: pd.DataFrame, as_of: DateLike, config: RulesConfig | None = None) -> pd.DataFrame:
    """Customers whose latest rating's review date has passed.

    Parameters
    ----------
    history : DataFrame
        Ratings so far: ``customer_id``, ``rated_at`` and either ``next_review`` or ``level``
        (then the next review is computed with :func:`review_schedule`).
    as_of : date

    Returns
    -------
    DataFrame
        ``customer_id``, ``level`` (when known), ``rated_at``, ``next_review``, ``days_overdue``
        (> 0), sorted by most overdue first.
    """
    day = to_day(as_of)
    _require(history, ("customer_id", "rated_at"), "history")
    h = history.copy()
    h["rated_at"] = _day_series(h["rated_at"])
    if "next_review" not in h.columns:
        _require(h, ("level",), "history")
        h["next_review"] = review_schedule(h, config, previous=h)["next_review"].to_numpy()
    h["next_review"] = _day_series(h["next_review"])
    h = h[h["rated_at"] <= day]
    latest = h.sort_values(["customer_id", "rated_at"], kind="stable").groupby("customer_id", sort=False).tail(1)
    over = latest[latest["next_review"] < day].copy()
    over["days_overdue"] = (day - over["next_review"]).dt.days.astype(np.int64)
    cols = ["customer_id"] + (["level"] if "level" in over.columns else []) + ["rated_at", "next_review", "days_overdue"]
    return over[cols].sort_values(["days_overdue", "customer_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def unrated_new_customers(customers: pd.DataFrame, history: pd.DataFrame | None, as_of: DateLike,
                          config: RulesConfig | None = None, since: DateLike | None = None) -> pd.DataFrame:
    """New customers not rated within the deadline after onboarding.

    Parameters
    ----------
    customers : DataFrame
        ``customer_id`` and ``onboarded_at``.
    history : DataFrame or None
        Ratings so far (``customer_id``, ``rated_at``); ``None`` means no rating exists.
    as_of : date
        Only deadlines that have passed by this date (strictly before) are listed.
    since : date, optional
        Only customers onboarded on or after this date; by default ``as_of - customers.new_customer_days``
        (customers who are still "new").

    Returns
    -------
    DataFrame
        ``customer_id``, ``onboarded_at``, ``deadline`` (the 10th working day after onboarding),
        ``first_rated_at`` (NaT when never), ``status`` (``unrated`` or ``rated_late``) and
        ``working_days_late`` (working days after the deadline until the rating, or until as_of).
    """
    config = config if config is not None else load_rules_config()
    day = to_day(as_of)
    start = to_day(since, "since") if since is not None else day - pd.Timedelta(days=config.customers.new_customer_days)
    _require(customers, ("customer_id", "onboarded_at"), "customers")
    onboarded = _day_series(customers["onboarded_at"])
    sel = (onboarded >= start) & (onboarded <= day)
    c = pd.DataFrame({"customer_id": customers["customer_id"].astype(str).to_numpy()[sel.to_numpy()],
                      "onboarded_at": onboarded[sel].to_numpy()})
    n = config.reviews.new_customer_rating_working_days
    c["deadline"] = add_working_days(c["onboarded_at"], n, config).to_numpy()
    if history is not None and len(history):
        _require(history, ("customer_id", "rated_at"), "history")
        first = _day_series(history["rated_at"]).groupby(history["customer_id"].astype(str).to_numpy()).min()
        c["first_rated_at"] = c["customer_id"].map(first).astype("datetime64[ns]")
    else:
        c["first_rated_at"] = pd.Series(pd.NaT, index=c.index, dtype="datetime64[ns]")
    c.loc[c["first_rated_at"] > day, "first_rated_at"] = pd.NaT
    late = c["deadline"] < day
    late &= c["first_rated_at"].isna() | (c["first_rated_at"] > c["deadline"])
    out = c[late].copy()
    out["status"] = np.where(out["first_rated_at"].isna(), "unrated", "rated_late")
    until = out["first_rated_at"].fillna(day)
    if len(out):
        lo = out["deadline"].min()
        cal = working_day_calendar(config, lo, until.max())
        a = np.searchsorted(cal, out["deadline"].to_numpy().astype("datetime64[D]"), side="right")
        b = np.searchsorted(cal, until.to_numpy().astype("datetime64[D]"), side="right")
        out["working_days_late"] = (b - a).astype(np.int64)
    else:
        out["working_days_late"] = np.zeros(0, dtype=np.int64)
    return out.sort_values(["deadline", "customer_id"], kind="stable").reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AmlError(f"{name} is missing column(s): {', '.join(missing)}")
