"""Small file helpers shared by the report caches: code fingerprints and atomic folder replacement
(:func:`amlscore.storage.dirs.replace_dir`, the one the model downloads use too)."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from amlscore.storage.dirs import replace_dir  # noqa: F401 - the report caches import it from here


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

