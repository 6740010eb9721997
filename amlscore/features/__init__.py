"""Behavioural features: one definition (the catalogue), an offline and an online path.

Compiled kernels are cached on disk by numba (``cache=True``), which re-checks only the source file
of each kernel. The kernels bake in constants imported from other modules (column positions from
the catalogue, codes from the contract), so an edit there would leave stale machine code that
computes wrong features without any error. :func:`_drop_stale_kernel_cache` therefore fingerprints
every module the kernels depend on and clears this package's numba cache when it changed.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
# modules whose constants are compiled into the kernels: this package and the contract's schema
_KERNEL_INPUTS = (*sorted(_PACKAGE.glob("*.py")), _PACKAGE.parent / "contract" / "schema.py")
_STAMP = "kernel-inputs.sha256"


def _kernel_inputs_digest(inputs: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for path in inputs:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _drop_stale_kernel_cache(package: Path = _PACKAGE, inputs: tuple[Path, ...] = _KERNEL_INPUTS) -> None:
    cache = package / "__pycache__"
    try:
        digest = _kernel_inputs_digest(inputs)
        stamp = cache / _STAMP
        if stamp.is_file() and stamp.read_text(encoding="ascii").strip() == digest:
            return
        for entry in cache.glob("*.nb[ic]"):  # numba's index (.nbi) and compiled (.nbc) files
            entry.unlink(missing_ok=True)
        cache.mkdir(exist_ok=True)
        tmp = cache / f"{_STAMP}.{os.getpid()}.partial"
        tmp.write_text(digest + "\n", encoding="ascii")
        tmp.replace(stamp)
    except OSError:
        pass  # a read-only installation: numba then caches elsewhere or compiles in memory


_drop_stale_kernel_cache()
