"""``amlscore audit verify``: check the audit log's hash chain end to end.

It reads and never writes: every row of ``decisions``, ``explanations``, ``replays`` and ``shadow_scores`` is hashed again
in order, and the tables are compared with the checkpoint file the service writes after each commit
(``<state>/audit.head``), which shows a tail cut off the database. Exit 0 when intact, 1 at the first
broken link (named: table, row and what is wrong), 2 when there is no audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

audit_app = typer.Typer(help="The audit log of the scoring service: verify its hash chain.", no_args_is_help=True)


@audit_app.command("verify")
def verify(
    state: Annotated[Optional[Path], typer.Option("--state", help="State folder of the service (default: $AML_STATE_DIR or ./state).")] = None,
    database_url: Annotated[Optional[str], typer.Option("--database-url", help="PostgreSQL audit log to check instead "
                                                        "(default: $AML_DATABASE_URL when set).")] = None,
) -> None:
    """Check the audit log's hash chain end to end and report the first broken link."""
    from amlscore.contract.errors import AmlError
    from amlscore.core.audit import verify_chain
    from amlscore.settings import path_settings

    settings = path_settings()
    url = database_url or (settings.database_url if state is None else None)
    if url:
        from amlscore.core.audit_pg import _safe, verify_chain_pg

        database: object = _safe(url)
        report = verify_chain_pg(url)
    else:
        folder = state if state is not None else settings.state_dir
        database = folder / "audit.sqlite"
        if not database.is_file():  # type: ignore[attr-defined]
            raise AmlError(f"There is no audit log at {database}. Give the service's state folder with --state DIR.")
        report = verify_chain(database)  # type: ignore[arg-type]
    console = Console(highlight=False, soft_wrap=True)
    table = Table(title=f"Audit log {database}", title_justify="left", show_edge=False)
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("written before chaining", justify="right")
    for name, rows in report.rows.items():
        table.add_row(name, f"{rows:,}", f"{report.unchained[name]:,}")
    console.print(table)
    if report.checkpoint is None and not url:
        console.print("[yellow]warning:[/] no checkpoint file (audit.head): a tail cut off the log would not show.")
    if report.broken is not None:
        where = f"row seq {report.broken.seq} of {report.broken.table}" if report.broken.seq is not None else report.broken.table
        console.print(f"[bold red]Broken:[/] {where}: {report.broken.reason}.", markup=True)
        raise typer.Exit(code=1)
    console.print(f"[green]Intact:[/] the chain holds from the first row to the last"
                  f"{' and matches the checkpoint' if report.checkpoint or url else ''}.")
