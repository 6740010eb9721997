"""The generalisation protocol: a validated grid, nested report subsampling, leave-one-out, a small
grid end to end from the command line with one MLflow run per cell under a parent run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.training.protocol import ProtocolError, ProtocolGrid, load_grid, subsample_reports

# Small and quick (the training conftest's settings; a conftest cannot be imported by name when
# several test folders run together).
FAST = {"lgbm": {"n_estimators": 60, "min_rounds": 10, "early_stopping_rounds": 20},
        "anomaly": {"n_estimators": 50}, "max_train_negatives": 20_000, "anomaly_fit_rows": 20_000}


def _reports(n_susp: int, n_not: int) -> pd.DataFrame:
    n = n_susp + n_not
    return pd.DataFrame({
        "report_id": [f"R{i:08d}" for i in range(n)],
        "customer_id": [f"C{i % 37:09d}" for i in range(n)],
        "label": ["suspicious"] * n_susp + ["not_suspicious"] * n_not,
    })


def test_subsampling_is_proportional_nested_and_deterministic() -> None:
    reports = _reports(400, 100)
    quarter = subsample_reports(reports, 0.25, seed=3)
    half = subsample_reports(reports, 0.5, seed=3)
    assert (quarter["label"] == "suspicious").sum() == 100 and (quarter["label"] == "not_suspicious").sum() == 25
    assert set(quarter["report_id"]) <= set(half["report_id"])
    assert quarter.equals(subsample_reports(reports, 0.25, seed=3))
    assert set(subsample_reports(reports, 0.25, seed=4)["report_id"]) != set(quarter["report_id"])
    assert subsample_reports(reports, 1.0, seed=3).equals(reports)


def test_leave_out_removes_suspicious_reports_of_those_customers_only() -> None:
    reports = _reports(60, 20)
    gone = {"C000000001", "C000000002"}
    out = subsample_reports(reports, 1.0, seed=1, leave_out_customers=gone)
    left = out[out["customer_id"].isin(gone)]
    assert (left["label"] == "not_suspicious").all() and len(left) > 0
    assert len(out) == len(reports) - ((reports["label"] == "suspicious") & reports["customer_id"].isin(gone)).sum()


@pytest.mark.parametrize(("change", "words"), [
    ({"sizes": [100]}, ["'sizes'", "[200, 2000000]", "100"]),
    ({"label_shares": [0.0]}, ["'label_shares'", "(0, 1]"]),
    ({"seeds": [1, 1]}, ["'seeds'", "distinct"]),
    ({"train": {"learning_rate": 0.1}}, ["'train'", "unknown training parameter 'learning_rate'", "max_train_negatives"]),
    ({"configs": {"a": {"fractions": [0.5, 0.25, 0.25]}}}, ["'configs'", "may not change 'fractions'"]),
    ({"seed": 3}, ["'seed'", "extra inputs"]),
])
def test_grid_errors_name_the_key_the_rule_and_the_value(tmp_path: Path, change: dict, words: list[str]) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"sizes": [300], "seeds": [1], **change}))
    with pytest.raises(ProtocolError) as err:
        load_grid(path)
    for w in words:
        assert w.lower() in str(err.value).lower(), str(err.value)


@pytest.mark.parametrize(("rows", "positives", "expected"), [(10_000, 50, 1.0), (10_000, 400, 0.25),
                                                              (10_001, 400, 101 / 400), (100, 0, float("nan"))])
def test_recall_ceiling_is_the_alert_budget_over_the_positives(rows: int, positives: int, expected: float) -> None:
    from amlscore.training.protocol import recall_ceiling

    assert recall_ceiling(rows, positives, 0.01) == pytest.approx(expected, nan_ok=True)


def test_a_customer_is_caught_when_any_of_its_rows_is_in_the_alert_budget() -> None:
    from amlscore.training.evaluate import customers_caught

    # 200 rows, budget 2 (1 %): rows 0 and 1 score highest
    ids = np.array(["A", "B"] + ["C"] * 3 + ["D"] * 195, dtype=object)
    y = np.zeros(200, dtype=int)
    y[[2, 3]] = 1  # C launders (its rows 2 and 3), not alerted
    y[10] = 1  # D launders in row 10, and D's row 1 is alerted: D is caught through another row
    typ = np.where(y == 1, np.where(ids == "C", "fan_in", "cycle"), "").astype(object)
    scores = np.zeros(200)
    scores[[0, 1]] = [9.0, 8.0]
    ids[1] = "D"
    out = customers_caught(ids, y, scores, typ, 0.01)
    assert out["laundering_customers"] == 2 and out["alerted_customers"] == 2
    assert out["customer_recall"] == 0.5 and out["customer_precision"] == 0.5
    assert out["per_typology"] == {"cycle": 1.0, "fan_in": 0.0}


def test_cells_cover_every_axis() -> None:
    grid = ProtocolGrid(sizes=[300, 500], days=[90], seeds=[1, 2], variants=["default", "hard"],
                        label_shares=[0.25, 1.0], leave_out=["fan_in"], leave_out_label_shares=[0.25],
                        configs={"a": {}, "b": {"fusion_fit": "valid", "pu": "none"}})
    cells = grid.cells()
    assert len(grid.banks()) == 8
    assert len(cells) == 8 * 2 * 3
    assert len({c.name for c in cells}) == len(cells)
    assert grid.train_config(Path("x"), 5, "b").fusion_fit == "valid"


def test_small_grid_runs_from_one_command(tmp_path: Path, tracking_uri: str) -> None:
    grid = {"name": "tiny", "sizes": [300], "days": [120], "seeds": [1], "variants": ["default"],
            "label_shares": [0.5], "leave_out": ["structuring"], "leave_out_label_shares": [1.0],
            "train": {**FAST, "max_train_negatives": 5000, "max_valid_negatives": 5000, "anomaly_fit_rows": 5000},
            "target_min_customers": 300, "target_label_share": 0.5}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(grid))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["evaluate", "--protocol", str(path), "--out", str(out),
                                      "--cache", str(tmp_path / "banks"), "--results-fp", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 2
    full = cells[cells["leave_out"].isna()].iloc[0]
    left = cells[cells["leave_out"] == "structuring"].iloc[0]
    assert 0 < full["pr_auc"] <= 1 and 0 < full["recall_at_1pct"] <= 1
    assert left["suspicious_reports_used"] < 2 * full["suspicious_reports_used"]  # 100 % minus a typology vs 50 %
    assert 0 <= left["left_out_recall_1pct"] <= 1 and np.isnan(full["left_out_recall_1pct"])
    assert "recall_1pct_structuring" in cells.columns
    # the ceiling: what a perfect ranking reaches with 1 % of the test period's rows flagged
    assert full["recall_at_1pct"] <= full["recall_at_1pct_ceiling"] + 1e-12
    assert full["recall_at_1pct_ceiling"] == pytest.approx(
        min(1.0, np.ceil(0.01 * full["test_rows"]) / full["test_positives"]))
    assert full["laundering_customers"] > 0 and 0 <= full["customer_recall_at_1pct"] <= 1
    per_typology = [c for c in cells.columns if c.startswith("customer_recall_1pct_")]
    assert per_typology and full["worst_typology_customer_recall_1pct"] == full[per_typology].min()
    summary = (out / "summary.md").read_text()
    assert "PR-AUC worst" in summary and "Targets" in summary
    assert (out / "targets.json").is_file() and (out / "summary.csv").is_file()
    # the bank is cached: a second bank maker call reuses the folder
    assert (tmp_path / "banks" / "c300_d120_s1_default" / "protocol_bank.json").is_file()

    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`amlscore.stage` = 'protocol_cell'")
    parents = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`amlscore.stage` = 'protocol'")
    assert len(runs) == 2 and len(parents) == 1
    assert set(runs["tags.mlflow.parentRunId"]) == {parents["run_id"].iloc[0]}
    assert set(runs["params.label_share"]) == {"0.5", "1.0"}
    assert runs["metrics.pr_auc"].notna().all()


@pytest.mark.parametrize(("change", "words"), [({"variants": ["nosuch"]}, ["'variants'", "nosuch", "hard"]),
                                               ({"leave_out": ["smurf"]}, ["'leave_out'", "smurf", "slow_layering"])])
def test_unknown_names_fail_before_any_work(tmp_path: Path, change: dict, words: list[str]) -> None:
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({"sizes": [300], "seeds": [1], **change}))
    result = CliRunner().invoke(app, ["evaluate", "--protocol", str(path), "--no-mlflow", "--out", str(tmp_path / "o"),
                                      "--cache", str(tmp_path / "banks")])
    assert result.exit_code != 0
    for w in words:
        assert w in str(result.exception), str(result.exception)
    assert not (tmp_path / "banks").exists()


REPORT_FEATURES = ["cp_reported", "reported_cps_30d", "reported_2hop_30d", "reported_distance_30d",
                   "reported_in_sum_30d", "reported_out_sum_30d"]


def test_a_cell_at_a_share_of_the_reports_gets_features_from_those_reports_only(bank_dir: Path) -> None:
    import dataclasses

    from amlscore.contract.load import load_dataset
    from amlscore.features.offline import build_features
    from amlscore.training.protocol import relabel
    from amlscore.training.result import TrainConfig
    from amlscore.training.train import prepare

    dataset = load_dataset(bank_dir)
    prep = prepare(TrainConfig(data=bank_dir, seed=3), dataset=dataset)
    kept = subsample_reports(prep.dataset.reports, 0.25, seed=3)
    cell = relabel(prep, kept)
    alone = build_features(dataclasses.replace(prep.dataset, reports=kept), prep.feature_params)
    # what a bank holding only the kept reports computes, row for row
    pd.testing.assert_frame_equal(cell.features[REPORT_FEATURES], alone[REPORT_FEATURES])
    # and not what the bank's every report gives: the dropped reports must not reach the cell's features
    assert not cell.features[REPORT_FEATURES].equals(prep.features[REPORT_FEATURES])
    assert cell.dataset.reports is kept and len(cell.rule_score) == len(cell.features)
    # every report kept: the bank's features are reused as they are
    same = relabel(prep, prep.dataset.reports.sample(frac=1.0, random_state=0))
    assert same.features is prep.features
