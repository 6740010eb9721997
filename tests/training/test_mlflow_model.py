"""The registered MLflow model carries the amlscore package: it loads without the source tree, and
``mlflow models serve`` answers with scores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from amlscore.training import tracking
from servers import free_port

# Loads the registered model in a fresh interpreter whose sys.path holds no folder with an amlscore package
# (neither the source tree nor an editable install): only the model's own code/ can provide it.
_LOAD = """
import json, sys
from pathlib import Path
sys.path = [p for p in sys.path if not (Path(p or ".") / "amlscore").is_dir()]
import mlflow, pandas as pd
model = mlflow.pyfunc.load_model(sys.argv[1])
rows = pd.DataFrame(json.loads(sys.argv[2]))
out = model.predict(rows)
import amlscore
print(json.dumps({"amlscore": amlscore.__file__, "scores": out["suspicion_score"].tolist(),
                  "sys_path_has_code": any(p.endswith("code") for p in sys.path)}))
"""


def _example(model_set) -> list[dict]:
    """Two feature rows (every feature 0.1, then 0.9): any values in range score."""
    return [{n: q for n in model_set.feature_names} for q in (0.1, 0.9)]


def test_the_logged_model_carries_the_package(trained, tracking_uri, tmp_path):
    import mlflow

    uri = f"models:/{tracking.REGISTERED_MODEL_NAME}/{trained.model_version}"
    download = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(tmp_path / "m")))
    assert (download / "code" / "amlscore" / "models" / "model_set.py").is_file()
    assert (download / "code" / "amlscore" / "models" / "config" / "rules.yaml").is_file()
    # no Python byte code travels with it (numba's kernel cache may: MLflow loads the logged model to check
    # its input example, and in some test orders that compiles kernels into the copy; numba checks each
    # cached kernel against its source and amlscore.features drops a stale cache)
    assert not list((download / "code").rglob("*.pyc"))
    rows = _example(trained.model_set)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = env["MLFLOW_REGISTRY_URI"] = tracking_uri
    done = subprocess.run([sys.executable, "-c", _LOAD, uri, json.dumps(rows)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    package = Path(answer["amlscore"]).parent
    assert package.parent.name == "code" and (package.parent.parent / "MLmodel").is_file()  # the model's own copy
    expected = trained.model_set.score_frame(pd.DataFrame(rows))["suspicion_score"].tolist()
    assert answer["scores"] == pytest.approx(expected)


@pytest.mark.slow
def test_mlflow_models_serve_answers(trained, tracking_uri, tmp_path):
    tracking.set_alias(tracking.CHAMPION, trained.model_version)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MLFLOW_TRACKING_URI"] = env["MLFLOW_REGISTRY_URI"] = tracking_uri
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"  # as in an activated venv: uvicorn
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m",
                             f"models:/{tracking.REGISTERED_MODEL_NAME}@champion", "--env-manager", "local",
                             "-h", "127.0.0.1", "-p", str(port), "-w", "1"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
            try:
                if httpx.get(f"{base}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "mlflow models serve did not come up: " + \
                (tmp_path / "serve.log").read_text()[-3000:]
            time.sleep(1)
        rows = _example(trained.model_set)
        body = {"dataframe_split": {"columns": list(trained.model_set.feature_names),
                                    "data": [[r[c] for c in trained.model_set.feature_names] for r in rows]}}
        response = httpx.post(f"{base}/invocations", json=body, timeout=60)
        assert response.status_code == 200, response.text
        predictions = response.json()["predictions"]
        assert len(predictions) == 2
        expected = trained.model_set.score_frame(pd.DataFrame(rows))
        assert [p["suspicion_score"] for p in predictions] == pytest.approx(expected["suspicion_score"].tolist())
        assert [p["alert"] for p in predictions] == expected["alert"].tolist()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def test_batch_scoring_keeps_per_day_distributions(trained, bank_dir, tmp_path):
    from typer.testing import CliRunner

    from amlscore.cli import app

    out = tmp_path / "scores.parquet"
    result = CliRunner().invoke(app, ["score", "--data", str(bank_dir), "--out", str(out), "--version",
                                      str(trained.model_version), "--reasons", "none"])
    assert result.exit_code == 0, result.output
    files = sorted((tmp_path / "scores.parquet.daily").glob("*.json"))
    rows = sum(json.loads(f.read_text())["rows"] for f in files)
    assert rows == len(pd.read_parquet(out)) and len(files) > 100
