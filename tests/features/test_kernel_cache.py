"""numba's disk cache is dropped when a module whose constants the kernels compile in changes."""

from __future__ import annotations

from amlscore.features import _drop_stale_kernel_cache


def test_kernel_cache_is_cleared_when_a_kernel_input_changes_and_kept_otherwise(tmp_path):
    package = tmp_path / "features"
    (package / "__pycache__").mkdir(parents=True)
    catalogue = package / "catalogue.py"
    catalogue.write_text("FEATURES = ('a', 'b')\n")
    compiled = [package / "__pycache__" / "finalize.rows-10.py311.nbi", package / "__pycache__" / "finalize.rows-10.py311.1.nbc"]
    bytecode = package / "__pycache__" / "catalogue.cpython-311.pyc"

    def build() -> None:
        for f in (*compiled, bytecode):
            f.write_bytes(b"machine code")

    build()
    _drop_stale_kernel_cache(package, (catalogue,))  # first run: no stamp, nothing known about the cache
    assert not any(f.exists() for f in compiled) and bytecode.exists()
    build()
    _drop_stale_kernel_cache(package, (catalogue,))  # nothing changed: the compiled kernels are kept
    assert all(f.exists() for f in compiled)
    catalogue.write_text("FEATURES = ('b', 'a')\n")  # column positions moved: compiled kernels are stale
    _drop_stale_kernel_cache(package, (catalogue,))
    assert not any(f.exists() for f in compiled) and bytecode.exists()
