"""The Spark engine gives the local engine's feature rows, value for value (Spark local mode, 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from amlscore.contract import load_dataset
from amlscore.features.catalogue import FEATURE_NAMES, INTEGER_FEATURES
from amlscore.features.offline import build_features
from amlscore.features.params import load_feature_params
from amlscore.synth import SynthConfig, generate_bank, write_bank


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spark-bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=120, seed=11)), folder)
    return folder


@pytest.fixture(scope="module")
def local(bank):
    return build_features(load_dataset(bank, require_reports=False))


@pytest.fixture(scope="module")
def spark_run(spark, bank, tmp_path_factory):
    """``amlscore features --engine spark`` on the bank (the test session's Spark). The graph runs in
    stretches of 10 days, so those from day 40 on replay only the 40 days the engine warms up with, not the
    whole history: their values still equal the local engine's."""
    from amlscore.cli import app

    out = tmp_path_factory.mktemp("spark-out") / "features"
    result = CliRunner().invoke(app, ["features", "--data", str(bank), "--out", str(out), "--engine", "spark",
                                      "--graph-block-days", "10"])
    assert result.exit_code == 0, result.output
    return out


def _time_order(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.assign(timestamp=pd.to_datetime(frame["timestamp"], utc=True), txn_id=frame["txn_id"].astype(str))
    return frame.sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)


def test_spark_features_equal_the_local_engine(local, spark_run):
    spark_rows = _time_order(pd.read_parquet(spark_run))
    local_rows = _time_order(local)
    assert len(spark_rows) == len(local_rows) > 5_000
    # same rows: ids, customers and instants (Spark keeps microseconds; the bank's are whole seconds)
    assert (spark_rows["txn_id"].to_numpy() == local_rows["txn_id"].to_numpy()).all()
    assert (spark_rows["customer_id"].astype(str).to_numpy() == local_rows["customer_id"].astype(str).to_numpy()).all()
    assert (spark_rows["timestamp"].to_numpy() == local_rows["timestamp"].to_numpy()).all()
    assert list(spark_rows.columns[3:]) == list(FEATURE_NAMES)
    different = []
    for name in FEATURE_NAMES:
        expected = local_rows[name].to_numpy()
        got = spark_rows[name].to_numpy()
        assert got.dtype == (np.int32 if name in INTEGER_FEATURES else np.float64), name
        # exact: the same kernels on the same integers; NaN where the local engine has NaN
        if not np.array_equal(got, expected, equal_nan=got.dtype.kind == "f"):
            different.append(name)
    assert different == []


def test_the_history_exercises_what_crosses_customers(local):
    """The features Spark computes apart (shared identifiers, peer groups, the graph) are not all zero
    here, so the equality above covers them."""
    for name in ("ip_customers_7d", "device_customers_7d", "peer_cash_ratio_30d", "peer_txn_freq_ratio_30d", "cp_fan_in_7d", "scatter_gather_7d",
                 "chain_len_24h", "payer_indiv_share_vs_peers_30d", "fan_out_30d", "is_new_counterparty",
                 "id_component_size", "id_component_growth"):
        values = local[name].to_numpy(dtype=np.float64)
        assert np.nanmax(np.abs(values)) > 0, name


def test_the_folder_says_what_it_holds(bank, spark_run):
    manifest = json.loads((spark_run / "_amlscore_features.json").read_text())
    dataset = load_dataset(bank, require_reports=False)
    assert manifest["rows"] == len(dataset.transactions)
    assert manifest["feature_params_hash"] == load_feature_params().hash
    assert manifest["data_fingerprint"] == dataset.fingerprint
    assert not spark_run.with_name(spark_run.name + ".partial").exists()
    assert not spark_run.with_name(spark_run.name + ".staging").exists()


def test_importing_the_features_starts_no_jvm():
    code = ("import sys, amlscore.features.offline, amlscore.features.spark, amlscore.training.spark_scoring; "
            "print('pyspark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("args, message", [
    (["--engine", "dask"], "--engine must be one of local, spark. Got 'dask' instead."),
    (["--master", "local[2]"], "--master goes with --engine spark."),
])
def test_engine_options_are_checked(bank, tmp_path, capsys, args, message):
    from amlscore.cli import run

    assert run(["features", "--data", str(bank), "--out", str(tmp_path / "f.parquet"), *args]) == 2
    assert message in capsys.readouterr().err.replace("\n", "")
    assert not (tmp_path / "f.parquet").exists()


def test_training_reads_back_exactly_the_local_features(bank, local, spark_run):
    """What ``amlscore train --features FOLDER`` reads: build_features' frame, column for column."""
    from amlscore.features.feature_folder import read_feature_folder

    dataset = load_dataset(bank, require_reports=False)
    pd.testing.assert_frame_equal(read_feature_folder(spark_run, dataset, load_feature_params()), local)


def test_without_java_the_engine_says_what_to_install(monkeypatch):
    pytest.importorskip("pyspark", reason="PySpark is not installed: the message without Java is not reached")
    from amlscore.features import spark as engine

    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(engine.shutil, "which", lambda name: None)
    with pytest.raises(engine.SparkUnavailableError, match="needs Java 17 or later .*openjdk-17-jre-headless"):
        engine.spark_session("local[1]")
