"""Filing deadlines on the working-day calendar the rules already keep.

The calendar (Monday to Friday, minus the State Council's holidays, plus the weekend make-up days) is
``calendar`` in ``amlscore/models/config/rules.yaml``, read by :mod:`amlscore.models.rules.review`;
this module only counts on it, so a holiday added there moves every casework deadline too. Days
are the bank's days (``bank.utc_offset_hours``): a transaction at 23:30 UTC is the next day in Beijing.

* a suspicious-transaction report is due on the ``str_due_working_days``-th (5th) working day
  after the day the suspicion was decided (PBoC Order 2016 No. 3, art. 19);
* a large-value report on the ``lvr_due_working_days``-th (5th) working day after the transaction's
  day (art. 15);
* the bank's own analysis deadline: ``analysis_due_working_days`` after the case's first alert.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import pandas as pd

from amlscore.models.rules.config import RulesConfig, load_rules_config
from amlscore.models.rules.review import add_working_days


@lru_cache(maxsize=1)
def _default_rules() -> RulesConfig:
    return load_rules_config()


def bank_day(timestamp: str | dt.datetime | pd.Timestamp, rules: RulesConfig | None = None) -> dt.date:
    """The bank's calendar day of an instant (naive instants are taken as UTC)."""
    rules = rules or _default_rules()
    ts = pd.Timestamp(timestamp)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return (ts.tz_convert("UTC") + pd.Timedelta(hours=rules.bank.utc_offset_hours)).date()


def working_days_after(day: dt.date, n: int, rules: RulesConfig | None = None) -> dt.date:
    """The ``n``-th working day strictly after ``day``."""
    if rules is None:
        return _after_default(day, n)
    return add_working_days(pd.Series([pd.Timestamp(day)]), n, rules).iloc[0].date()


@lru_cache(maxsize=4096)
def _after_default(day: dt.date, n: int) -> dt.date:
    # an ingest computes the same few hundred days over and over: ~1 ms of pandas each, once
    return add_working_days(pd.Series([pd.Timestamp(day)]), n, _default_rules()).iloc[0].date()


def str_due(decided_at: str | dt.datetime, working_days: int = 5, rules: RulesConfig | None = None) -> dt.date:
    """The day a suspicious-transaction report decided at ``decided_at`` must be filed by."""
    return working_days_after(bank_day(decided_at, rules), working_days, rules)


def lvr_due(txn_time: str | dt.datetime, working_days: int = 5, rules: RulesConfig | None = None) -> dt.date:
    """The day the large-value report of a transaction at ``txn_time`` must be filed by."""
    return working_days_after(bank_day(txn_time, rules), working_days, rules)


def today_bank(rules: RulesConfig | None = None) -> dt.date:
    """Today on the bank's clock."""
    return bank_day(pd.Timestamp.now(tz="UTC"), rules)
