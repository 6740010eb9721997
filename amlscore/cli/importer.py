"""``amlscore import FORMAT SRC --out DIR``: convert a public AML data set into the contract.

Formats: ``amlworld`` (IBM AMLworld ``*_Trans.csv``), ``amlsim`` (an IBM AMLSim run's folder) and
``saml-d`` (the SAML-D CSV). Writes customers, transactions and reports plus ``ground_truth.csv``,
all or nothing (docs/adapters.md has the mapping tables and the report policy).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from amlscore.cli.options import parse_date


def import_command(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="amlworld, amlsim or saml-d.", show_default=False)],
    src: Annotated[Path, typer.Argument(metavar="SRC", help="AMLworld: *_Trans.csv. AMLSim: the run's folder. SAML-D: the CSV.",
                                        show_default=False)],
    out: Annotated[Path, typer.Option("--out", help="Folder to write (absent, empty, or a data set written before).",
                                      show_default=False)],
    seed: Annotated[int, typer.Option("--seed", help="Seed of the report policy; the same seed gives identical files.")] = 42,
    bank: Annotated[str, typer.Option("--bank", help="AMLworld: the bank whose accounts are the customers, or 'all'.")] = "all",
    patterns: Annotated[Path | None, typer.Option("--patterns", help="AMLworld: *_Patterns.txt for typology names.",
                                                  show_default=False)] = None,
    start: Annotated[str | None, typer.Option("--start", help="AMLSim: date of step 0, YYYY-MM-DD (default 2017-01-01).",
                                              show_default=False)] = None,
    step: Annotated[str, typer.Option("--step", help="AMLSim: one simulation step is a 'day' or an 'hour'.")] = "day",
    out_format: Annotated[str, typer.Option("--format", help="File format of the tables: parquet or csv.")] = "parquet",
) -> None:
    """Convert a public AML data set (AMLworld, AMLSim, SAML-D) into a contract folder with ground_truth.csv."""
    from amlscore.adapters import import_data

    summary = import_data(fmt, src, out, seed=seed, bank=bank, patterns=patterns, start=parse_date(start, "--start"), step=step,
                          out_format=out_format)
    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"Read {summary.source_rows:,} source rows; wrote {summary.customers:,} customers, "
        f"{summary.transactions:,} transactions ({summary.laundering_transactions:,} laundering) and "
        f"{summary.reports:,} reports ({summary.suspicious_reports:,} suspicious, "
        f"{summary.not_suspicious_reports:,} not suspicious, {summary.period_reports:,} by period) to {summary.out}, "
        "with ground_truth.csv."
    )
    for note in summary.notes:
        console.print(note)


