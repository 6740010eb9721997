"""``amlscore generate`` writes the contract files and the ground truth, and refuses bad values."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.contract.errors import AmlError
from amlscore.contract.load import load_dataset
from amlscore.synth.bank import GROUND_TRUTH_COLUMNS

ARGS = ["--customers", "300", "--days", "60", "--seed", "3"]


def test_generate_writes_the_tables_and_ground_truth(tmp_path: Path) -> None:
    out = tmp_path / "bank"
    result = CliRunner().invoke(app, ["generate", "--out", str(out), *ARGS, "--format", "csv"])
    assert result.exit_code == 0, result.output
    for name in ("customers.csv", "transactions.csv", "reports.csv", "ground_truth.csv"):
        assert (out / name).is_file(), name
    data = load_dataset(out)
    gt = pd.read_csv(out / "ground_truth.csv")
    assert tuple(gt.columns) == GROUND_TRUTH_COLUMNS
    assert gt["txn_id"].isin(data.transactions["txn_id"]).all()
    assert set(gt["reported"].unique()) <= {True, False}
    assert "Laundering:" in result.output


def test_generate_is_byte_identical_for_a_seed(tmp_path: Path) -> None:
    runner = CliRunner()
    for name in ("a", "b"):
        result = runner.invoke(app, ["generate", "--out", str(tmp_path / name), *ARGS])
        assert result.exit_code == 0, result.output
    for file in ("customers.parquet", "transactions.parquet", "reports.parquet", "ground_truth.csv"):
        assert (tmp_path / "a" / file).read_bytes() == (tmp_path / "b" / file).read_bytes(), file
    # Writing again over a data set replaces it.
    again = runner.invoke(app, ["generate", "--out", str(tmp_path / "a"), *ARGS])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--customers", "5"], "--customers must be a whole number in [200,"),
        (["--days", "5000"], "--days must be a whole number in [30,"),
        (["--format", "xlsx"], "--format must be one of parquet, csv"),
        (["--start", "2025-02-30"], "--start must be a date YYYY-MM-DD"),
    ],
)
def test_bad_values_are_reported_as_aml_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["generate", "--out", str(tmp_path / "x"), *args])
    assert isinstance(result.exception, AmlError)
    assert message in str(result.exception)
    assert not (tmp_path / "x").exists()
