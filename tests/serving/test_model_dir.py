"""Serving a saved model set folder (``AML_MODEL_DIR``): what a Bento or a container image carries."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "models"))

from model_rows import random_features  # noqa: E402
from serving_helpers import ADMIN, CHANNEL, COMPLIANCE, last_txn, start_client  # noqa: E402

from amlscore.core.registry import FolderLoader, RegistryUnavailable  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """A small model set fitted on random rows with the packaged rules and feature parameters, saved."""
    import pandas as pd

    from amlscore.features.catalogue import FEATURE_NAMES
    from amlscore.features.params import load_feature_params
    from amlscore.models.anomaly import BehaviourAnomalyDetector
    from amlscore.models.fusion import SuspicionFusion, choose_thresholds
    from amlscore.models.model_set import ModelSet
    from amlscore.models.rules import evaluate_rules, load_rules_config
    from amlscore.models.supervised import SuspicionClassifier

    X = random_features(3000, seed=0)
    y = (np.nan_to_num(X[:, 0]) + np.random.default_rng(1).normal(0, 1, len(X)) > 2).astype(int)
    clf = SuspicionClassifier(n_estimators=20, min_child_samples=10, min_rounds=5, random_state=0)
    clf.fit(X[:2000], y[:2000], eval_set=(X[2000:], y[2000:]))
    det = BehaviourAnomalyDetector(n_estimators=20, random_state=0).fit(X[:2000])
    rules = load_rules_config()
    r = evaluate_rules(pd.DataFrame(X[2000:], columns=list(FEATURE_NAMES)), rules)["rule_score"].to_numpy()
    p, a = clf.predict_proba(X[2000:])[:, 1], det.anomaly_score(X[2000:])
    fusion = SuspicionFusion().fit(r, p, a, y[2000:])
    thresholds = choose_thresholds(fusion.score(r, p, a), y[2000:], target_alert_rate=0.05, target_precision=0.5)
    from amlscore.models.reference import build_reference

    s = fusion.score(r, p, a)
    columns = {n: X[2000:, j] for j, n in enumerate(FEATURE_NAMES)}
    columns.update({"suspicion_score": s, "rule_score": r, "lgbm_probability": p, "anomaly_score": a})
    reference = build_reference(columns, s >= thresholds.alert_threshold, {}, period="random",
                                alert_threshold=thresholds.alert_threshold)
    folder = tmp_path_factory.mktemp("bundle") / "model_set"
    ModelSet(clf, det, fusion, thresholds, rules, load_feature_params(), FEATURE_NAMES,
             {"model_version": "7", "run_id": "abc123"}, reference=reference).save(folder)
    return folder


def test_folder_loader_serves_the_one_version_it_holds(model_dir, tmp_path):
    loader = FolderLoader(model_dir, "aml-model-set")
    loaded = loader.load(alias="champion")
    assert (loaded.version, loaded.run_id, loaded.source) == ("7", "abc123", str(model_dir))
    assert loader.load(version="7") is loaded
    with pytest.raises(RegistryUnavailable, match="version 3 is not in .* holds version 7 only"):
        loader.load(version="3")
    with pytest.raises(RegistryUnavailable, match="does not exist"):
        FolderLoader(tmp_path / "nothing", "aml-model-set").load()


def test_the_service_scores_with_the_model_set_of_aml_model_dir(model_dir, tiny_bank, tiny_dataset, tmp_path):
    import os

    saved = dict(os.environ)
    client = start_client(tiny_bank, tmp_path / "state", None, AML_MODEL_DIR=str(model_dir),
                          MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/no-registry.db")
    try:
        meta = client.post("/v1/metadata", headers=CHANNEL).json()
        assert meta["versions"]["model_version"] == "7"
        r = client.post("/v1/score", json={"transaction": last_txn(tiny_dataset)}, headers=CHANNEL)
        assert r.status_code == 200, r.text
        assert 0 <= r.json()["suspicion_score"] <= 100
        assert not (tmp_path / "no-registry.db").exists()  # no registry was asked
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


def test_the_service_keeps_per_day_drift_figures_across_a_restart(model_dir, tiny_bank, tiny_dataset, tmp_path):
    import os

    saved = dict(os.environ)
    env = {"AML_MODEL_DIR": str(model_dir), "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/no-registry.db"}
    txns = [last_txn(tiny_dataset, k) for k in range(5)]
    client = start_client(tiny_bank, tmp_path / "state", None, **env)
    try:
        for t in txns:
            assert client.post("/v1/score", json={"transaction": t, "explain": False}, headers=CHANNEL).status_code == 200
        assert client.post("/v1/admin/drift", json={}, headers=CHANNEL).status_code == 403
        d = client.post("/v1/admin/drift", json={}, headers=COMPLIANCE).json()
        assert d["model_version"] == "7" and d["rows"] == 5 and d["days"] == [d["day"]]
        assert set(d["psi"]) >= {"amount", "suspicion_score"} and d["worst_psi"]["psi"] == max(d["psi"].values())
        assert sum(c["rows"] for c in d["segments"]["channel"].values()) == 5
        assert client.post("/v1/admin/drift", json={"day": "2020-13-01"}, headers=ADMIN).status_code == 400
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)
    assert list((tmp_path / "state" / "monitoring" / "daily" / "7").glob("*.json"))
    client = start_client(tiny_bank, tmp_path / "state", None, **env)
    try:
        again = client.post("/v1/admin/drift", json={"day": d["day"]}, headers=ADMIN).json()
        assert again["rows"] == 5 and again["psi"] == d["psi"]
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


def test_drift_watch_publishes_the_day_to_the_prometheus_gauges(model_dir, tmp_path):
    from prometheus_client import REGISTRY

    from amlscore.models.model_set import ModelSet
    from amlscore.serving.drift_watch import DriftWatch
    from amlscore.serving.telemetry import drift_gauges

    ms = ModelSet.load(model_dir)
    published: list[dict] = []
    gauges = drift_gauges()

    def both(summary: dict) -> None:
        published.append(summary)
        gauges(summary)

    watch = DriftWatch(ms, "7", tmp_path, publish_every=3, save_every=1000, on_summary=both)
    X = random_features(7, seed=5)
    batch = ms.score_vector(X)
    for i in range(7):
        watch.observe("2026-12-01", X[i], (batch.suspicion_score[i], batch.rule_score[i], batch.lgbm_probability[i],
                                           batch.anomaly_score[i]), bool(batch.alert[i]), "atm", "individual")
    assert [s["rows"] for s in published] == [3, 6]
    last = published[-1]
    assert REGISTRY.get_sample_value("amlscore_worst_psi") == pytest.approx(last["worst_psi"]["psi"])
    assert REGISTRY.get_sample_value("amlscore_psi", {"column": "amount"}) == pytest.approx(last["psi"]["amount"])
    assert REGISTRY.get_sample_value("amlscore_alert_rate") == pytest.approx(last["alert_rate"])
    assert REGISTRY.get_sample_value("amlscore_score_quantile", {"quantile": "0.5"}) == last["score_quantiles"]["q0.5"]
    assert not (tmp_path / "monitoring").exists()  # not saved before save_every decisions
    watch.save()
    assert (tmp_path / "monitoring" / "daily" / "7" / "2026-12-01.json").is_file()
