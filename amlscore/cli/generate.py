"""``amlscore generate --out DIR``: write a synthetic bank in the input data contract.

Writes ``customers``, ``transactions`` and ``reports`` (Parquet or CSV) and, beside them and
outside the contract, ``ground_truth.csv`` (which transactions are laundering, of which typology
and scenario, and whether a report covers them). The same options give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:  # imported by the functions that use them (the synthetic bank imports numpy and pandas)
    from amlscore.synth.bank import SyntheticBank
    from amlscore.synth.config import SynthConfig


def generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write (absent, empty, or a data set written before).",
                                      show_default=False)],
    customers: Annotated[int, typer.Option("--customers", help="Number of customers (at least 200).")] = 2000,
    days: Annotated[int, typer.Option("--days", help="Days of transactions (30 to 1098).")] = 365,
    seed: Annotated[int, typer.Option("--seed", help="Random seed; the same seed gives identical files.")] = 42,
    fmt: Annotated[str, typer.Option("--format", help="File format of the tables: parquet or csv.")] = "parquet",
    start: Annotated[str, typer.Option("--start", help="First day of the window, YYYY-MM-DD (bank-local date).")] = "2025-01-01",
    variant: Annotated[str, typer.Option("--variant", help="World variant: default, shifted_normal, shifted_typologies, "
                                         "hard, or a YAML file (docs/synthetic-bank.md).")] = "default",
) -> None:
    """Generate a synthetic bank with injected, labelled money-laundering typologies."""
    config = build_config(customers=customers, days=days, seed=seed, fmt=fmt, start=start, variant=variant)
    console = Console(highlight=False, soft_wrap=True)
    bank = _generate_with_progress(config, out, fmt)
    _print_summary(console, bank, out)


def build_config(*, customers: int, days: int, seed: int, fmt: str, start: str, variant: str = "default") -> SynthConfig:
    """Check the command-line values and build the configuration.

    Raises
    ------
    AmlError
        Naming the option, what it accepts and what it got.
    """
    from amlscore.contract.errors import AmlError
    from amlscore.synth.config import OUTPUT_FORMATS, SynthConfig, parse_start
    from amlscore.synth.variant import load_variant

    if fmt not in OUTPUT_FORMATS:
        raise AmlError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}. Got {fmt!r} instead.")
    start_date: dt.date = parse_start(start)
    world = load_variant(variant)
    try:
        return SynthConfig(customers=customers, days=days, seed=seed, start=start_date, variant=world)
    except AmlError as exc:
        # Say it in the words of the command line: --customers rather than the 'customers' parameter.
        message = str(exc)
        for name in ("customers", "days", "seed", "start"):
            message = message.replace(f"The '{name}' parameter of SynthConfig", f"--{name}")
        raise AmlError(message) from None


def _generate_with_progress(config: SynthConfig, out: Path, fmt: str) -> SyntheticBank:
    from amlscore.synth.bank import STEPS, generate_bank, write_bank

    progress = Progress(TextColumn("[bold]generate"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[step]}"), TimeElapsedColumn(), console=Console(stderr=True))
    with progress:
        task = progress.add_task("generate", total=len(STEPS) + 1, step="")

        def tick(step: str) -> None:
            progress.update(task, advance=1, step=step)

        bank = generate_bank(config, tick)
        progress.update(task, step="validating and writing")
        write_bank(bank, out, fmt)
        progress.update(task, advance=1, step="written")
    return bank


def _print_summary(console: Console, bank: SyntheticBank, out: Path) -> None:
    s = bank.summary()
    console.print(
        f"Wrote {s['customers']:,} customers, {s['transactions']:,} transactions and {s['reports']:,} reports "
        f"({s['suspicious_reports']:,} suspicious, {s['not_suspicious_reports']:,} not suspicious, "
        f"{s['period_reports']:,} by period) to {out}, with ground_truth.csv."
    )
    console.print(f"Laundering: {s['laundering_transactions']:,} transactions ({s['laundering_rate']:.2%}).")
    table = Table(title="Injected typologies", title_justify="left", show_edge=False)
    for column in ("typology", "scenarios", "customers", "transactions", "reported"):
        table.add_column(column, justify="left" if column == "typology" else "right")
    for name, row in s["per_typology"].items():  # type: ignore[union-attr]
        table.add_row(name, f"{row['scenarios']}", f"{row['customers']:,}", f"{row['transactions']:,}",
                      f"{row['reported_transactions']:,}")
    console.print(table)
