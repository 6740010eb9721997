"""The bank's compliance desk: which activity gets reported, when, and how.

Labels in a real bank are incomplete and late. Here:

* only part of the laundering is reported: a share ``report_rate`` (45-70 %) of each
  typology's scenarios is reported, and within a reported scenario its core accounts always and the other participants only
  sometimes (35 %);
* a report is filed 3-60 days after the activity it covers: transaction reports come in
  14-day batches listing 1-6 transactions each, filed 3-45 days after the batch; period reports
  are filed 3-45 days after the period ends, long schemes in 30-day instalments;
* ~30 % of report rows cover a customer and a period (``txn_id`` empty) instead of naming a
  transaction;
* the typology is written on ~80 % of suspicious reports (analysts do not always classify);
* innocent but unusual customers (cash businesses near the threshold, travellers, big one-off
  purchases, sleepers waking up, trade with high-risk countries) get ``not_suspicious``
  dispositions, and ~10 % of the unreported schemes had an alert that was wrongly closed
  as ``not_suspicious`` (label noise a real desk produces too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amlscore.synth.clock import Clock
from amlscore.synth.config import TYPOLOGY_BY_NAME, stream
from amlscore.synth.typologies import Scenario

PERIOD_SHARE = 0.75  # of filings; as transaction reports list several rows, ~30 % of report rows
BATCH_DAYS = 14
MAX_LISTED = 6
TYPOLOGY_WRITTEN = 0.80
PERIPHERAL_REPORTED = 0.35
MISSED_ALERT_SHARE = 0.10
LAG_DAYS = (3, 45)  # after a batch's last transaction; so 3-59 days after any reported transaction
INSTALMENT_DAYS = 30
NO_DAY = -(10**9)  # an empty date (a period can start before the window, so -1 is a real day)


@dataclass
class ReportRows:
    """Reports as arrays (dates are local day indices, ``NO_DAY`` when empty; ``row`` is the ledger row or -1 for a period)."""

    customer: np.ndarray
    row: np.ndarray
    period_start: np.ndarray
    period_end: np.ndarray
    report_day: np.ndarray
    suspicious: np.ndarray
    typology: np.ndarray  # index into TYPOLOGIES, -1 = empty

    def __len__(self) -> int:
        return len(self.customer)


def _lag(rng: np.random.Generator) -> int:
    """Days between the activity and the report: mostly one to three weeks, 3 to 45 days."""
    return int(np.clip(round(np.exp(rng.normal(np.log(14), 0.6))), *LAG_DAYS))


class _Desk:
    """Collects report rows."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.rows: list[tuple[int, int, int, int, int, bool, int]] = []

    def file(self, customer: int, rows: np.ndarray, days: np.ndarray, suspicious: bool, typology: int) -> None:
        """File the reports about ``rows`` of one customer: per transaction, or for a period.

        Per transaction, the activity is reported in 14-day batches, each listing its 1-6 most
        telling transactions; for a period, one report covers the whole activity, or 30-day
        instalments of it when it ran for more than 45 days (a first report and follow-ups).
        """
        rng = self.rng
        order = np.argsort(days, kind="stable")
        rows, days = rows[order], days[order]
        if rng.random() < PERIOD_SHARE:
            long = days[-1] - days[0] > 45 and rng.random() < 0.5
            part = (days - days[0]) // INSTALMENT_DAYS if long else np.zeros(len(days), dtype=np.int64)
            for p in np.unique(part).tolist():
                d = days[part == p]
                # A little wider than the activity, in whole local days; -1 so that reading the
                # dates as UTC days still covers the first transaction.
                start = int(d[0]) - 1 - int(rng.integers(0, 3))
                end = int(d[-1])
                self.rows.append((customer, -1, start, end, end + _lag(rng), suspicious, typology))
            return
        part = (days - days[0]) // BATCH_DAYS
        for p in np.unique(part).tolist():
            sel = np.flatnonzero(part == p)
            k = min(len(sel), int(rng.integers(1, MAX_LISTED + 1)))
            listed = np.sort(rng.choice(sel, size=k, replace=False))
            report_day = int(days[sel[-1]]) + _lag(rng)
            for r in rows[listed].tolist():
                self.rows.append((customer, r, NO_DAY, NO_DAY, report_day, suspicious, typology))

    def result(self) -> ReportRows:
        if not self.rows:
            z = np.zeros(0, dtype=np.int64)
            return ReportRows(z, z, z, z, z, np.zeros(0, bool), z)
        a = np.array(self.rows, dtype=np.int64)
        return ReportRows(a[:, 0], a[:, 1], a[:, 2], a[:, 3], a[:, 4], a[:, 5].astype(bool), a[:, 6])


def build_reports(seed: int, clock: Clock, customer: np.ndarray, scenario: np.ndarray, ts: np.ndarray,
                  tag: np.ndarray, role: np.ndarray, scenarios: list[Scenario],
                  typologies: tuple[str, ...]) -> ReportRows:
    """File the reports of the final ledger.

    Parameters
    ----------
    seed:
        Run seed (the desk has its own random stream).
    clock:
        Calendar, for local days.
    customer, scenario, ts, tag:
        Ledger columns in final row order (``scenario`` -1 for legitimate rows).
    role:
        Scenario of each customer, -1 for normal customers (who never get a suspicious label).
    scenarios:
        The injected scenarios.
    typologies:
        Typology names (the ``typology`` code is an index into it).

    Returns
    -------
    ReportRows
        Suspicious reports of laundering, and not_suspicious dispositions.
    """
    rng = stream(seed, "reports")
    desk = _Desk(rng)
    day = clock.day_of_ts(ts)
    laundering = np.flatnonzero(scenario >= 0)
    order = laundering[np.argsort(scenario[laundering], kind="stable")]
    bounds = np.searchsorted(scenario[order], np.arange(len(scenarios) + 1))
    reported = _reported_scenarios(rng, scenarios)
    for sc in scenarios:
        rows = order[bounds[sc.index]: bounds[sc.index + 1]]
        if len(rows) == 0:
            continue
        t_code = typologies.index(sc.typology)
        if not reported[sc.index]:
            if rng.random() < MISSED_ALERT_SHARE:  # an alert closed wrongly
                core_rows = rows[customer[rows] == sc.core[0]]
                if len(core_rows):
                    desk.file(int(sc.core[0]), core_rows[:3], day[core_rows[:3]], False, -1)
            continue
        for c in sc.customers.tolist():
            if c not in sc.core and rng.random() >= PERIPHERAL_REPORTED:
                continue
            mine = rows[customer[rows] == c]
            if len(mine) == 0:
                continue
            written = t_code if rng.random() < TYPOLOGY_WRITTEN else -1
            desk.file(c, mine, day[mine], True, written)
    n_suspicious_customers = len({r[0] for r in desk.rows if r[5]})
    _innocent_dispositions(desk, rng, customer, tag, day, role, max(3, int(0.8 * n_suspicious_customers)))
    return desk.result()


def _reported_scenarios(rng: np.random.Generator, scenarios: list[Scenario]) -> np.ndarray:
    """Which scenarios get reported: ``report_rate`` of each typology's scenarios, at least one.

    Why a fixed share rather than a coin per scenario: with a handful of scenarios per typology a
    coin can leave a typology without any label at all in a small bank.
    """
    out = np.zeros(len(scenarios), dtype=bool)
    by_typology: dict[str, list[int]] = {}
    for sc in scenarios:
        by_typology.setdefault(sc.typology, []).append(sc.index)
    for name in sorted(by_typology):
        idx = np.array(by_typology[name])
        k = int(round(len(idx) * TYPOLOGY_BY_NAME[name].report_rate))
        k = min(len(idx), max(1, k))
        out[rng.choice(idx, size=k, replace=False)] = True
    return out


def _innocent_dispositions(desk: _Desk, rng: np.random.Generator, customer: np.ndarray, tag: np.ndarray,
                           day: np.ndarray, role: np.ndarray, count: int) -> None:
    """not_suspicious dispositions of normal customers whose activity looked unusual."""
    flagged = np.flatnonzero((tag > 0) & (role[customer] < 0))
    if len(flagged) == 0:
        return
    people = np.unique(customer[flagged])
    chosen = rng.choice(people, size=min(count, len(people)), replace=False)
    rows_by_customer = flagged[np.argsort(customer[flagged], kind="stable")]
    keys = customer[rows_by_customer]
    for c in np.sort(chosen).tolist():
        mine = rows_by_customer[np.searchsorted(keys, c, "left"): np.searchsorted(keys, c, "right")]
        # The alert is about a burst of the unusual activity: a few rows within a month.
        first = mine[rng.integers(0, len(mine))]
        near = mine[(day[mine] >= day[first]) & (day[mine] < day[first] + 30)][:5]
        desk.file(c, near, day[near], False, -1)


def covered(rep: ReportRows, customer: np.ndarray, day: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` (ledger rows) a suspicious report covers, by transaction or by period."""
    susp = rep.suspicious
    out = np.isin(rows, rep.row[susp & (rep.row >= 0)])
    per = np.flatnonzero(susp & (rep.row < 0))
    if len(per) == 0 or len(rows) == 0:
        return out
    # Period reports grouped by customer; each row checks its customer's reports one rank at a time.
    per = per[np.argsort(rep.customer[per], kind="stable")]
    keys = rep.customer[per]
    c, d = customer[rows], day[rows]
    first = np.searchsorted(keys, c, "left")
    count = np.searchsorted(keys, c, "right") - first
    for k in range(int(count.max())):
        has = count > k
        i = per[first[has] + k]
        out[has] |= (d[has] >= rep.period_start[i]) & (d[has] <= rep.period_end[i])
    return out
