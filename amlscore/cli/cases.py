"""``amlscore cases ingest | queue | export | purge | verify``: the casework store on the command line.

The pages (``amlscore serve``, ``/cases``) are where people work; these commands feed the queue and
keep the store: ingest alerts from the audit log, batch scoring and the large-value reports, print
the queue, write a case's filing, purge what is past retention, and verify the action chain.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from amlscore.cli.options import aml_error, parse_date

cases_app = typer.Typer(help="Compliance casework: the alert queue, cases, filings and retention.", no_args_is_help=True)
_STATE = typer.Option("--state", help="State folder of the service (default: $AML_STATE_DIR or ./state).")
_CONFIG = typer.Option("--config", help="Casework configuration YAML (default: $AML_CASEWORK_CONFIG or the packaged one).")


def _work(state: Path | None, config: Path | None):  # noqa: ANN202 - imported lazily
    from amlscore.casework.config import load_casework_config
    from amlscore.casework.store import CaseStore
    from amlscore.casework.workflow import Casework
    from amlscore.settings import default_state_dir

    folder = state if state is not None else default_state_dir()
    return Casework(CaseStore.in_state(folder), load_casework_config(config)), folder


@cases_app.command("ingest")
def ingest(
    data: Annotated[Optional[Path], typer.Option("--data", help="Data folder (customers' facts; transactions of batch alerts).")] = None,
    scores: Annotated[Optional[Path], typer.Option("--scores", help="Batch scoring output (amlscore score --out FILE).")] = None,
    large_value: Annotated[Optional[Path], typer.Option("--large-value", help="large_value_reports.csv of amlscore rate.")] = None,
    audit: Annotated[bool, typer.Option("--audit/--no-audit", help="Read the new alerted decisions of <state>/audit.sqlite.")] = True,
    state: Annotated[Optional[Path], _STATE] = None,
    config: Annotated[Optional[Path], _CONFIG] = None,
) -> None:
    """Put new alerts in the queue (grouped into cases per customer) without scoring anything again."""
    from amlscore.casework.ingest import ingest_audit, ingest_batch, ingest_large_value

    work, folder = _work(state, config)
    console = Console(highlight=False)
    customers = transactions = None
    if data is not None:
        from amlscore.contract import load_dataset

        dataset = load_dataset(data, require_reports=False)
        customers, transactions = dataset.customers, dataset.transactions
    elif scores is not None:
        raise aml_error("--scores needs --data: the folder that was scored (batch alerts are joined to its transactions).")
    try:
        if audit and (folder / "audit.sqlite").is_file():
            added, opened = ingest_audit(work, folder / "audit.sqlite", customers)
            console.print(f"audit log: {added:,} new alert(s), {opened:,} new case(s)")
        if scores is not None:
            added, opened = ingest_batch(work, scores, transactions, customers)
            console.print(f"{scores.name}: {added:,} new alert(s), {opened:,} new case(s)")
        if large_value is not None:
            n = ingest_large_value(work, large_value, transactions)
            console.print(f"{large_value.name}: {n:,} large-value transaction(s) to report")
    finally:
        work.store.close()


@cases_app.command("queue")
def queue(
    overdue: Annotated[bool, typer.Option("--overdue", help="Only cases past their deadline.")] = False,
    sort: Annotated[str, typer.Option("--sort", help="deadline (then score) or score (then deadline).")] = "deadline",
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 30,
    state: Annotated[Optional[Path], _STATE] = None,
    config: Annotated[Optional[Path], _CONFIG] = None,
) -> None:
    """Print the queue: active cases by deadline and score, overdue ones marked."""
    from amlscore.casework.deadlines import today_bank
    from amlscore.casework.store import QueueFilter

    if sort not in ("deadline", "score"):
        raise aml_error(f"--sort must be one of deadline, score. Got {sort!r} instead.")
    work, _ = _work(state, config)
    today = today_bank()
    try:
        rows, total = work.store.queue(QueueFilter(overdue_only=overdue, sort=sort, limit=limit), today)
        counts = work.store.counts(today)
    finally:
        work.store.close()
    table = Table(title=f"{total:,} case(s); overdue {counts['overdue']:,}; today {today}", title_justify="left",
                  show_edge=False)
    for col in ("case", "customer", "status", "deadline", "score", "alerts", "assignee"):
        table.add_column(col)
    for r in rows:
        late = r["due_date"] is not None and r["due_date"] < today.isoformat()
        table.add_row(r["case_id"], r["customer_id"], r["status"], f"{r['due_date'] or ''}{' OVERDUE' if late else ''}",
                      f"{r['max_score']:.1f}", str(r["n_alerts"]), r["assignee"] or "")
    Console(highlight=False).print(table)


@cases_app.command("export")
def export(
    case_id: Annotated[str, typer.Argument(help="The case whose filing to write.")],
    out: Annotated[Path, typer.Option("--out", help="XML file to write.")],
    state: Annotated[Optional[Path], _STATE] = None,
    config: Annotated[Optional[Path], _CONFIG] = None,
) -> None:
    """Write the frozen suspicious-transaction report (XML, validated against str.xsd) of an approved case."""
    from amlscore.casework.filings import validate

    work, _ = _work(state, config)
    try:
        filing = work.store.filing(case_id)
    finally:
        work.store.close()
    if filing is None:
        raise aml_error(f"Case {case_id} has no filing: only an approved suspicious decision has one.")
    xml = bytes(filing["xml"])
    validate(xml, filing["kind"])
    out.write_bytes(xml)
    Console(highlight=False).print(f"wrote {out} ({filing['filing_id']}, sha256 {filing['sha256']})")


@cases_app.command("purge")
def purge(
    by: Annotated[str, typer.Option("--by", help="The admin (a named person) who orders the purge.")],
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Day the retention is counted back from (default: today).")] = None,
    state: Annotated[Optional[Path], _STATE] = None,
    config: Annotated[Optional[Path], _CONFIG] = None,
) -> None:
    """Remove cases, actions and audit records past the retention, behind signed cuts; refuses while an old case is open."""
    import datetime as dt

    from amlscore.casework.retention import purge as run_purge
    from amlscore.core.identity import UserStore
    from amlscore.core.retention import key_path, load_key

    work, folder = _work(state, config)
    users = UserStore.in_state(folder)
    try:
        person = users.person(by)
        if person is None or person.role != "admin":
            raise aml_error(f"--by must name an active admin; {by!r} is not one.")
        day = parse_date(as_of, "--as-of") or dt.date.today()
        key = load_key(key_path(folder), create=True)
        assert key is not None
        report = run_purge(work.store, retention_years=work.config.retention_years, as_of=day, key=key,
                           made_by=person.key_id, audit_db=folder / "audit.sqlite")
    finally:
        work.store.close()
        users.close()
    console = Console(highlight=False)
    console.print(f"cutoff {report.cutoff[:10]} ({work.config.retention_years} years before {day}): removed "
                  f"{report.cases:,} case(s), {report.alerts:,} alert(s), {report.actions:,} action(s), "
                  f"{report.large_value:,} large-value row(s)")
    if report.audit is not None:
        removed = ", ".join(f"{t} {n:,}" for t, n in report.audit.removed.items()) or "nothing"
        console.print(f"audit log: removed {removed}; signed cuts: {len(report.audit.cuts)}")


@cases_app.command("verify")
def verify(state: Annotated[Optional[Path], _STATE] = None, config: Annotated[Optional[Path], _CONFIG] = None) -> None:
    """Check the chain of case actions (from the newest signed retention cut); exit 1 when broken."""
    from amlscore.casework.retention import verify_actions
    from amlscore.core.retention import key_path

    work, folder = _work(state, config)
    try:
        report = verify_actions(work.store, key_path(folder))
    finally:
        work.store.close()
    console = Console(highlight=False)
    if report.broken:
        console.print(f"[bold red]Broken:[/] {report.broken}.")
        raise typer.Exit(code=1)
    console.print(f"[green]Intact:[/] {report.rows:,} action(s) chain"
                  f"{f' from the signed cut after {report.removed:,} purged' if report.removed else ' from the first'}.")
