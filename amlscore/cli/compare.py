"""``amlscore compare --audit STATE_DIR``: the champion and the shadow (``AML_SHADOW``) side by side.

It reads, never writes: the audit log's decisions and shadow scores of the service's state folder and
the analysts' dispositions beside them (:mod:`amlscore.monitoring.compare`). Prints a table; ``--out``
writes the same figures as JSON. Exit 2 when the folder has no audit log or no shadow scores.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def compare(
    audit: Annotated[Path, typer.Option("--audit", help="State folder of the service (audit.sqlite, feedback.sqlite).", show_default=False)],
    since: Annotated[Optional[str], typer.Option("--since", help="Only decisions made and dispositions received on or after this day YYYY-MM-DD.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Also write the figures to this JSON file.")] = None,
) -> None:
    """Champion vs shadow over the decisions both scored: alerts, overlap, score correlation, precision on dispositions."""
    from amlscore.contract.errors import AmlError  # noqa: PLC0415
    from amlscore.monitoring.compare import compare_shadow  # noqa: PLC0415

    day = None
    if since is not None:
        try:
            day = dt.date.fromisoformat(since)
        except ValueError:
            raise AmlError(f"--since must be a date YYYY-MM-DD. Got {since!r} instead.") from None
    result = compare_shadow(audit, day)
    console = Console(highlight=False, soft_wrap=True)
    period = f" since {result.since}" if result.since else ""
    console.print(f"{result.compared:,} of {result.decisions:,} decisions{period} have a shadow score "
                  f"({result.audit_database}).")
    table = Table(show_edge=False, title_justify="left")
    table.add_column("")
    table.add_column("champion", justify="right")
    table.add_column("shadow", justify="right")
    c, s = result.champion, result.shadow
    rows: list[tuple[str, Any, Any]] = [
        ("model version(s)", ", ".join(c.model_versions) or "-", ", ".join(s.model_versions) or "-"),
        ("alerts", f"{c.alerts:,}", f"{s.alerts:,}"),
        ("alert rate", _pct(c.alert_rate), _pct(s.alert_rate)),
        ("alerts with a disposition", f"{c.dispositions_on_alerts:,}", f"{s.dispositions_on_alerts:,}"),
        ("of which suspicious", f"{c.suspicious_on_alerts:,}", f"{s.suspicious_on_alerts:,}"),
        ("precision", _pct(c.precision), _pct(s.precision)),
    ]
    for name, a, b in rows:
        table.add_row(name, a, b)
    console.print(table)
    console.print(f"alerts: both {result.both_alert:,}, only champion {result.only_champion:,}, only shadow "
                  f"{result.only_shadow:,}, neither {result.neither:,}; score correlation: Pearson "
                  f"{_num(result.pearson)}, Spearman {_num(result.spearman)}; {result.dispositions:,} dispositions.")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
        tmp.replace(out)
        console.print(f"Wrote {out}.")
