"""What a fresh ``amlscore`` process imports (issue 7: a case report in under 5 seconds, start-up included).

``amlscore --help`` imports no data or model library; ``amlscore report case`` of a prepared model set
imports neither MLflow nor the estimators' libraries (scikit-learn, SciPy, LightGBM, numba).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pandas", "numpy", "pyarrow", "matplotlib", "sklearn", "scipy", "lightgbm", "numba", "mlflow", "pydantic")
MODEL_LIBS = ("sklearn", "scipy", "lightgbm", "numba", "mlflow", "bentoml")


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _imported(names: tuple[str, ...]) -> str:
    return f"print('IMPORTED=' + ','.join(m for m in {names!r} if m in sys.modules))"


def test_the_command_line_starts_without_the_libraries_of_the_stages():
    out = _python("import sys\nimport amlscore.cli\n" + _imported(HEAVY))
    assert out.strip() == "IMPORTED=", out
    out = _python("import sys\nfrom amlscore.cli import main\nsys.argv = ['amlscore', '--help']\n"
                  "try:\n    main()\nexcept SystemExit:\n    pass\n" + _imported(HEAVY))
    assert "report" in out and out.strip().endswith("IMPORTED="), out


def test_a_case_report_of_a_prepared_model_set_loads_neither_mlflow_nor_the_estimators(tmp_path, bank_dir, store, model_dir):
    from amlscore.cli.report import report_app
    from amlscore.reports.model_cache import model_key
    from amlscore.reports.sources import load_model_dir

    cache = tmp_path / "store"
    shutil.copytree(store.root, cache, ignore=shutil.ignore_patterns("scores-*", "explain-*"))
    folder = model_dir / "artifacts" / "model_set"
    r = CliRunner().invoke(report_app, ["prepare", "--data", str(bank_dir), "--cache", str(cache), "--model-dir", str(folder)])
    assert r.exit_code == 0, r.output
    key = model_key(load_model_dir(folder))
    assert (cache / f"scores-{key}.parquet").is_file() and (cache / f"explain-{key}.sqlite").is_file()
    import pandas as pd

    scores = pd.read_parquet(cache / f"scores-{key}.parquet")
    txn = str(scores.loc[scores["alert"], "txn_id"].iat[0])
    out = tmp_path / "case.html"
    args = ["amlscore", "report", "case", "--txn", txn, "--data", str(bank_dir), "--cache", str(cache),
            "--model-dir", str(folder), "--out", str(out)]
    stdout = _python(f"import sys\nfrom amlscore.cli import run\nassert run({args[1:]!r}) == 0\n" + _imported(MODEL_LIBS))
    assert stdout.strip().endswith("IMPORTED="), stdout
    html = out.read_text(encoding="utf-8")
    assert txn in html and 'class="chart chart-waterfall"' in html
