"""The installed ``amlscore`` console script's exit status, run for real in a subprocess.

typer's CliRunner calls the app in standalone mode, so it cannot see what ``amlscore.cli.main`` does with
the status; these tests run the script (or ``python -m amlscore.cli`` when the script is not installed
beside the interpreter) with this tree first on PYTHONPATH, once per failure path.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from contract_data import Tables

_ROOT = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("amlscore")


def _command() -> list[str]:
    return [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "amlscore.cli"]


def amlscore(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the command as a user would and return its status and output."""
    full_env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")]),
                **(env or {})}
    done = subprocess.run([*_command(), *args], cwd=cwd, env=full_env, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _truncate_last_line(folder: Path) -> None:
    path = folder / "transactions.csv"
    path.write_bytes(path.read_bytes()[:-30])


def _encode_gbk(folder: Path) -> None:
    path = folder / "customers.csv"
    path.write_bytes(path.read_text(encoding="utf-8").replace("salaried", "职员").encode("gbk"))


def _empty_transactions(folder: Path) -> None:
    (folder / "transactions.csv").write_bytes(b"")


@pytest.mark.parametrize("breakage", [_truncate_last_line, _encode_gbk, _empty_transactions],
                         ids=["truncated-last-line", "gbk-encoded", "zero-byte-transactions"])
def test_validate_exits_1_on_data_that_breaks_the_contract(csv_folder: Callable[[Tables], Path], tables: Tables,
                                                            breakage: Callable[[Path], None], tmp_path: Path) -> None:
    folder = csv_folder(tables)
    breakage(folder)
    done = amlscore("validate", str(folder), cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "The data does not meet the contract." in done.stdout


def test_validate_exits_0_on_good_data(csv_folder: Callable[[Tables], Path], tables: Tables, tmp_path: Path) -> None:
    done = amlscore("validate", str(csv_folder(tables)), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "meets the data contract" in done.stdout


def test_missing_data_folder_exits_2(tmp_path: Path) -> None:
    done = amlscore("validate", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert done.returncode == 2
    assert "does not exist" in done.stderr


@pytest.mark.parametrize("args", [["validate", "--max-errors", "many", "."], ["no-such-command"], [],
                                  ["validate", "--no-such-option", "."]],
                         ids=["bad-option-value", "unknown-command", "no-arguments", "unknown-option"])
def test_bad_options_exit_2(args: list[str], tmp_path: Path) -> None:
    done = amlscore(*args, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Usage:" in done.stdout + done.stderr


def test_refused_promotion_exits_1(tmp_path: Path) -> None:
    """The challenger already is the champion: promote refuses and says so, with exit 1."""
    import mlflow

    from amlscore.training.train import REGISTERED_MODEL_NAME

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model(REGISTERED_MODEL_NAME)
    source = tmp_path / "model"
    source.mkdir()
    version = client.create_model_version(REGISTERED_MODEL_NAME, source=str(source)).version
    for alias in ("champion", "challenger"):
        client.set_registered_model_alias(REGISTERED_MODEL_NAME, alias, version)
    done = amlscore("promote", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Not promoted" in done.stdout


def test_promotion_without_a_registry_exits_2(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'empty.db'}"
    done = amlscore("promote", cwd=tmp_path, env={"MLFLOW_TRACKING_URI": uri})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "challenger" in done.stderr


def test_evaluate_without_data_or_protocol_says_what_to_give(tmp_path: Path) -> None:
    done = amlscore("evaluate", cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Give --data DIR" in done.stderr
