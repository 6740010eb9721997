"""``amlscore score --engine spark`` gives the local engine's scores and reasons, row for row."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from amlscore.training.spark_scoring import SCORE_COLUMNS


def test_spark_scores_equal_the_local_engine(spark, trained, bank_dir, tmp_path):
    from amlscore.cli import app

    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark_scores"
    runner = CliRunner()
    for out, extra in ((local_out, ["--no-daily"]), (spark_out, ["--engine", "spark"])):
        result = runner.invoke(app, ["score", "--data", str(bank_dir), "--out", str(out), "--version",
                                     str(trained.model_version), *extra])
        assert result.exit_code == 0, result.output
    assert "on Spark" in result.output
    local = pd.read_parquet(local_out).sort_values("txn_id").reset_index(drop=True)
    spark_rows = pd.read_parquet(spark_out).sort_values("txn_id").reset_index(drop=True)
    assert list(spark_rows.columns) == list(SCORE_COLUMNS)
    assert len(spark_rows) == len(local) == len(trained.prepared.dataset.transactions)
    assert (spark_rows["txn_id"].astype(str).to_numpy() == local["txn_id"].astype(str).to_numpy()).all()
    for name in ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score"):
        assert np.array_equal(spark_rows[name].to_numpy(np.float64), local[name].to_numpy(np.float64)), name
    assert (spark_rows["alert"].to_numpy() == local["alert"].to_numpy()).all() and local["alert"].any()
    assert (spark_rows["top_reasons"].astype(str).to_numpy() == local["top_reasons"].astype(str).to_numpy()).all()
    assert not (tmp_path / "spark_scores.staging").exists() and not (tmp_path / "spark_scores.partial").exists()


def test_spark_scoring_writes_parquet_only(trained, bank_dir, tmp_path, capsys):
    from amlscore.cli import run

    code = run(["score", "--data", str(bank_dir), "--out", str(tmp_path / "s.csv"), "--version",
                str(trained.model_version), "--engine", "spark"])
    assert code == 2
    assert "--engine spark writes a Parquet folder" in capsys.readouterr().err.replace("\n", "")
