"""A rich progress bar for long stages, shared by the commands."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


@contextmanager
def stage_progress(description: str, console: Console | None = None) -> Iterator[Callable[[str, float], None]]:
    """Yield ``report(step, fraction)`` that moves one bar from 0 to 1 with the current step's name."""
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(),
                        TextColumn("{task.fields[step]}"), TimeElapsedColumn(),
                        console=console or Console(stderr=True), transient=False)
    with progress:
        task = progress.add_task(description, total=1.0, step="")

        def report(step: str, fraction: float) -> None:
            progress.update(task, completed=min(max(fraction, 0.0), 1.0), step=step)

        yield report
        progress.update(task, completed=1.0)
