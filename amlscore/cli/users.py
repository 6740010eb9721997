"""``amlscore users add | revoke | list``: the named people of the service and the casework pages.

Passwords are stored as scrypt hashes with a per-person salt (:mod:`amlscore.core.identity`); a
generated password is printed once. People are revoked, never deleted: their name stays in every
record they signed.
"""

from __future__ import annotations

import getpass
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

users_app = typer.Typer(help="Named people (analysts, reviewers, admins, channel systems): add, revoke, list.",
                        no_args_is_help=True)
_STATE = typer.Option("--state", help="State folder of the service (default: $AML_STATE_DIR or ./state).")


def _store(state: Path | None):  # noqa: ANN202 - the core type is imported lazily
    from amlscore.core.identity import UserStore
    from amlscore.settings import default_state_dir

    return UserStore.in_state(state if state is not None else default_state_dir())


def _by() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # pragma: no cover - no login name in some containers
        return "cli"


@users_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="Sign-in name: 2-32 lower-case letters, digits or _.-")],
    role: Annotated[str, typer.Option("--role", help="channel, analyst, reviewer or admin.")],
    display_name: Annotated[Optional[str], typer.Option("--display-name", help="Name shown on the pages.")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input instead of generating one.")] = False,
    state: Annotated[Optional[Path], _STATE] = None,
) -> None:
    """Create a person; prints the generated password once."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    store = _store(state)
    try:
        pw = store.add(name, role, by=_by(), password=password, display_name=display_name)
    finally:
        store.close()
    console = Console(highlight=False)
    console.print(f"Created {name} ({role}).")
    if not password_stdin:
        console.print(f"Password, shown this once: {pw}")


@users_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The person to revoke.")],
    state: Annotated[Optional[Path], _STATE] = None,
) -> None:
    """Revoke a person's credential from now on (their records keep their name)."""
    store = _store(state)
    try:
        store.revoke(name, by=_by())
    finally:
        store.close()
    Console(highlight=False).print(f"Revoked {name}.")


@users_app.command("list")
def list_users(state: Annotated[Optional[Path], _STATE] = None) -> None:
    """Every person, active and revoked."""
    store = _store(state)
    try:
        rows = store.list()
    finally:
        store.close()
    table = Table(show_edge=False)
    for col in ("name", "role", "display name", "created", "by", "revoked"):
        table.add_column(col)
    for r in rows:
        table.add_row(r.name, r.role, r.display_name, r.created_at[:19], r.created_by,
                      f"{r.revoked_at[:19]} by {r.revoked_by}" if r.revoked_at else "")
    Console(highlight=False).print(table)
