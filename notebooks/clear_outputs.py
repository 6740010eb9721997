"""Strip outputs, execution counts and run metadata from notebooks, so that only their code is committed.

Usage (what a pre-commit hook runs)::

    .venv/bin/python notebooks/clear_outputs.py                 # every notebooks/*.ipynb, in place
    .venv/bin/python notebooks/clear_outputs.py --check         # exit 1 and list those that are not clean
    .venv/bin/python notebooks/clear_outputs.py a.ipynb b.ipynb

A hook entry for ``.pre-commit-config.yaml``::

    - repo: local
      hooks:
        - id: clear-notebook-outputs
          name: clear notebook outputs
          entry: .venv/bin/python notebooks/clear_outputs.py
          language: system
          files: ^notebooks/.*\\.ipynb$

Same idea as Made-With-ML's ``notebooks/clear_cell_nums.py``, with nbformat so the files stay valid.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
_RUN_METADATA = ("execution", "ExecuteTime", "collapsed", "scrolled")


def clear(nb: nbformat.NotebookNode) -> bool:
    """Clear ``nb`` in place; True when anything changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code":
            if cell.get("outputs"):
                cell.outputs = []
                changed = True
            if cell.get("execution_count") is not None:
                cell.execution_count = None
                changed = True
        for key in _RUN_METADATA:
            if key in cell.get("metadata", {}):
                del cell.metadata[key]
                changed = True
    for key in ("widgets", "papermill"):
        if key in nb.metadata:
            del nb.metadata[key]
            changed = True
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Strip notebook outputs.")
    parser.add_argument("paths", nargs="*", type=Path, help="Notebooks (default: notebooks/*.ipynb).")
    parser.add_argument("--check", action="store_true", help="Only report notebooks with outputs (exit 1).")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(HERE.glob("*.ipynb"))
    dirty = []
    for path in paths:
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        if clear(nb):
            dirty.append(path)
            if not args.check:
                nbformat.write(nb, path)
    for path in dirty:
        print(f"{'has outputs' if args.check else 'cleared'}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
