"""``amlscore rate``: rate every customer of a data set (PBoC-style weighted rating).

Writes into ``--out``:

* ``ratings.csv``: one row per customer: level, score, element subtotals, overrides, direct-to-lowest
  eligibility and refusals, missing sub-items, next review date, configuration hash;
* ``rating_breakdown.csv``: one row per customer and sub-item: score, weight, contribution, the
  deciding case or value, and the sentence a compliance officer reads (``--lang``);
* ``review_schedule.csv``, ``overdue_reviews.csv``, ``unrated_new_customers.csv``;
* ``large_value_reports.csv``: transactions the large-value reporting rules require;
* ``rating_run.json``: rating date, configuration hash and revision, data fingerprint, counts.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


_console = Console(stderr=True)


def _error(message: str) -> Exception:
    """An :class:`amlscore.contract.errors.AmlError` (imported when needed: the contract package imports pandas)."""
    from amlscore.contract.errors import AmlError

    return AmlError(message)


def _load_dataset(folder: Path) -> Any:
    from amlscore.contract import load_dataset, report_data_warnings

    dataset = load_dataset(folder)
    report_data_warnings(dataset)
    return dataset


def _build_features(dataset: Any, progress) -> Any:  # noqa: ANN001 - callable(stage, fraction)
    """Feature rows of the data set, or None when the feature builder is not available."""
    try:
        from amlscore.features.offline import build_features
    except ImportError:  # pragma: no cover - only before amlscore.features.offline exists
        return None
    return build_features(dataset, progress=progress)


def _default_as_of(transactions, utc_offset_hours: float) -> date:  # noqa: ANN001 - DataFrame
    import pandas as pd

    ts = pd.to_datetime(transactions["timestamp"], utc=True, errors="coerce")
    if ts.notna().any():
        return (ts.max() + pd.Timedelta(hours=utc_offset_hours)).date()
    return date.today()


def rate(
    data: Annotated[Path, typer.Argument(help="Data folder with customers, transactions and reports.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder to write ratings, breakdowns, reviews and reports into.")],
    as_of: Annotated[Optional[datetime], typer.Option("--as-of", formats=["%Y-%m-%d"],
                                                      help="Rating date YYYY-MM-DD (bank clock); default: day of the latest transaction.")] = None,
    lang: Annotated[str, typer.Option("--lang", help="Language of the written explanations: en or zh.")] = "en",
    config: Annotated[Optional[Path], typer.Option("--config", help="Rules configuration YAML; default: the packaged amlscore/models/config/rules.yaml.")] = None,
    previous: Annotated[Optional[Path], typer.Option("--previous", help="An earlier ratings.csv: tells first ratings apart and lists overdue reviews.")] = None,
) -> None:
    """Rate all customers of a data set: levels, breakdowns, review dates and large-value reports."""
    run_rating(data, out, as_of.date() if as_of is not None else None, lang, config, previous)


def run_rating(data: Path, out: Path, as_of: date | None = None, lang: str = "en", config: Path | None = None,
               previous: Path | None = None, console: Console | None = None) -> dict:
    """The work of :func:`rate`; returns the run summary written to ``rating_run.json``."""
    import pandas as pd

    from amlscore.models.rules import (
        breakdown_text,
        customer_behaviour,
        large_value_reports,
        load_rules_config,
        overdue_reviews,
        rate_customers,
        unrated_new_customers,
    )

    console = console or _console
    if lang not in ("en", "zh"):
        raise _error(f"The '--lang' option must be one of en, zh. Got {lang!r} instead.")
    cfg = load_rules_config(config)
    prev = None
    if previous is not None:
        if not Path(previous).is_file():
            raise _error(f"The '--previous' option must be an existing ratings.csv. Got {str(previous)!r} instead.")
        prev = pd.read_csv(previous, dtype={"customer_id": str}, parse_dates=["rated_at", "next_review"])
    dataset = _load_dataset(Path(data))
    day = as_of or _default_as_of(dataset.transactions, cfg.bank.utc_offset_hours)

    columns = (TextColumn("[bold]{task.description:<22}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        t_feat = bar.add_task("features", total=1.0)
        features = _build_features(dataset, lambda stage, frac: bar.update(t_feat, completed=min(float(frac), 1.0)))
        bar.update(t_feat, completed=1.0)
        t_beh = bar.add_task("customer behaviour", total=1)
        if features is None:
            console.print("[yellow]warning:[/] amlscore.features.offline is not available: business sub-items are scored as missing")
            behaviour = None
        else:
            behaviour = customer_behaviour(features, day, cfg, transactions=dataset.transactions)
        bar.update(t_beh, completed=1)
        t_rate = bar.add_task("rating", total=1)

        def on_rating(stage: str, done: int, total: int) -> None:
            bar.update(t_rate, total=total, completed=done)

        result = rate_customers(dataset.customers, dataset.reports, behaviour, cfg, day, previous=prev, progress=on_rating)
        b = result.breakdown
        t_text = bar.add_task("explanations", total=max(len(b), 1))
        chunk = 200_000
        texts = []
        for start in range(0, len(b), chunk):
            part = type(result)(ratings=result.ratings, breakdown=b.iloc[start:start + chunk], config=cfg, as_of=result.as_of)
            texts.append(breakdown_text(part, lang))
            bar.update(t_text, completed=min(start + chunk, len(b)))
        t_write = bar.add_task("writing", total=6)
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        ratings = result.ratings
        ratings.to_csv(out / "ratings.csv", index=False, date_format="%Y-%m-%d")
        bar.advance(t_write)
        bd = b.copy()
        bd["explanation"] = pd.concat(texts) if texts else pd.Series(dtype=object)
        bd.to_csv(out / "rating_breakdown.csv", index=False, float_format="%.6g")
        bar.advance(t_write)
        sched = ratings[["customer_id", "level", "rated_at", "is_first_rating", "review_interval_months", "next_review"]]
        sched.to_csv(out / "review_schedule.csv", index=False, date_format="%Y-%m-%d")
        bar.advance(t_write)
        overdue = overdue_reviews(prev, day, cfg) if prev is not None and len(prev) else pd.DataFrame(
            columns=["customer_id", "level", "rated_at", "next_review", "days_overdue"])
        overdue.to_csv(out / "overdue_reviews.csv", index=False, date_format="%Y-%m-%d")
        bar.advance(t_write)
        history = ratings[["customer_id", "rated_at"]]
        if prev is not None and len(prev):
            history = pd.concat([prev[["customer_id", "rated_at"]], history], ignore_index=True)
        unrated = unrated_new_customers(dataset.customers, history, day, cfg)
        unrated.to_csv(out / "unrated_new_customers.csv", index=False, date_format="%Y-%m-%d")
        bar.advance(t_write)
        lvr = large_value_reports(dataset.transactions, dataset.customers, cfg)
        lvr.to_csv(out / "large_value_reports.csv", index=False)
        bar.advance(t_write)

    name_col = "level_name_zh" if lang == "zh" else "level_name_en"
    counts = ratings.groupby("level_rank")[[name_col, "level"]].first().join(ratings["level_rank"].value_counts().rename("customers"))
    summary = {
        "as_of": day.isoformat(),
        "config_hash": cfg.hash,
        "config_revision": cfg.revision,
        "data": str(data),
        "data_fingerprint": getattr(dataset, "fingerprint", None),
        "customers_rated": int(len(ratings)),
        "levels": {str(r.level): int(r.customers) for r in counts.itertuples()},
        "direct_to_highest": int((ratings["rating_basis"] == "direct_to_highest").sum()),
        "direct_to_lowest": int((ratings["rating_basis"] == "direct_to_lowest").sum()),
        "with_missing_information": int((ratings["n_missing"] > 0).sum()),
        "overdue_reviews": int(len(overdue)),
        "unrated_new_customers": int(len(unrated)),
        "large_value_reports": int(len(lvr)),
        "behaviour": behaviour is not None,
    }
    (out / "rating_run.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    table = Table(title=f"Ratings at {day.isoformat()} (configuration {cfg.short_hash})")
    table.add_column("level")
    table.add_column("customers", justify="right")
    for r in counts.itertuples():
        table.add_row(str(getattr(r, name_col)), f"{r.customers:,}")
    console.print(table)
    console.print(f"wrote {out}: ratings.csv, rating_breakdown.csv, review_schedule.csv, overdue_reviews.csv, "
                  f"unrated_new_customers.csv, large_value_reports.csv, rating_run.json")
    return summary
