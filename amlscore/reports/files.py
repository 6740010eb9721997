"""Small file helpers shared by the report caches: code fingerprints and atomic folder replacement."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import uuid
from pathlib import Path


@functools.lru_cache(maxsize=None)
def package_code_hash(package: str, *extra_files: str) -> str:
    """sha256 of every module of ``package`` (found without importing it) and of ``extra_files``.

    Caches derived by code are keyed by it: changed code may derive other answers.
    """
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    digest = hashlib.sha256()
    for root in roots:
        for path in sorted(Path(root).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    for extra in extra_files:
        digest.update(Path(extra).read_bytes())
    return digest.hexdigest()


def replace_dir(staging: Path, target: Path) -> None:
    """Put the complete folder ``staging`` in the place of ``target`` (renames: never half of either)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
        os.rename(staging, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staging, target)
