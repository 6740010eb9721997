"""``amlscore features`` and ``amlscore catalogue``: offline features and their documentation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from amlscore.cli.options import ENGINE_HELP, MASTER_HELP, check_engine
from amlscore.cli.progress import stage_progress


def features(
    data: Annotated[Path, typer.Option("--data", help="Data folder in the contract (customers, transactions, reports).")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write, one feature row per transaction.")],
    params: Annotated[Optional[Path], typer.Option("--params", help="Feature parameters YAML (default: the packaged one).")] = None,
    chunk_rows: Annotated[int, typer.Option("--chunk-rows", min=1000, help="Rows per customer partition (bounds memory).")] = 500_000,
    engine: Annotated[str, typer.Option("--engine", help=ENGINE_HELP)] = "local",
    master: Annotated[Optional[str], typer.Option("--master", help=MASTER_HELP, show_default=False)] = None,
    graph_block_days: Annotated[int, typer.Option("--graph-block-days", min=1, help="With --engine spark: days of history "
                                                  "per graph task (each also replays the 40 days before it).")] = 90,
) -> None:
    """Compute the behavioural features of every transaction (offline path, point in time).

    With --engine spark, OUT is a Parquet folder (part files) instead of one file.
    """
    from amlscore.contract import load_dataset, report_data_warnings
    from amlscore.features.offline import write_features
    from amlscore.features.params import load_feature_params

    check_engine(engine, master)
    console = Console(stderr=True)
    feature_params = load_feature_params(params)
    dataset = load_dataset(data, require_reports=False)
    report_data_warnings(dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if engine == "spark":
        from amlscore.features.spark import command_session, write_features_spark

        with command_session(master) as spark:
            rows = write_features_spark(spark, dataset, out, feature_params, graph_block_days=graph_block_days)
    else:
        with stage_progress("features", console) as report:
            rows = write_features(dataset, out, feature_params, chunk_rows=chunk_rows, progress=report)
    seconds = time.perf_counter() - start
    console.print(f"wrote {rows:,} feature rows to {out} in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} transactions/s); "
                  f"parameters hash {feature_params.hash}")


def catalogue(
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the Markdown here instead of printing it.")] = None,
) -> None:
    """Print (or write) the feature catalogue as Markdown: name, meaning, window, entity, formula."""
    from amlscore.features.docs import render_catalogue_markdown

    text = render_catalogue_markdown()
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text, encoding="utf-8")
        Console(stderr=True).print(f"wrote {out}")
