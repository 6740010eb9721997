"""A result folder written beside its target and moved into place only when complete."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["staged_folder"]


@contextmanager
def staged_folder(target: str | Path) -> Iterator[tuple[Path, Path]]:
    """Yield ``(result, scratch)``: two fresh paths beside ``target`` (``<target>.partial`` and ``<target>.staging``).

    The caller writes the result into ``result`` and anything temporary (e.g. Spark's staged inputs)
    into ``scratch``. When the block ends without an error, ``result`` replaces ``target`` (a folder
    or file there is removed first); either way both paths are gone afterwards, so a failure never
    leaves a partial result at ``target`` and leftovers of an earlier failed run are cleared first.
    """
    target = Path(target)
    result = target.with_name(target.name + ".partial")
    scratch = target.with_name(target.name + ".staging")
    for leftover in (result, scratch):
        shutil.rmtree(leftover, ignore_errors=True)
    try:
        yield result, scratch
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        result.replace(target)
    finally:
        shutil.rmtree(result, ignore_errors=True)
        shutil.rmtree(scratch, ignore_errors=True)
