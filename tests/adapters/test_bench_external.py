"""benchmarks/bench_external.py end to end on a small converted AMLSim run (a slice of the shared sample)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from adapter_sources import AMLSIM_RUN, shared

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_external.py"


def _bench():  # noqa: ANN202 - the benchmark script as a module
    spec = importlib.util.spec_from_file_location("bench_external", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_payment_f1_counts_a_payment_once_with_its_highest_row() -> None:
    f = _bench().payment_f1(np.array(["AS2.o", "AS2.i", "AS3.o", "AS4.o", "AS4.i"], dtype=object),
                            np.array([0.9, 0.1, 0.8, 0.2, 0.3]), np.array([True, True, False, True, True]), 0.5)
    assert (f["payments"], f["laundering_payments"]) == (3, 2)
    assert f["f1_at_alert_threshold"] == pytest.approx(2 * 1 / (2 + 2))  # alerts: AS2, AS3; laundering: AS2, AS4
    assert f["f1_best_threshold_oracle"] == pytest.approx(2 * 2 / (3 + 2))  # or AS2 alone: 2/3; all three: 0.8


@pytest.mark.slow
def test_bench_external_converts_trains_and_evaluates_a_small_amlsim_run(tmp_path: Path) -> None:
    from amlscore.core.registry import process_wide_mlflow_uri

    run = shared(AMLSIM_RUN)
    nodes = pd.read_csv(run / "nodes.csv")
    tx = pd.read_csv(run / "transactions.csv")
    keep = nodes["nodeid"] < 5000
    small = tmp_path / "run"
    small.mkdir()
    nodes[keep].to_csv(small / "nodes.csv", index=False)
    tx[tx["sourceNodeId"].isin(nodes.loc[keep, "nodeid"]) & tx["targetNodeId"].isin(nodes.loc[keep, "nodeid"])
       ].to_csv(small / "transactions.csv", index=False)
    with process_wide_mlflow_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):  # both URIs put back afterwards
        r = _bench().run("amlsim", small, tmp_path / "work", seed=3,
                         train_overrides={"max_train_negatives": 2000, "max_valid_negatives": 2000,
                                          "anomaly_fit_rows": 2000})
    assert r["label_source"] == "ground_truth" and r["test_laundering_rows"] > 0
    split = r["split"]
    assert split["test_start"] > split["valid_start"] > split["train_start"]
    assert 0 < r["pr_auc"] <= 1 and not math.isnan(r["recall_at_1pct"])
    f = r["minority_f1"]
    assert 0 <= f["f1_at_alert_threshold"] <= f["f1_best_threshold_oracle"] <= 1
    assert f["laundering_payments"] * 2 == r["test_laundering_rows"]  # both ends of each are customers
    assert set(r["per_typology_recall_at_1pct"]) == {"unknown"}
