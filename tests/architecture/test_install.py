"""A non-editable install: one top-level package, and nothing written into it but bytecode caches.

Builds the wheel (``pip wheel``; pip fetches setuptools for the build from the package index, as a
user's ``pip install .`` does), installs it into a bare target folder and runs commands from another
working folder with only that folder ahead of the test environment's libraries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 and "Could not find a version" in done.stderr:
        pytest.skip(f"the build backend could not be fetched from the package index: {done.stderr[-500:]}")
    assert done.returncode == 0, done.stderr[-3000:]
    (found,) = out.glob("amlscore-*.whl")
    return found


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_installs_one_top_level_package_with_its_data(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"amlscore"}, sorted(tops)
    for data in ("amlscore/models/config/rules.yaml", "amlscore/features/config/feature_params.yaml",
                 "amlscore/reports/templates/case.html.j2"):
        assert data in names
    assert not any(n.startswith("tests/") or n.startswith("benchmarks/") for n in names)


def test_commands_of_an_installed_package_write_into_the_working_folder_only(wheel, tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                           "--target", str(site), str(wheel)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    before = _files(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AML_", "MLFLOW_"))}
    env["PYTHONPATH"] = str(site)

    def amlscore(*args: str) -> subprocess.CompletedProcess[str]:
        code = "import sys; from amlscore.cli import main; sys.argv = ['amlscore', *sys.argv[1:]]; main()"
        return subprocess.run([sys.executable, "-c", code, *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)

    where = subprocess.run([sys.executable, "-c", "import amlscore, amlscore.settings as s; print(amlscore.__file__); "
                            "p = s.path_settings(); print(p.state_dir); print(p.tracking_uri)"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr[-2000:]
    package_file, state_dir, uri = where.stdout.split()
    assert Path(package_file).is_relative_to(site)
    assert Path(state_dir) == work.resolve() / "state" and uri == f"sqlite:///{work.resolve() / 'mlflow.db'}"

    for args in (("generate", "--out", "data/small", "--customers", "200", "--days", "30", "--seed", "3"),
                 ("validate", "data/small"), ("rate", "data/small", "--out", "runs/rating")):
        run = amlscore(*args)
        assert run.returncode == 0, (args, run.stdout[-2000:], run.stderr[-3000:])
    assert (work / "data" / "small" / "customers.parquet").is_file()
    assert (work / "runs" / "rating").is_dir()
    assert _files(site) == before, sorted(_files(site) - before)
