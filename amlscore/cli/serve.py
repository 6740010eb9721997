"""``amlscore serve``: start the scoring service (BentoML) on a data folder and a registered model set.

It checks the settings, writes development API keys when there is no keys file (printed once),
warms up an empty online feature state from the data folder's history with a progress bar (once;
later starts restore the state in seconds), then replaces itself with
``bentoml serve amlscore.serving.service:AmlScoring`` configured through ``AML_*`` environment variables
(see :mod:`amlscore.serving.config`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

# The folder that holds the ``amlscore`` package: the source tree or site-packages (for bentoml serve's import).
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def _warm_up_days(value: str) -> int | None:
    if value.strip().lower() == "all":
        return None
    try:
        days = int(value)
    except ValueError:
        raise typer.BadParameter(f"must be a whole number of days >= 0 or 'all'; got {value!r}") from None
    if days < 0:
        raise typer.BadParameter(f"must be a whole number of days >= 0 or 'all'; got {value!r}")
    return days


def serve(
    data: Annotated[Path, typer.Option("--data", help="Data folder in the contract (customers; history for the warm-up and ratings).")] = Path("data/default"),
    state: Annotated[Optional[Path], typer.Option("--state", help="State folder: online features, audit log, feedback, API keys (default: $AML_STATE_DIR or ./state).")] = None,
    alias: Annotated[str, typer.Option("--alias", help="Registry alias of the model set to serve.")] = "champion",
    version: Annotated[Optional[str], typer.Option("--version", help="A registry version to serve instead of the alias.")] = None,
    tracking_uri: Annotated[Optional[str], typer.Option("--tracking-uri", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI or sqlite:///<project>/mlflow.db).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on (0.0.0.0 for every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")] = 3000,
    keys: Annotated[Optional[Path], typer.Option("--keys", help="API keys file (YAML/JSON of SHA-256 hashes and roles); default <state>/api_keys.yaml.")] = None,
    warm_up_days: Annotated[str, typer.Option("--warm-up-days", help="Days of history replayed into an empty state: a number, 0 or 'all'.")] = "100",
    audit_sync: Annotated[str, typer.Option("--audit-sync", help="Audit log durability: full (fsync per decision) or normal.")] = "full",
    shadow: Annotated[Optional[str], typer.Option("--shadow", help="A shadow model set scored beside the champion, recorded in the audit log and never returned: an alias (challenger), version:N or off (AML_SHADOW).")] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, max=64, help="Service worker processes; more than 1 needs the shared backends (AML_STATE_URL and AML_DATABASE_URL).")] = 1,
    prepare_only: Annotated[bool, typer.Option("--prepare-only", help="Check settings, write keys and warm up, then exit without serving.")] = False,
) -> None:
    """Start the scoring service: score, batch, explain, customer risk, feedback, health and metadata over HTTP."""
    from amlscore.serving.auth import ensure_keys_file
    from amlscore.serving.state import prepare_state

    console = Console(stderr=True)
    overrides: dict[str, object] = {
        "data_dir": data.resolve(), "model_alias": alias, "model_version": version,
        "warm_up_days": _warm_up_days(warm_up_days), "audit_sync": audit_sync, "workers": workers,
    }
    if state is not None:
        overrides["state_dir"] = state.resolve()
    if tracking_uri:
        overrides["tracking_uri"] = tracking_uri
    if keys is not None:
        overrides["api_keys_file"] = keys.resolve()
    if shadow is not None:
        overrides["shadow"] = None if shadow.strip().lower() == "off" else shadow.strip()
    from amlscore.serving.config import Settings

    settings = Settings.from_env(**overrides)

    # fail here, with one clear message, rather than in a server worker that BentoML restarts in a loop
    from amlscore.core.registry import RegistryLoader

    resolved, _ = RegistryLoader(settings.tracking_uri, settings.model_name, settings.state_dir / "models").resolve(
        settings.model_alias, settings.model_version)
    console.print(f"model: {settings.model_ref} is version {resolved}")

    created = ensure_keys_file(settings.keys_file)
    if created:
        console.print(f"[bold yellow]No API keys file: wrote {settings.keys_file} with one development key per role.[/]")
        console.print("These keys are shown this once (the file keeps only their SHA-256):")
        for role, key in created.items():
            console.print(f"  [bold]{role:<11}[/] {key}", highlight=False)

    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]warm-up"), BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[n]}"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task("warm-up", total=1, n="")

        def report(done: int, total: int) -> None:
            bar.update(task, total=total, completed=done, n=f"{done:,}/{total:,} transactions")

        in_state, replayed = prepare_state(settings, report)
    if replayed:
        console.print(f"warm-up: replayed {replayed:,} transactions of {settings.data_dir} into {settings.state_dir}")
    console.print(f"online state: {in_state:,} transactions; model {settings.model_ref} from {settings.tracking_uri}")
    if prepare_only:
        return

    env = {**os.environ, **settings.to_env()}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PACKAGE_PARENT), env.get("PYTHONPATH", "")) if p)
    # the API and the casework pages (/cases) in one service: composed in amlscore.cli.service_app
    cmd = [sys.executable, "-m", "bentoml", "serve", "amlscore.cli.service_app:AmlScoring", "--host", host, "--port", str(port),
           "--working-dir", str(Path.cwd())]
    console.print(f"starting: {' '.join(cmd[1:])}  (OpenAPI page: http://{host}:{port}/, casework: http://{host}:{port}/cases/)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvpe(cmd[0], cmd, env)  # pragma: no cover - replaces this process
