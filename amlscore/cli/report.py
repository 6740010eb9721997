"""``amlscore report``: case and portfolio reports as self-contained HTML (English or Chinese).

* ``amlscore report case --alert REQUEST_ID --out case.html``: one decision of the scoring service,
  read from its audit log, with the model version that made it;
* ``amlscore report case --customer ID --start DATE --end DATE --out case.html``: a customer over a
  period, scored by the registered model set (``--alias champion``);
* ``amlscore report case --txn TXN_ID --out case.html``: one transaction of the data set (an alert of
  a batch run), explained with the same window as an alert;
* ``amlscore report portfolio --out portfolio.html``: alerts per day, channel and typology,
  customer risk levels, overdue reviews;
* ``amlscore report prepare [--alias champion]``: build the data set's case store now (the first
  report otherwise builds it: validation and features, about half a minute for the default bank)
  and, with ``--alias`` or ``--model-version``, keep that model set's scores of every transaction
  and explanations of every alert in it (:mod:`amlscore.reports.model_cache`), so that a case report of any
  alert neither starts MLflow nor loads the estimators. ``amlscore demo`` runs it for @champion.

Registered in :mod:`amlscore.cli` with ``app.add_typer(report_app, name="report")``. Importing this
module is cheap (typer and rich): pandas, the reports package and the model code are imported by
the command that runs.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from amlscore.cli.options import aml_error

report_app = typer.Typer(name="report", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                         help="Case and portfolio reports (self-contained HTML, English or Chinese).")
_console = Console(stderr=True, highlight=False, soft_wrap=True)

DataOpt = Annotated[Optional[Path], typer.Option("--data", help="Data folder in the contract (default: AML_DATA_DIR or data/default).")]
LangOpt = Annotated[str, typer.Option("--lang", help="Language of the report: en or zh.")]
AliasOpt = Annotated[str, typer.Option("--alias", help="Registry alias of the model set (customer mode, portfolio).")]
VersionOpt = Annotated[Optional[str], typer.Option("--model-version", help="A registry version instead of the alias.")]
ModelDirOpt = Annotated[Optional[Path], typer.Option("--model-dir", help="Load the model set from this folder instead of the registry.")]
NoModelOpt = Annotated[bool, typer.Option("--no-model", help="Use the rule score alone (no model set).")]
UriOpt = Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow tracking/registry URI (default: MLFLOW_TRACKING_URI or sqlite:///mlflow.db).")]
AuditOpt = Annotated[Optional[Path], typer.Option("--audit", help="The service's audit log (default: <AML_STATE_DIR or state>/audit.sqlite).")]
CacheOpt = Annotated[Optional[Path], typer.Option("--cache", help="Folder of the case store (default: <data>/.report-cache/<fingerprint>).")]

def _lang(lang: str) -> str:
    if lang not in ("en", "zh"):
        raise aml_error(f"The '--lang' option must be one of en, zh. Got {lang!r} instead.")
    return lang


def _data(data: Path | None) -> Path:
    from amlscore.reports.sources import default_data_dir

    return Path(data) if data is not None else default_data_dir()


def _progress(what: str = "case store"):  # noqa: ANN202 - a rich progress bar for the long steps
    from amlscore.cli.progress import stage_progress

    return stage_progress(what, _console)


def _open_store(data: Path, cache: Path | None):  # noqa: ANN202
    from amlscore.reports.store import CaseStore, data_fingerprint, default_store_dir

    root = cache if cache is not None else default_store_dir(data, data_fingerprint(data))
    if (root / "store.json").is_file():
        return CaseStore.open(data, cache)
    _console.print(f"building the case store of {data} (validation and features; once per data set) ...")
    with _progress() as report:
        return CaseStore.open(data, cache, progress=report)


def _model(alias: str, version: str | None, model_dir: Path | None, no_model: bool, tracking_uri: str | None,
           required: bool = False):  # noqa: ANN202
    from amlscore.reports.sources import SourceError, load_model_dir, load_registered_model

    if no_model:
        return None
    if model_dir is not None:
        return load_model_dir(model_dir)
    try:
        return load_registered_model(alias=alias, version=version, tracking_uri=tracking_uri)
    except (SourceError, ImportError) as exc:
        if required:
            raise
        _console.print(f"[yellow]warning:[/] {exc}; the report uses the rule score alone (--no-model to silence this)")
        return None


@report_app.command("case")
def case(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")],
    alert: Annotated[Optional[str], typer.Option("--alert", help="Request id of a decision in the audit log.")] = None,
    txn: Annotated[Optional[str], typer.Option("--txn", help="Transaction id of the data set (e.g. an alert of a batch run).")] = None,
    customer: Annotated[Optional[str], typer.Option("--customer", help="Customer id (with --start and --end).")] = None,
    start: Annotated[Optional[datetime], typer.Option("--start", formats=["%Y-%m-%d"], help="First day of the period (bank clock).")] = None,
    end: Annotated[Optional[datetime], typer.Option("--end", formats=["%Y-%m-%d"], help="Last day of the period (bank clock).")] = None,
    data: DataOpt = None,
    lang: LangOpt = "en",
    alias: AliasOpt = "champion",
    model_version: VersionOpt = None,
    model_dir: ModelDirOpt = None,
    no_model: NoModelOpt = False,
    tracking_uri: UriOpt = None,
    audit: AuditOpt = None,
    narrative: Annotated[Optional[Path], typer.Option("--narrative-out", help="Also write the draft STR narrative to this text file.")] = None,
    cache: CacheOpt = None,
) -> None:
    """Write the case report of an alert (--alert), a transaction (--txn) or a customer over a period (--customer --start --end)."""
    from amlscore.reports import write_case_report
    from amlscore.reports.sources import audit_record, open_audit

    started = time.perf_counter()
    lang = _lang(lang)
    if sum(x is not None for x in (alert, txn, customer)) != 1:
        raise aml_error("Give one of --alert REQUEST_ID, --txn TXN_ID, or --customer ID with --start and --end.")
    if customer is not None and (start is None or end is None):
        raise aml_error("--customer needs --start and --end (YYYY-MM-DD).")
    data = _data(data)
    store = _open_store(data, cache)
    log = None
    if alert is not None:
        log = open_audit(audit)
        rec = audit_record(log, alert)
        # the model version that made the decision scores the customer's other transactions
        model = _model(alias, model_version or rec.model_version, model_dir, no_model, tracking_uri)
    else:
        model = _model(alias, model_version, model_dir, no_model, tracking_uri)
    facts = write_case_report(out, data, alert=alert, txn=txn, customer=customer, start=start.date() if start else None,
                              end=end.date() if end else None, lang=lang, model=model, audit=log, store=store,
                              narrative_out=narrative)
    if log is not None:
        log.close()
    s = facts.score
    verdict = f"score {s.suspicion_score:.1f}{' ALERT' if s.alert else ''}" if s is not None else "no score"
    level = facts.rating.level_name if facts.rating is not None else "not rated"
    _console.print(f"wrote {out} ({lang}): customer {facts.customer_id}, {verdict}, risk level {level} "
                   f"in {time.perf_counter() - started:.1f} s")


@report_app.command("portfolio")
def portfolio(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write.")],
    data: DataOpt = None,
    lang: LangOpt = "en",
    start: Annotated[Optional[datetime], typer.Option("--start", formats=["%Y-%m-%d"], help="First day (default: the data's first).")] = None,
    end: Annotated[Optional[datetime], typer.Option("--end", formats=["%Y-%m-%d"], help="Last day and rating date (default: the data's last).")] = None,
    audit: Annotated[Optional[Path], typer.Option("--audit", help="Read the alerts from this audit log instead of batch scoring the data.")] = None,
    history: Annotated[Optional[Path], typer.Option("--history", help="Earlier ratings.csv (amlscore rate) for overdue reviews.")] = None,
    alias: AliasOpt = "champion",
    model_version: VersionOpt = None,
    model_dir: ModelDirOpt = None,
    no_model: NoModelOpt = False,
    tracking_uri: UriOpt = None,
    cache: CacheOpt = None,
) -> None:
    """Write the portfolio report: alerts per day, channel and typology; risk levels; overdue reviews."""
    import pandas as pd

    from amlscore.reports import write_portfolio_report
    from amlscore.reports.sources import open_audit

    started = time.perf_counter()
    lang = _lang(lang)
    data = _data(data)
    store = _open_store(data, cache)
    hist = None
    if history is not None:
        if not history.is_file():
            raise aml_error(f"The '--history' option must be an existing ratings.csv. Got {str(history)!r} instead.")
        hist = pd.read_csv(history, dtype={"customer_id": str})
    log = open_audit(audit) if audit is not None else None
    model = None if log is not None else _model(alias, model_version, model_dir, no_model, tracking_uri)
    with _progress("portfolio") as report:
        facts = write_portfolio_report(out, data, model=model, audit=log, history=hist, lang=lang, store=store,
                                       start=start.date() if start else None, end=end.date() if end else None,
                                       progress=report)
    if log is not None:
        log.close()
    _console.print(f"wrote {out} ({lang}): {facts.n_alerts:,} alerts over {facts.n_scored:,} transactions "
                   f"({facts.source}), {facts.n_overdue:,} reviews overdue, in {time.perf_counter() - started:.1f} s")


@report_app.command("prepare")
def prepare(
    data: DataOpt = None,
    cache: CacheOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build again even when the store is current.")] = False,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Also score every transaction and explain every alert with this registered model set (e.g. champion).")] = None,
    model_version: VersionOpt = None,
    model_dir: ModelDirOpt = None,
    tracking_uri: UriOpt = None,
) -> None:
    """Build the case store of a data set now (validation, features, indexes), so reports start at once;
    with --alias (or --model-version, --model-dir) also that model set's scores and explanations of alerts."""
    from amlscore.reports.store import CaseStore

    data = _data(data)
    started = time.perf_counter()
    with _progress() as report:
        store = CaseStore.open(data, cache, rebuild=rebuild, progress=report)
    _console.print(f"case store of {data} ready at {store.root} ({store.meta['transactions']:,} transactions) "
                   f"in {time.perf_counter() - started:.1f} s")
    if alias is None and model_version is None and model_dir is None:
        return
    from amlscore.reports.model_cache import prepare_model

    t0 = time.perf_counter()
    model = _model(alias or "champion", model_version, model_dir, False, tracking_uri, required=True)
    with _progress("model set") as report:
        done = prepare_model(store, model, progress=report)
    _console.print(f"{model.name} v{model.version}: {done['alerts']:,} alerts scored and explained "
                   f"({done['explained']:,} new explanations) in {time.perf_counter() - t0:.1f} s; "
                   f"kept in {store.root} as {done['key']}")
