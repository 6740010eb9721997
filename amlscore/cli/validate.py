"""``amlscore validate DIR``: check a data folder against the input data contract.

It reads and never writes. Errors, then warnings (legal but suspect data), each shown problem on
its own line with a count, then notes (columns beyond the contract's). Exit 0 when the data meets
the contract (warnings alone do not fail it), 1 when it breaks a rule, or has a warning under
``--strict``, 2 when the folder or a file is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:  # imported when the command runs (the contract package imports pandas)
    from amlscore.contract.load import Dataset
    from amlscore.contract.problems import ProblemKind, ValidationReport


def validate(
    folder: Annotated[
        Path,
        typer.Argument(help="Folder with customers, transactions and reports, each as .csv or .parquet.", show_default=False),
    ],
    max_errors: Annotated[
        int, typer.Option("--max-errors", min=0, help="Show at most this many problems; all of them are counted.")
    ] = 50,
    no_reports: Annotated[
        bool, typer.Option("--no-reports", help="Accept a folder without a reports file (data to score, without labels).")
    ] = False,
    strict: Annotated[
        bool, typer.Option("--strict", help="Count warnings (legal but suspect data) as errors: exit 1 when there is any.")
    ] = False,
) -> None:
    """Check a data folder against the input data contract (docs/data-contract.md)."""
    from amlscore.contract.load import load_dataset
    from amlscore.contract.problems import ContractViolationError

    console = Console(highlight=False, soft_wrap=True)
    try:
        dataset = load_dataset(folder, require_reports=not no_reports, max_errors=max_errors, strict=strict)
    except ContractViolationError as exc:
        _print_problems(console, exc.report)
        raise typer.Exit(code=1) from None
    if dataset.report is not None:
        _print_warnings(console, dataset.report)
        _print_notes(console, dataset.report.notes)
    _print_dataset(console, dataset)


def _print_problems(console: Console, report: ValidationReport) -> None:
    for violation in report.violations:
        console.print(violation.message, markup=False)  # messages quote data, which may hold [brackets]
    if len(report.violations) < report.total:
        console.print(_kinds_table("Problems by kind", report.kinds))
    _print_warnings(console, report)
    _print_notes(console, report.notes)
    console.print(f"[bold red]{report.summary}[/] The data does not meet the contract.")


def _print_warnings(console: Console, report: ValidationReport) -> None:
    """Warnings with the same detail as errors: each shown one on its line, then the count."""
    if not report.warning_total:
        return
    for violation in report.warnings:
        console.print(f"warning: {violation.message}", markup=False)
    if len(report.warnings) < report.warning_total:
        console.print(_kinds_table("Warnings by kind", report.warning_kinds))
    console.print(f"[yellow]{report.warning_summary}[/] Legal but suspect data; --strict counts warnings as errors.")


def _kinds_table(title: str, kinds: list[ProblemKind]) -> Table:
    table = Table(title=title, title_justify="left", show_edge=False)
    table.add_column("file")
    table.add_column("column")
    table.add_column("rule")
    table.add_column("count", justify="right")
    for kind in kinds:
        table.add_row(kind.file, kind.column or "", kind.rule, f"{kind.count:,}")
    return table


def _print_notes(console: Console, notes: list[str]) -> None:
    for note in notes:
        console.print(f"[cyan]note:[/] {escape(note)}")


def _print_dataset(console: Console, dataset: Dataset) -> None:
    table = Table(title=f"{dataset.source}: meets the data contract", title_justify="left", show_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, frame in dataset.tables().items():
        table.add_row(name, f"{len(frame):,}")
    console.print(table)
    ts = dataset.transactions["timestamp"]
    span = f"{ts.iloc[0]:%Y-%m-%d %H:%M:%S} to {ts.iloc[-1]:%Y-%m-%d %H:%M:%S} UTC" if len(ts) else "no transactions"
    console.print(f"transactions: {span}")
    console.print(f"fingerprint:  {dataset.fingerprint}")
