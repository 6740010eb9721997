"""External sets in the generalisation protocol: the ``external`` key validated, each set converted once
per seed into the cache and reused, crossed with label shares and the typologies its ground truth holds,
run from the command line with one MLflow run per cell, reported beside (not in) the targets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.training.protocol import (
    EXTERNAL_FORMATS,
    SUMMARY_METRICS,
    SYNTHETIC,
    BankSpec,
    Cell,
    CellResult,
    ProtocolError,
    ProtocolGrid,
    load_grid,
    summarise,
    summarise_frame,
    targets,
)

#: The shared public samples (/work/shared/external; in CI <repo>/../shared/external).
AMLSIM_RUN = Path(__file__).resolve().parents[2].parent / "shared" / "external" / "amlsim-20K_fanin200cycle200"
FAST = {"lgbm": {"n_estimators": 60, "min_rounds": 10, "early_stopping_rounds": 20}, "anomaly": {"n_estimators": 50},
        "max_train_negatives": 5000, "max_valid_negatives": 5000, "anomaly_fit_rows": 5000}


def _amlsim_run() -> Path:
    if not AMLSIM_RUN.exists():
        pytest.skip(f"shared public sample not found at {AMLSIM_RUN} (the project's shared/ folder beside the repository)")
    return AMLSIM_RUN


def _slice(run: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Accounts 0-4,999 of the shared run and the payments between them (2,744 payments, 96 between fraud accounts)."""
    nodes = pd.read_csv(run / "nodes.csv")
    tx = pd.read_csv(run / "transactions.csv")
    nodes = nodes[nodes["nodeid"] < 5000]
    ids = nodes["nodeid"]
    return nodes, tx[tx["sourceNodeId"].isin(ids) & tx["targetNodeId"].isin(ids)].reset_index(drop=True)


@pytest.fixture(scope="module")
def sample_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A slice of the shared AMLSim sample run, in its own layout (its ground truth: typology ``unknown``)."""
    nodes, tx = _slice(_amlsim_run())
    folder = tmp_path_factory.mktemp("amlsim") / "sample"
    folder.mkdir()
    nodes.to_csv(folder / "nodes.csv", index=False)
    tx.to_csv(folder / "transactions.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def export_slice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same slice in AMLSim's bank-export layout with alert types, so its ground truth holds two typologies.

    The sample run's files do not say which pattern an account is in; here each laundering payment's
    alert is its payee's, typed ``fan_in`` for an even payee id and ``cycle`` for an odd one (made up:
    the test needs typologies to leave out, not true ones).
    """
    nodes, tx = _slice(_amlsim_run())
    fraud = set(nodes.loc[nodes["isFraud"] == 1, "nodeid"])
    sar = tx["sourceNodeId"].isin(fraud) & tx["targetNodeId"].isin(fraud)
    folder = tmp_path_factory.mktemp("amlsim") / "export"
    folder.mkdir()
    pd.DataFrame({"acct_id": nodes["nodeid"], "is_sar": nodes["isFraud"].map({1: "true", 0: "false"})}
                 ).to_csv(folder / "accounts.csv", index=False)
    frame = pd.DataFrame({"tran_id": tx.index + 1, "orig_acct": tx["sourceNodeId"], "bene_acct": tx["targetNodeId"],
                          "tx_type": "TRANSFER", "base_amt": tx["value"], "tran_timestamp": tx["time"],
                          "is_sar": np.where(sar, "true", "false"), "alert_id": np.where(sar, tx["targetNodeId"], -1)})
    frame.to_csv(folder / "transactions.csv", index=False)
    alerts = frame[sar]
    pd.DataFrame({"alert_id": alerts["alert_id"], "alert_type": np.where(alerts["bene_acct"] % 2 == 0, "fan_in", "cycle"),
                  "tran_id": alerts["tran_id"]}).to_csv(folder / "alert_transactions.csv", index=False)
    return folder


def _write(path: Path, grid: dict) -> Path:
    path.write_text(yaml.safe_dump(grid))
    return path


def test_the_grid_accepts_the_formats_amlscore_import_converts() -> None:
    from amlscore.adapters import FORMATS

    assert set(EXTERNAL_FORMATS) == set(FORMATS)


def test_a_grid_of_external_sets_only_is_valid_and_paths_are_read_from_the_protocol_folder(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    path = _write(tmp_path / "p" / "grid.yaml", {
        "seeds": [1, 2], "label_shares": [0.25, 1.0], "external": [
            {"name": "sim", "format": "amlsim", "path": "../runs/sim"},
            {"name": "world", "format": "amlworld", "path": str(tmp_path / "HI-Small_Trans.csv"),
             "patterns": "HI-Small_Patterns.txt", "bank": "70", "report_share": 0.8}]})
    grid = load_grid(path)
    assert grid.sizes == [] and grid.banks() == [] and grid.cells() == []
    sim, world = grid.external
    assert sim.path == str((tmp_path / "runs" / "sim").resolve())
    assert world.path == str(tmp_path / "HI-Small_Trans.csv")
    assert world.patterns == str((tmp_path / "p" / "HI-Small_Patterns.txt").resolve())
    assert [(e.name, s) for e, s in grid.external_banks()] == [("sim", 1), ("sim", 2), ("world", 1), ("world", 2)]


def test_an_external_set_gets_a_leave_out_cell_only_for_the_typologies_its_ground_truth_holds() -> None:
    grid = ProtocolGrid(seeds=[1], label_shares=[0.25, 1.0], leave_out=["fan_in", "cycle"], leave_out_label_shares=[0.25],
                        external=[{"name": "sim", "format": "amlsim", "path": "x"}])
    bank = BankSpec(100, 30, 1, "", "sim")
    cells = grid.cells_of(bank, {"fan_in", "unknown"})
    assert [(c.label_share, c.leave_out) for c in cells] == [(0.25, None), (1.0, None), (0.25, "fan_in")]
    assert [c.name for c in cells] == ["sim_s1_labels25_current", "sim_s1_labels100_current",
                                       "sim_s1_labels25_without_fan_in_current"]
    assert cells[0].params()["source"] == "sim"
    assert len(grid.cells_of(bank, set())) == 2


ENTRY = {"name": "sim", "format": "amlsim", "path": "run"}


@pytest.mark.parametrize(("change", "words"), [
    ({"external": [{**ENTRY, "format": "amlsimulator"}]},
     ["'external.0.format'", "'amlsim'", "'amlworld'", "'saml-d'", "'amlsimulator'"]),
    ({"external": [{**ENTRY, "colour": "red"}]}, ["'external.0.colour'", "extra inputs", "'red'"]),
    ({"external": [{**ENTRY, "patterns": "p.txt"}]}, ["'external.0'", "'patterns' is for the amlworld format only",
                                                      "'amlsim'"]),
    ({"external": [{**ENTRY, "report_share": 0}]}, ["'external.0.report_share'", "greater than 0"]),
    ({"external": [ENTRY, ENTRY]}, ["'external'", "'sim' is named 2 times"]),
    ({"external": [{**ENTRY, "name": "synthetic"}]}, ["'external.0.name'", "must not be 'synthetic'"]),
    ({"external": [{**ENTRY, "name": "a/b"}]}, ["'external.0.name'", "pattern", "'a/b'"]),
    ({"external": [{k: v for k, v in ENTRY.items() if k != "path"}]}, ["'external.0.path'", "field required"]),
    ({}, ["no bank", "'sizes'", "'external'"]),
])
def test_external_key_errors_name_the_key_the_rule_and_the_value(tmp_path: Path, change: dict, words: list[str]) -> None:
    with pytest.raises(ProtocolError) as err:
        load_grid(_write(tmp_path / "grid.yaml", {"seeds": [1], **change}))
    for w in words:
        assert w.lower() in str(err.value).lower(), str(err.value)


@pytest.mark.parametrize(("entry", "words"), [
    ({**ENTRY, "path": "no/such/run"}, ["'external'", "entry 'sim'", "path", "no/such/run", "does not exist"]),
    ({"name": "world", "format": "amlworld", "path": "grid.yaml", "patterns": "none.txt"},
     ["'external'", "entry 'world'", "patterns", "none.txt", "does not exist"]),
])
def test_a_missing_source_fails_before_any_work(tmp_path: Path, entry: dict, words: list[str]) -> None:
    path = _write(tmp_path / "grid.yaml", {"seeds": [1], "external": [entry]})
    result = CliRunner().invoke(app, ["evaluate", "--protocol", str(path), "--no-mlflow", "--out", str(tmp_path / "o"),
                                      "--cache", str(tmp_path / "cache")])
    assert result.exit_code != 0
    for w in words:
        assert w in str(result.exception), str(result.exception)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "o").exists()


def test_a_left_out_typology_no_external_set_holds_fails_before_training(tmp_path: Path, sample_slice: Path) -> None:
    path = _write(tmp_path / "grid.yaml", {"seeds": [1], "leave_out": ["fan_in"],
                                           "external": [{**ENTRY, "path": str(sample_slice)}]})
    result = CliRunner().invoke(app, ["evaluate", "--protocol", str(path), "--no-mlflow", "--out", str(tmp_path / "o"),
                                      "--cache", str(tmp_path / "cache")])
    assert result.exit_code != 0
    message = str(result.exception)
    assert "'leave_out'" in message and "sim: unknown" in message and "'fan_in'" in message, message
    assert not (tmp_path / "o").exists()
    unknown = _write(tmp_path / "u.yaml", {"seeds": [1], "leave_out": ["unknown"],
                                           "external": [{**ENTRY, "path": str(sample_slice)}]})
    result = CliRunner().invoke(app, ["evaluate", "--protocol", str(unknown), "--no-mlflow", "--out", str(tmp_path / "o"),
                                      "--cache", str(tmp_path / "cache2")])
    assert result.exit_code != 0 and "may not name 'unknown'" in str(result.exception)


def test_a_converted_set_is_reused_until_its_seed_policy_or_source_changes(tmp_path: Path, sample_slice: Path) -> None:
    import os

    from amlscore.cli.protocol import EXTERNAL_MARKER, external_maker
    from amlscore.training.protocol import ExternalSet

    source = tmp_path / "run"
    source.mkdir()
    for f in sample_slice.iterdir():
        (source / f.name).write_bytes(f.read_bytes())
    lines: list[str] = []
    make = external_maker(tmp_path / "cache", lines.append)
    entry = ExternalSet(name="sim", format="amlsim", path=str(source))
    folder = make(entry, 1)
    assert folder == tmp_path / "cache" / "external" / "sim_s1" and (folder / EXTERNAL_MARKER).is_file()
    first = (folder / "reports.parquet").stat().st_mtime_ns
    assert make(entry, 1) == folder and (folder / "reports.parquet").stat().st_mtime_ns == first
    assert [line.split(":")[1].split()[0] for line in lines] == ["converting", "reusing"]
    marker = json.loads((folder / EXTERNAL_MARKER).read_text())
    assert marker["seed"] == 1 and marker["policy"]["report_share"] == 0.6 and marker["format"] == "amlsim"

    assert make(entry, 2) == tmp_path / "cache" / "external" / "sim_s2"  # another seed: other reports, own folder
    more = entry.model_copy(update={"report_share": 0.9})
    assert make(more, 1) == folder  # another policy: converted again
    assert json.loads((folder / EXTERNAL_MARKER).read_text())["policy"]["report_share"] == 0.9
    make(more, 1)
    os.utime(source / "transactions.csv", ns=(1, 1))  # the source changed on disk: converted again
    make(more, 1)
    assert [line.split(":")[1].split()[0] for line in lines] == ["converting", "reusing", "converting", "converting",
                                                                 "reusing", "converting"]


@pytest.fixture
def own_store(tmp_path: Path):  # noqa: ANN201 - a store of its own: the session's is counted by test_protocol.py
    from amlscore.core.registry import process_wide_mlflow_uri

    with process_wide_mlflow_uri(f"sqlite:///{tmp_path / 'mlflow.db'}"):  # both URIs put back afterwards
        yield


def test_an_external_grid_runs_from_one_command(tmp_path: Path, export_slice: Path, own_store: None) -> None:
    grid = {"name": "tiny_external", "seeds": [1], "label_shares": [0.5], "leave_out": ["fan_in"],
            "leave_out_label_shares": [1.0], "train": FAST,
            "external": [{"name": "sim_export", "format": "amlsim", "path": str(export_slice)}]}
    path = _write(tmp_path / "grid.yaml", grid)
    out, cache = tmp_path / "out", tmp_path / "cache"
    result = CliRunner().invoke(app, ["evaluate", "--protocol", str(path), "--out", str(out), "--cache", str(cache),
                                      "--results-fp", str(tmp_path / "r.json")])
    assert result.exit_code == 0, result.output
    assert "0 synthetic banks, 1 external sets at 1 seeds, 2 cells" in result.output
    assert "sim_export, seed 1: reusing" in result.output  # converted once, before training, then read from the cache
    cells = pd.read_csv(out / "cells.csv")
    assert len(cells) == 2 and set(cells["source"]) == {"sim_export"}
    payments = pd.read_csv(export_slice / "transactions.csv")
    accounts = set(payments["orig_acct"]) | set(payments["bene_acct"])
    assert (cells["customers"] == len(accounts)).all()  # the converted set's customers: the accounts that transact
    assert (cells["days"] == payments["tran_timestamp"].max() - payments["tran_timestamp"].min()).all()  # one step a day
    full = cells[cells["leave_out"].isna()].iloc[0]
    left = cells[cells["leave_out"] == "fan_in"].iloc[0]
    assert 0 < full["pr_auc"] <= 1 and full["test_positives"] > 0
    assert {"recall_1pct_fan_in", "recall_1pct_cycle"} <= set(cells.columns)
    assert 0 <= left["left_out_recall_1pct"] <= 1 and np.isnan(full["left_out_recall_1pct"])
    # the left-out cell trains on every report but fan_in's suspicious ones: fewer than all, more than none
    truth = pd.read_csv(cache / "external" / "sim_export_s1" / "ground_truth.csv")
    reports = pd.read_parquet(cache / "external" / "sim_export_s1" / "reports.parquet")
    suspicious = reports[reports["label"] == "suspicious"]
    fan_in = set(truth.loc[truth["typology"] == "fan_in", "customer_id"])
    assert left["suspicious_reports_used"] == (~suspicious["customer_id"].isin(fan_in)).sum() > 0
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["source"]) == {"sim_export"} and summary["seeds"].tolist() == [1, 1]
    assert "| sim_export |" in (out / "summary.md").read_text()
    assert json.loads((out / "targets.json").read_text()) == {"current": {"judged_cells": 0}}

    import mlflow

    runs = mlflow.search_runs(search_all_experiments=True,
                              filter_string="tags.`amlscore.stage` = 'protocol_cell' and params.source = 'sim_export'")
    parents = mlflow.search_runs(search_all_experiments=True,
                                 filter_string="tags.`amlscore.stage` = 'protocol' and tags.mlflow.runName = 'protocol tiny_external'")
    assert len(runs) == 2 and len(parents) == 1
    assert set(runs["tags.mlflow.parentRunId"]) == {parents["run_id"].iloc[0]}
    assert set(runs["params.leave_out"]) == {"", "fan_in"}


def _result(bank: BankSpec, share: float, pr_auc: float) -> CellResult:
    metrics = {m: 0.5 for m in SUMMARY_METRICS} | {"pr_auc": pr_auc, "left_out_recall_1pct": float("nan")}
    return CellResult(Cell(bank, share, None), metrics, {"fan_in": 0.5}, {"worst_typology": "fan_in"}, 1.0)


def test_targets_judge_the_synthetic_banks_and_the_summary_keeps_the_external_sets_apart() -> None:
    grid = ProtocolGrid(sizes=[3000], seeds=[1, 2], external=[{"name": "sim", "format": "amlsim", "path": "x"}])
    results = [_result(BankSpec(3000, 180, s, "default"), 0.25, 0.8) for s in (1, 2)]
    results += [_result(BankSpec(20000, 148, s, "", "sim"), 0.25, 0.1 * s) for s in (1, 2)]
    judged = targets(results, grid)["current"]
    assert judged["judged_cells"] == 2 and judged["pr_auc_worst"]["value"] == 0.8
    summary = summarise(results).set_index("source")
    assert summary.loc[SYNTHETIC, "pr_auc_worst"] == 0.8 and summary.loc["sim", "pr_auc_worst"] == pytest.approx(0.1)
    assert summary.loc["sim", "pr_auc_spread"] == pytest.approx(0.1) and summary.loc["sim", "seeds"] == 2
    # a cells table written before the external sets (no source column) reads as synthetic
    old = pd.DataFrame([r.row() for r in results[:2]]).drop(columns="source")
    assert summarise_frame(old)["source"].tolist() == [SYNTHETIC]


def test_an_amlworld_entry_is_converted_with_its_patterns_file(tmp_path: Path) -> None:
    """The shared AMLworld sample is too small for a cell, but the grid's converter takes the format whole."""
    from amlscore.cli.protocol import EXTERNAL_MARKER, external_maker
    from amlscore.training.protocol import ExternalSet

    sample = AMLSIM_RUN.parent / "amlworld-sample"
    if not sample.exists():
        pytest.skip(f"shared public sample not found at {sample}")
    entry = ExternalSet(name="world", format="amlworld", path=str(sample / "hi_small_sample.csv"),
                        patterns=str(sample / "hi_small_patterns_sample.txt"), report_share=1.0)
    folder = external_maker(tmp_path / "cache")(entry, 3)
    truth = pd.read_csv(folder / "ground_truth.csv")
    assert len(truth) > 0 and truth["reported"].all()  # report_share 1: every laundering customer reported
    # the one payment of the sample that is also in the patterns sample is named (the files barely join)
    assert set(truth["typology"]) == {"unknown", "fan_in"}
    marker = json.loads((folder / EXTERNAL_MARKER).read_text())
    assert marker["patterns"]["files"][0][0] == "hi_small_patterns_sample.txt" and marker["bank"] == "all"
