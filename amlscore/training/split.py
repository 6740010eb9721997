"""Time split: train, validation and test periods in time order, with a label cut-off per period.

Exactly what it does
--------------------
* Periods are whole days on the bank's clock (UTC + ``utc_offset_hours``), so a day never straddles
  two periods: **train** = transactions dated before ``valid_start``; **validation** = dated in
  ``[valid_start, test_start)``; **test** = dated on or after ``test_start``.
* With ``fractions=(f_train, f_valid, f_test)`` the boundaries are the days at which the running
  count of transactions first reaches ``f_train`` and ``f_train + f_valid`` of all of them. Explicit
  ``valid_start`` / ``test_start`` dates take precedence.
* **Label cut-offs.** Labels of a period may only come from reports filed before that period ends,
  so that the model is trained, stopped and fused as it would have been on that day, and no report
  filed later (which may be about the same customers' later activity) leaks into it:

  ======== =====================================================================
  train    reports with ``report_date < min(valid_start, cutoff)``
  valid    reports with ``report_date < min(test_start, cutoff)``
  test     reports with ``report_date < cutoff`` (all of them when no cut-off):
           evaluation only, never used to fit anything
  ======== =====================================================================

  ``cutoff`` is the training cut-off (``amlscore train --cutoff``): no report filed on or after it
  is used at all. It does not drop transactions.
* Features are point in time (each row uses only earlier transactions), so the validation and
  test rows' features read the history before them, as a live system would; nothing of a later
  period reaches an earlier one.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from amlscore.contract.errors import AmlError
from amlscore.training.labels import bank_days, to_day

__all__ = ["SPLITS", "TimeSplit", "make_split"]

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class TimeSplit:
    """Day boundaries of the three periods (bank clock) and the label cut-offs they imply.

    Attributes
    ----------
    first_day, last_day : date
        First and last transaction day of the data.
    valid_start, test_start : date
        First day of the validation and of the test period.
    cutoff : date or None
        The training cut-off: reports filed on or after it are never used.
    utc_offset_hours : float
    """

    first_day: dt.date
    valid_start: dt.date
    test_start: dt.date
    last_day: dt.date
    cutoff: dt.date | None
    utc_offset_hours: float

    def label_cutoff(self, split: str) -> dt.date | None:
        """Reports with ``report_date`` before this date label ``split`` (None: every report)."""
        if split == "train":
            end = self.valid_start
        elif split == "valid":
            end = self.test_start
        elif split == "test":
            return self.cutoff
        else:
            raise ValueError(f"The 'split' parameter must be one of {', '.join(SPLITS)}. Got {split!r} instead.")
        return end if self.cutoff is None else min(end, self.cutoff)

    def codes(self, timestamps: pd.Series | np.ndarray) -> np.ndarray:
        """0 (train), 1 (valid) or 2 (test) per timestamp."""
        day = bank_days(timestamps, self.utc_offset_hours)
        vs, ts = np.datetime64(self.valid_start, "D"), np.datetime64(self.test_start, "D")
        return np.where(day < vs, 0, np.where(day < ts, 1, 2)).astype(np.int8)

    def masks(self, timestamps: pd.Series | np.ndarray) -> dict[str, np.ndarray]:
        """Boolean mask per period name."""
        c = self.codes(timestamps)
        return {name: c == k for k, name in enumerate(SPLITS)}

    def describe(self) -> dict[str, str | None]:
        """The boundaries and cut-offs as ISO strings (for MLflow params and the model card)."""
        def iso(d: dt.date | None) -> str | None:
            return d.isoformat() if d is not None else None
        return {
            "train_start": iso(self.first_day), "valid_start": iso(self.valid_start), "test_start": iso(self.test_start),
            "test_end": iso(self.last_day), "cutoff": iso(self.cutoff),
            "train_label_cutoff": iso(self.label_cutoff("train")), "valid_label_cutoff": iso(self.label_cutoff("valid")),
            "test_label_cutoff": iso(self.label_cutoff("test")),
        }


def _as_date(value: dt.date | str | pd.Timestamp | None, name: str) -> dt.date | None:
    if value is None:
        return None
    try:
        if isinstance(value, str):
            return dt.date.fromisoformat(value)
        return pd.Timestamp(to_day(value)).date()
    except (TypeError, ValueError) as exc:
        raise AmlError(f"The '{name}' parameter must be a date YYYY-MM-DD. Got {value!r} instead.") from exc


def make_split(timestamps: pd.Series | np.ndarray, *, fractions: Sequence[float] = (0.6, 0.2, 0.2),
               valid_start: dt.date | str | None = None, test_start: dt.date | str | None = None,
               cutoff: dt.date | str | None = None, utc_offset_hours: float = 8) -> TimeSplit:
    """Choose the period boundaries.

    Parameters
    ----------
    timestamps : Series or array
        Transaction timestamps (UTC).
    fractions : (train, valid, test), default=(0.6, 0.2, 0.2)
        Shares of transactions per period, used for a boundary not given as a date.
    valid_start, test_start : date or str, optional
        Explicit first days (bank clock) of the validation and test periods.
    cutoff : date or str, optional
        Training cut-off for labels (see module docstring).
    utc_offset_hours : float, default=8

    Returns
    -------
    TimeSplit

    Raises
    ------
    AmlError
        If the fractions are not three positive numbers summing to 1, the dates are out of order,
        or a period would hold no transaction.
    """
    if len(fractions) != 3 or any((not isinstance(f, (int, float))) or f <= 0 for f in fractions) \
            or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
        raise AmlError(f"The 'fractions' parameter of make_split must be three positive shares summing to 1. "
                       f"Got {tuple(fractions)!r} instead.")
    day = np.sort(bank_days(timestamps, utc_offset_hours))
    if len(day) < 3:
        raise AmlError(f"A time split needs transactions on at least three days. Got {len(day)} transactions.")
    n = len(day)

    def at_share(share: float) -> dt.date:
        return pd.Timestamp(day[min(n - 1, int(math.ceil(share * n)))]).date()

    vs = _as_date(valid_start, "valid_start") or at_share(fractions[0])
    ts = _as_date(test_start, "test_start") or at_share(fractions[0] + fractions[1])
    first, last = pd.Timestamp(day[0]).date(), pd.Timestamp(day[-1]).date()
    if not first < vs < ts <= last:
        raise AmlError(f"The periods must be in time order with transactions in each: first day {first}, "
                       f"valid_start {vs}, test_start {ts}, last day {last}.")
    split = TimeSplit(first, vs, ts, last, _as_date(cutoff, "cutoff"), float(utc_offset_hours))
    counts = np.bincount(split.codes(pd.Series(timestamps)), minlength=3)
    empty = [SPLITS[k] for k in range(3) if counts[k] == 0]
    if empty:
        raise AmlError(f"The time split leaves no transaction in the {', '.join(empty)} period(s): "
                       f"valid_start {vs}, test_start {ts}.")
    return split
