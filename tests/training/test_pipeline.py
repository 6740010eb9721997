"""End to end on a small bank: MLflow run contents, registry reload, promotion, batch scoring, feedback."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from amlscore.models.model_set import ModelSet


def test_run_logs_params_metrics_artifacts_and_registers_a_challenger(trained, tracking_uri, tmp_path):
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    run = client.get_run(trained.run_id)
    p, m = run.data.params, run.data.metrics
    md = trained.model_set.metadata
    assert p["data_fingerprint"] == md["data_fingerprint"] == trained.prepared.dataset.fingerprint
    assert p["rules_config_hash"] == md["rules_config_hash"] and p["feature_params_hash"] == md["feature_params_hash"]
    assert p["feature_list"].split(",") == list(trained.model_set.feature_names)
    assert p["seed"] == "0" and p["valid_start"] and p["test_start"] and p["code_version"]
    for key in ("test_pr_auc", "test_roc_auc", "test_recall_at_0_5pct", "test_recall_at_1pct", "test_precision_at_k",
                "test_f1_at_threshold", "test_lgbm_pr_auc", "test_rules_pr_auc", "test_anomaly_pr_auc",
                "test_reports_pr_auc", "valid_pr_auc"):
        assert key in m, key
    assert any(k.startswith("test_typology_recall_1pct_") for k in m)
    files = {a.path for a in client.list_artifacts(trained.run_id)}
    assert {"pr_curve.png", "score_histograms.png", "shap_summary.png", "model_card.md", "metrics.json",
            "per_typology.csv", "slices.csv", "features.json"} <= files
    card = Path(client.download_artifacts(trained.run_id, "model_card.md", str(tmp_path))).read_text(encoding="utf-8")
    assert trained.run_id in card and "| fused score |" in card
    mv = client.get_model_version_by_alias("aml-model-set", "challenger")
    assert str(mv.version) == trained.model_version and mv.run_id == trained.run_id
    assert mv.tags["test_start"] == trained.prepared.split.describe()["test_start"]
    # artifacts live beside the test database, never in the project folder
    assert Path(tracking_uri[len("sqlite:///"):]).parent.joinpath("mlartifacts").is_dir()


def test_registered_model_reloaded_from_mlflow_scores_identically(trained, tmp_path):
    import mlflow

    local = mlflow.artifacts.download_artifacts("models:/aml-model-set@challenger", dst_path=str(tmp_path / "dl"))
    reloaded = ModelSet.load(Path(local) / "artifacts" / "model_set")
    prep = trained.prepared
    rows = np.flatnonzero(prep.split_codes == 2)
    feats = prep.features.iloc[rows]
    pd.testing.assert_frame_equal(reloaded.score_frame(feats, reasons="all"),
                                  trained.model_set.score_frame(feats, reasons="all"))
    x = feats[list(reloaded.feature_names)].to_numpy(dtype=np.float64)[:50]
    a, b = reloaded.score_vector(x), trained.model_set.score_vector(x)
    np.testing.assert_array_equal(a.suspicion_score, b.suspicion_score)
    assert ModelSet.load(local).alert_threshold == trained.model_set.alert_threshold  # the download root works too
    # the pyfunc flavour gives the same frame
    pyfunc = mlflow.pyfunc.load_model("models:/aml-model-set@challenger")
    out = pyfunc.predict(feats[list(reloaded.feature_names)].astype("float64").head(200))
    np.testing.assert_array_equal(out["suspicion_score"].to_numpy(),
                                  trained.model_set.score_frame(feats.head(200))["suspicion_score"].to_numpy())


def test_a_registry_download_of_its_own_goes_with_its_model_set(trained):
    """load_model_set without a destination downloads into a temporary folder, which the model set
    reads lazily (the scikit-learn forest for audits) and which goes when the model set does."""
    import gc

    from amlscore.training.tracking import load_model_set

    reg = load_model_set(alias="challenger")
    folder = Path(reg.model_set.detector._folder)
    assert folder.is_dir() and reg.model_set.detector.load_reference() is not None
    del reg
    gc.collect()
    assert not folder.exists() and not folder.parent.parent.exists()


def _worse(model_set: ModelSet) -> ModelSet:
    """The same model set, but fusing the anomaly score alone."""
    worse = copy.copy(model_set)
    worse.fusion = copy.deepcopy(model_set.fusion)
    worse.fusion.coef_ = np.array([0.0, 0.0, 1.0])
    worse.metadata = dict(model_set.metadata, model_version=None)
    return worse


def _log_challenger(model_set: ModelSet, trained) -> str:
    import mlflow

    from amlscore.training.tracking import configure, log_model_set

    exp = configure("tests")
    with mlflow.start_run(experiment_id=exp):
        tags = {k: v for k, v in mlflow.MlflowClient().get_model_version("aml-model-set", trained.model_version).tags.items()
                if not k.startswith("promot") and k != "previous_champion"}
        _, version = log_model_set(model_set, trained.prepared.features.head(500), tags=tags)
    return version


def test_promotion_refuses_a_worse_challenger_unless_forced(trained):
    from amlscore.training.promote import promote
    from amlscore.training.tracking import CHAMPION, resolve_version

    import mlflow

    client = mlflow.MlflowClient()
    if CHAMPION in client.get_registered_model("aml-model-set").aliases:  # another test may have set one
        client.delete_registered_model_alias("aml-model-set", CHAMPION)
    first = promote()  # no champion yet
    assert first.promoted and str(resolve_version(alias=CHAMPION).version) == trained.model_version
    worse_version = _log_challenger(_worse(trained.model_set), trained)
    refused = promote()
    assert not refused.promoted and "not better" in refused.reason
    assert str(resolve_version(alias=CHAMPION).version) == trained.model_version
    metrics = {name: (a, b) for name, a, b in refused.table}
    assert metrics["pr_auc"][1] < metrics["pr_auc"][0]  # side by side on the same period
    assert resolve_version(worse_version).tags["promotion_decision"] == "refused"
    forced = promote(force=True)
    assert forced.promoted and forced.forced and forced.reason.startswith("forced")
    assert str(resolve_version(alias=CHAMPION).version) == worse_version
    # put the good model back as champion and challenger for the other tests
    from amlscore.training.tracking import CHALLENGER, set_alias

    set_alias(CHAMPION, trained.model_version)
    set_alias(CHALLENGER, trained.model_version)


def _app() -> typer.Typer:
    from amlscore.cli import train as commands

    app = typer.Typer()
    for name in ("evaluate", "promote", "score", "feedback"):
        app.command(name)(getattr(commands, name))
    return app


def test_batch_score_and_evaluate_commands(trained, bank_dir, tmp_path):
    runner = CliRunner()
    out = tmp_path / "scores.parquet"
    res = runner.invoke(_app(), ["score", "--data", str(bank_dir), "--out", str(out), "--alias", "challenger"])
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(out)
    assert list(scores.columns) == ["txn_id", "suspicion_score", "rule_score", "lgbm_probability", "anomaly_score",
                                    "alert", "top_reasons"]
    assert len(scores) == len(trained.prepared.dataset.transactions)
    assert scores["txn_id"].is_unique and scores["alert"].dtype == bool
    assert scores["suspicion_score"].between(0, 100).all()
    assert scores.loc[scores["alert"], "top_reasons"].str.len().gt(0).all()
    results = tmp_path / "eval.json"
    res = runner.invoke(_app(), ["evaluate", "--data", str(bank_dir), "--version", trained.model_version,
                                 "--results-fp", str(results)])
    assert res.exit_code == 0, res.output
    assert "PR-AUC" in res.output and "Recall per typology" in res.output
    payload = json.loads(results.read_text())
    assert payload["label_source"] == "ground_truth"
    assert abs(payload["overall"]["pr_auc"] - trained.test_report.overall["pr_auc"]) < 1e-12


def test_feedback_is_validated_deduplicated_and_used_by_training(trained, bank_dir, tmp_path):
    from amlscore.contract.errors import AmlError
    from amlscore.contract.load import load_dataset
    from amlscore.training.feedback import append_feedback, feedback_files, merge_feedback
    from amlscore.training.labels import derive_labels

    ds = load_dataset(bank_dir)
    txn = ds.transactions.iloc[-5]
    row = {"report_id": "FB1", "customer_id": txn["customer_id"], "txn_id": txn["txn_id"], "period_start": "",
           "period_end": "", "report_date": (txn["timestamp"] + pd.Timedelta(days=3)).strftime("%Y-%m-%d"),
           "label": "suspicious", "typology": ""}
    target = tmp_path / "fb" / "feedback.csv"
    _, added, replaced = append_feedback(pd.DataFrame([row]), ds, feedback_file=target)
    assert (added, replaced) == (1, 0)
    row2 = dict(row, label="not_suspicious")
    _, added, replaced = append_feedback(pd.DataFrame([row2]), ds, feedback_file=target)
    assert (added, replaced) == (0, 1)
    assert pd.read_csv(target)["label"].tolist() == ["not_suspicious"]
    with pytest.raises(AmlError, match="reports contract"):
        append_feedback(pd.DataFrame([dict(row, report_id="FB2", txn_id="NO_SUCH_TXN")]), ds, feedback_file=target)
    merged, n = merge_feedback(ds, feedback_files(bank_dir, [target]))
    assert n == 1 and merged.fingerprint != ds.fingerprint
    lab = derive_labels(merged.transactions, merged.reports, cutoff=None, utc_offset_hours=8).set_index("txn_id")
    assert lab.loc[txn["txn_id"], "status"] == "not_suspicious"


def _as_served_csv(rows: pd.DataFrame, path) -> None:
    """Transactions as the scoring service exports them: contract columns, ISO timestamps, '' for missing."""
    out = rows.astype(object).where(rows.notna(), "")
    out["timestamp"] = rows["timestamp"].map(lambda t: t.isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False)


def test_feedback_on_served_transactions_brings_them_into_training(bank_dir, tmp_path):
    from amlscore.contract.errors import AmlError
    from amlscore.contract.load import Dataset, load_dataset
    from amlscore.training.feedback import SERVED_TRANSACTIONS_FILE, feedback_files, merge_feedback
    from amlscore.training.labels import derive_labels

    full = load_dataset(bank_dir)
    served = full.transactions.iloc[-3:]  # arrived through the service: not in the data folder
    ds = Dataset(full.customers, full.transactions.iloc[:-3].reset_index(drop=True), full.reports, full.source,
                 full.fingerprint, full.warnings)
    export = tmp_path / "state" / "feedback"
    _as_served_csv(served, export / SERVED_TRANSACTIONS_FILE)
    txn = served.iloc[1]
    pd.DataFrame([{"report_id": "SRV1", "customer_id": txn["customer_id"], "txn_id": txn["txn_id"],
                   "period_start": "", "period_end": "",
                   "report_date": (txn["timestamp"] + pd.Timedelta(days=2)).strftime("%Y-%m-%d"),
                   "label": "suspicious", "typology": ""}]).to_csv(export / "feedback_reports.csv", index=False)
    files = feedback_files(tmp_path / "nowhere", [export / "feedback_reports.csv"])
    merged, n = merge_feedback(ds, files)
    assert n == 1 and len(merged.transactions) == len(full.transactions)
    pd.testing.assert_frame_equal(merged.transactions, full.transactions)  # same rows, dtypes and order
    assert merged.fingerprint != ds.fingerprint
    lab = derive_labels(merged.transactions, merged.reports, cutoff=None, utc_offset_hours=8).set_index("txn_id")
    assert lab.loc[txn["txn_id"], "status"] == "suspicious"
    # a served transaction that breaks the contract is refused with its row named, and nothing is merged
    bad = served.copy()
    bad["customer_id"] = "NO_SUCH_CUSTOMER"
    _as_served_csv(bad, export / SERVED_TRANSACTIONS_FILE)
    with pytest.raises(AmlError, match="served transactions .* break the transactions contract"):
        merge_feedback(ds, files)
    # the sidecar itself is never read as a reports file from a data folder
    _as_served_csv(served, tmp_path / "data" / "feedback" / SERVED_TRANSACTIONS_FILE)
    assert feedback_files(tmp_path / "data") == []
