"""The layers of the README as a checked contract (import-linter, ``[tool.importlinter]`` in pyproject.toml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=300)


def _copy_package(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "amlscore", tmp_path / "amlscore", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def test_the_package_keeps_every_import_contract(tmp_path):
    done = _lint(_copy_package(tmp_path))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path):
    tree = _copy_package(tmp_path)
    (tree / "amlscore" / "features" / "_planted.py").write_text("from amlscore.serving import errors  # upward\n")
    done = _lint(tree)
    assert done.returncode != 0
    assert "amlscore.features._planted -> amlscore.serving.errors" in done.stdout, done.stdout[-4000:]


def test_applications_may_not_import_each_other(tmp_path):
    tree = _copy_package(tmp_path)
    (tree / "amlscore" / "reports" / "_planted.py").write_text("import amlscore.serving.errors  # sideways\n")
    done = _lint(tree)
    assert done.returncode != 0 and "amlscore.reports._planted -> amlscore.serving.errors" in done.stdout, done.stdout[-4000:]


def test_features_may_not_import_a_model_library(tmp_path):
    tree = _copy_package(tmp_path)
    (tree / "amlscore" / "features" / "_planted.py").write_text("import lightgbm  # a model library\n")
    done = _lint(tree)
    assert done.returncode != 0 and "amlscore.features._planted -> lightgbm" in done.stdout, done.stdout[-4000:]


def test_an_import_circle_inside_a_package_breaks_the_acyclic_contract(tmp_path):
    tree = _copy_package(tmp_path)
    (tree / "amlscore" / "training" / "split.py").write_text(
        (tree / "amlscore" / "training" / "split.py").read_text() + "\nfrom amlscore.training import train  # a circle\n")
    done = _lint(tree)
    assert done.returncode != 0 and "No import circles between the modules of a package BROKEN" in done.stdout, \
        done.stdout[-4000:]


def test_casework_and_serving_may_not_import_each_other(tmp_path):
    tree = _copy_package(tmp_path)
    (tree / "amlscore" / "casework" / "_planted.py").write_text("import amlscore.serving.auth  # sideways\n")
    (tree / "amlscore" / "serving" / "_planted.py").write_text("import amlscore.casework.web  # sideways\n")
    done = _lint(tree)
    assert done.returncode != 0, done.stdout[-4000:]
    assert "amlscore.casework._planted -> amlscore.serving.auth" in done.stdout, done.stdout[-4000:]
    assert "amlscore.serving._planted -> amlscore.casework.web" in done.stdout, done.stdout[-4000:]
