"""Atomic folder replacement, shared by the model downloads (:mod:`amlscore.core.registry`) and the report caches."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path


def replace_dir(staging: Path, target: Path) -> None:
    """Put the complete folder ``staging`` in the place of ``target`` (renames: never half of either)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, target)
