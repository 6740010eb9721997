"""Case and portfolio reports: self-contained HTML a compliance officer reads, in English or Chinese.

Public API (imports stay light until a function is called)::

    from amlscore.reports import write_case_report, write_portfolio_report

    write_case_report("case.html", data="data/default", alert="01J...")            # an alert of the audit log
    write_case_report("case.html", data="data/default", customer="C000100042",
                      start="2025-06-01", end="2025-06-30", lang="zh")             # a customer and a period
    write_portfolio_report("portfolio.html", data="data/default")

The pieces, each usable alone: :mod:`amlscore.reports.store` (the data set laid out for fast reads),
:mod:`amlscore.reports.case` (the facts, pure data), :mod:`amlscore.reports.narrative` (the draft STR narrative),
:mod:`amlscore.reports.charts` (inline SVG), :mod:`amlscore.reports.html` (templates), :mod:`amlscore.reports.portfolio`,
:mod:`amlscore.reports.sources` (model registry and audit log), :mod:`amlscore.reports.model_cache` (a model set's scores
and explanations kept in the store), :mod:`amlscore.reports.i18n` (words and formats).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the package stays light to import: pandas and the rest load when a report is made
    from datetime import date

    import pandas as pd

    from amlscore.core.audit import AuditLog
    from amlscore.reports.case_types import CaseFacts, ModelInfo
    from amlscore.reports.portfolio import PortfolioFacts
    from amlscore.reports.store import CaseStore, Progress

    DayLike = date | pd.Timestamp | str  # a bank day: a date, a Timestamp or ISO text ("2025-06-01")

__all__ = ["build_case", "write_case_report", "write_portfolio_report"]


def build_case(data: str | Path, *, alert: str | None = None, customer: str | None = None, start: DayLike | None = None,
               end: DayLike | None = None, txn: str | None = None, lang: str = "en", model: ModelInfo | None = None,
               audit: AuditLog | None = None, store_dir: str | Path | None = None, store: CaseStore | None = None,
               progress: Progress | None = None) -> CaseFacts:
    """Gather the facts of a case (:class:`amlscore.reports.case_types.CaseFacts`).

    Parameters
    ----------
    data : the data folder (its case store is built on first use).
    alert : a request id of the audit log ``audit`` (then ``customer``, ``start``, ``end`` are not given).
    customer, start, end : a customer and a period (bank days, inclusive).
    txn : a transaction id of the data set (an alert of a batch run, :func:`amlscore.reports.alerts.list_alerts`).
    model : :class:`amlscore.reports.case_types.ModelInfo` (None: the rule score alone).
    audit : an opened :class:`amlscore.core.audit.AuditLog` (alert mode).
    store : an opened :class:`amlscore.reports.store.CaseStore` (saves reopening it for many reports).
    """
    from amlscore.reports.case import gather_case
    from amlscore.reports.case_types import CaseError
    from amlscore.reports.sources import audit_record, deferred_explanation
    from amlscore.reports.store import CaseStore

    store = store or CaseStore.open(data, store_dir, progress=progress)
    if alert is not None:
        if customer is not None or start is not None or end is not None:
            raise CaseError("Give either --alert or --customer with --start and --end, not both.")
        if audit is None:
            raise CaseError("--alert needs the audit log (--audit).")
        rec = audit_record(audit, alert)
        expl = None
        if not rec.decision.get("explanation"):
            expl = deferred_explanation(audit, rec.request_id, lang)
        return gather_case(store, record=rec, model=model, explanation=expl, lang=lang)
    if txn is not None:
        if customer is not None or start is not None or end is not None:
            raise CaseError("Give either --txn or --customer with --start and --end, not both.")
        return gather_case(store, txn_id=txn, model=model, lang=lang)
    return gather_case(store, customer_id=customer, start=start, end=end, model=model, lang=lang)


def write_case_report(out: str | Path, data: str | Path, *, narrative_out: str | Path | None = None, **kwargs: Any) -> CaseFacts:
    """Gather a case (see :func:`build_case`), write its HTML report to ``out``; returns the facts."""
    from amlscore.reports.html import render_case
    from amlscore.reports.narrative import draft_narrative

    facts = build_case(data, **kwargs)
    text = draft_narrative(facts)
    html = render_case(facts, narrative=text)
    _write_text(Path(out), html)
    if narrative_out is not None:
        _write_text(Path(narrative_out), text + "\n")
    return facts


def write_portfolio_report(out: str | Path, data: str | Path, *, model: ModelInfo | None = None,
                           audit: AuditLog | None = None, history: pd.DataFrame | None = None, start: DayLike | None = None,
                           end: DayLike | None = None, lang: str = "en", store_dir: str | Path | None = None,
                           store: CaseStore | None = None, progress: Progress | None = None) -> PortfolioFacts:
    """Gather the portfolio facts and write their HTML report to ``out``; returns the facts."""
    from amlscore.reports.html import render_portfolio
    from amlscore.reports.portfolio import gather_portfolio
    from amlscore.reports.store import CaseStore

    store = store or CaseStore.open(data, store_dir, progress=progress)
    facts = gather_portfolio(store, model=model, audit=audit, history=history, start=start, end=end, lang=lang,
                             progress=progress)
    _write_text(Path(out), render_portfolio(facts))
    return facts


def _write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically (a reader never sees half a report)."""
    import os
    import uuid

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
