"""The bank's calendar: daily, weekly and seasonal rhythms, and bank-local time to UTC.

Days are counted from the first day of the window (day 0) in bank-local time (China Standard
Time, UTC+8). A timestamp is stored as integer seconds since the Unix epoch in UTC. Activity is
drawn on a day with probability proportional to a *day profile* (weekday pattern x festivals) and
at a second of the day drawn from an *hour profile* (when people actually bank).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

# Lunar New Year's Day (Spring Festival). Years outside the table get no festival effect.
SPRING_FESTIVAL: dict[int, dt.date] = {
    y: dt.date.fromisoformat(d)
    for y, d in {
        2015: "2015-02-19", 2016: "2016-02-08", 2017: "2017-01-28", 2018: "2018-02-16", 2019: "2019-02-05",
        2020: "2020-01-25", 2021: "2021-02-12", 2022: "2022-02-01", 2023: "2023-01-22", 2024: "2024-02-10",
        2025: "2025-01-29", 2026: "2026-02-17", 2027: "2027-02-06", 2028: "2028-01-26", 2029: "2029-02-13",
        2030: "2030-02-03", 2031: "2031-01-23", 2032: "2032-02-11", 2033: "2033-01-31", 2034: "2034-02-19",
        2035: "2035-02-08", 2036: "2036-01-28",
    }.items()
}

# Hour-of-day weights, bank-local time (index = hour 0..23).
HOUR_PROFILES: dict[str, np.ndarray] = {
    # Card purchases: lunch and evening peaks, almost nothing at night.
    "pos": np.array([0.3, 0.15, 0.08, 0.05, 0.05, 0.1, 0.4, 1.2, 2.0, 2.2, 2.6, 3.6,
                     5.0, 4.2, 2.8, 2.6, 3.0, 3.8, 5.2, 5.6, 4.8, 3.4, 1.8, 0.8]),
    # Online shopping and personal e-banking: spread over the day, late-evening peak.
    "online": np.array([1.0, 0.5, 0.25, 0.15, 0.1, 0.15, 0.4, 1.2, 2.0, 2.6, 2.8, 3.0,
                        3.2, 2.8, 2.6, 2.6, 2.8, 3.0, 3.4, 4.0, 4.6, 4.8, 4.0, 2.2]),
    # ATMs: daytime and early evening.
    "atm": np.array([0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.4, 1.4, 2.4, 3.0, 3.2, 3.4,
                     3.6, 3.0, 2.8, 2.8, 3.0, 3.4, 3.6, 3.2, 2.4, 1.6, 0.9, 0.5]),
    # Branch counters: opening hours only.
    "counter": np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 4.0, 5.0, 5.0,
                         2.5, 2.5, 4.5, 4.5, 4.0, 1.0, 0, 0, 0, 0, 0, 0], dtype=float),
    # Corporate e-banking: office hours.
    "business": np.array([0.02, 0.01, 0.01, 0.01, 0.01, 0.02, 0.05, 0.3, 2.5, 5.0, 5.5, 5.0,
                          2.0, 3.0, 5.0, 5.0, 4.5, 3.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05]),
    # Payroll and pension batches: morning.
    "batch": np.array([0, 0, 0, 0, 0, 0, 0, 0.5, 3.0, 5.0, 4.0, 2.0,
                       0.5, 0.3, 0.3, 0.3, 0.2, 0.1, 0, 0, 0, 0, 0, 0], dtype=float),
    # Money mules and scam operators: any time, with more at night than legitimate customers.
    "mule": np.array([2.2, 2.0, 1.6, 1.2, 1.0, 1.0, 1.2, 1.6, 2.0, 2.6, 3.0, 3.0,
                      3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.2, 3.4, 3.4, 3.0, 2.6]),
}

DAY_PROFILES = ("retail", "online", "business", "counter", "flat")


@dataclass
class Clock:
    """Calendar of one window.

    Parameters
    ----------
    start:
        First day of the window (bank-local date).
    days:
        Number of days.
    utc_offset_hours:
        Bank-local time minus UTC (8 for China).
    """

    start: dt.date
    days: int
    utc_offset_hours: int = 8
    epoch0: int = field(init=False)
    weekday: np.ndarray = field(init=False)
    day_weights: dict[str, np.ndarray] = field(init=False)
    _cdf: dict[str, np.ndarray] = field(init=False)
    _hour_cdf: dict[str, np.ndarray] = field(init=False)

    def __post_init__(self) -> None:
        midnight = dt.datetime(self.start.year, self.start.month, self.start.day, tzinfo=dt.timezone.utc)
        self.epoch0 = int(midnight.timestamp()) - self.utc_offset_hours * 3600
        dates = [self.start + dt.timedelta(days=i) for i in range(self.days)]
        self.weekday = np.array([d.weekday() for d in dates], dtype=np.int8)
        self.day_weights = {p: _day_profile(p, dates, self.weekday) for p in DAY_PROFILES}
        self._cdf = {p: _cdf(w) for p, w in self.day_weights.items()}
        self._hour_cdf = {p: _cdf(h) for p, h in HOUR_PROFILES.items()}

    def date(self, day: int) -> dt.date:
        """Bank-local date of a day index."""
        return self.start + dt.timedelta(days=int(day))

    def day_of(self, date: dt.date) -> int:
        """Day index of a bank-local date (may be negative or past the window)."""
        return (date - self.start).days

    def month_starts(self) -> np.ndarray:
        """Day index of the 1st of every month overlapping the window (the first may be negative)."""
        out: list[int] = []
        d = dt.date(self.start.year, self.start.month, 1)
        while d <= self.start + dt.timedelta(days=self.days - 1):
            out.append(self.day_of(d))
            d = dt.date(d.year + (d.month == 12), d.month % 12 + 1, 1)
        return np.array(out, dtype=np.int64)

    def share(self, profile: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Expected share of a profile's activity in days ``[lo, hi)``, times the window length.

        Multiplying a per-day rate by this gives the expected number of events in the span.
        """
        cdf = self._cdf[profile]
        lo = np.clip(lo, 0, self.days)
        hi = np.clip(hi, 0, self.days)
        return np.maximum(cdf[hi] - cdf[lo], 0.0) * self.days

    def sample_days(self, rng: np.random.Generator, profile: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """One day per element, drawn from a day profile restricted to ``[lo, hi)`` (vectorised)."""
        cdf = self._cdf[profile]
        lo = np.clip(lo, 0, self.days - 1)
        hi = np.clip(hi, lo + 1, self.days)
        u = cdf[lo] + rng.random(len(lo)) * (cdf[hi] - cdf[lo])
        day = np.searchsorted(cdf, u, side="right") - 1
        return np.clip(day, lo, hi - 1).astype(np.int32)

    def sample_seconds(self, rng: np.random.Generator, n: int, profile: str) -> np.ndarray:
        """Seconds after local midnight, hour drawn from an hour profile."""
        hour = np.searchsorted(self._hour_cdf[profile], rng.random(n), side="right") - 1
        return (np.clip(hour, 0, 23) * 3600 + rng.integers(0, 3600, n)).astype(np.int64)

    def timestamp(self, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """UTC epoch seconds of a bank-local day index and second of the day."""
        return self.epoch0 + np.asarray(day, dtype=np.int64) * 86_400 + np.asarray(seconds, dtype=np.int64)

    def day_of_ts(self, ts: np.ndarray) -> np.ndarray:
        """Bank-local day index of UTC epoch seconds."""
        return ((np.asarray(ts, dtype=np.int64) - self.epoch0) // 86_400).astype(np.int64)

    def stamp(self, rng: np.random.Generator, day: np.ndarray, profile: str) -> np.ndarray:
        """Timestamps on given days at times of day drawn from an hour profile."""
        return self.timestamp(day, self.sample_seconds(rng, len(day), profile))


def _cdf(weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    c = np.concatenate([[0.0], np.cumsum(w)])
    return c / c[-1]


def _day_profile(profile: str, dates: list[dt.date], weekday: np.ndarray) -> np.ndarray:
    """Relative activity per day for one kind of behaviour."""
    week = {
        "retail": [0.9, 0.9, 0.92, 0.95, 1.05, 1.3, 1.2],
        "online": [1.0, 1.0, 1.0, 1.0, 1.0, 1.05, 1.1],
        "business": [1.1, 1.05, 1.05, 1.05, 1.1, 0.15, 0.05],
        "counter": [1.1, 1.0, 1.0, 1.0, 1.1, 0.5, 0.2],
        "flat": [1.0] * 7,
    }[profile]
    w = np.array(week, dtype=float)[weekday]
    if profile == "flat":
        return w
    for i, d in enumerate(dates):
        w[i] *= _festival_factor(profile, d)
    return w


def _festival_factor(profile: str, d: dt.date) -> float:
    """Seasonal multiplier: Spring Festival, Golden Week, Double-11 and 618 shopping days."""
    f = 1.0
    sf = SPRING_FESTIVAL.get(d.year)
    if sf is None and d.month == 12:
        sf = SPRING_FESTIVAL.get(d.year + 1)
    if sf is not None:
        k = (d - sf).days
        if -14 <= k < -1:  # shopping and red envelopes before the New Year
            f *= {"retail": 1.6, "online": 1.5, "business": 1.2, "counter": 1.4}.get(profile, 1.0)
        elif -1 <= k <= 6:  # the holiday week: shops busy, offices and branches mostly shut
            f *= {"retail": 1.1, "online": 1.3, "business": 0.12, "counter": 0.25}.get(profile, 1.0)
    if d.month == 10 and d.day <= 7:  # National Day Golden Week
        f *= {"retail": 1.3, "online": 1.1, "business": 0.15, "counter": 0.3}.get(profile, 1.0)
    if profile in ("online", "retail"):
        if d.month == 11 and d.day == 11:
            f *= 5.0 if profile == "online" else 1.4
        elif d.month == 11 and 1 <= d.day <= 10:
            f *= 1.5 if profile == "online" else 1.1
        elif d.month == 6 and d.day == 18:
            f *= 2.5 if profile == "online" else 1.2
    return f
