"""``amlscore export-model``: copy a registered model set into a folder that a Bento or an image carries.

``bentofile.yaml`` and the ``Dockerfile`` take the model set from ``bundle/model_set`` and serve it with
``AML_MODEL_DIR`` (no MLflow registry at run time). This command fills that folder from the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console


def export_model(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the model set to (replaced if it holds one).")] = Path("bundle/model_set"),
    version: Annotated[Optional[int], typer.Option("--version", help="Registered version number.")] = None,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Registered alias (default: champion).")] = None,
) -> None:
    """Copy a registered model set (default @champion) into a folder for bentoml build or docker build."""
    from amlscore.cli.monitor import load_model  # noqa: PLC0415

    model_set, name = load_model(version, alias, None)
    model_set.save(out)
    Console(highlight=False).print(f"Wrote {name} to {out} (serve it with AML_MODEL_DIR={out}).")
