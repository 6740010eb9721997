"""Fixtures of the report tests: a tiny synthetic bank, its case store, a stand-in model set and audit log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from report_fakes import fake_audit_log, report_model_set  # noqa: E402


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-customer, 60-day synthetic bank in the contract (session-wide, read only)."""
    from amlscore.synth import SynthConfig, generate_bank, write_bank

    folder = tmp_path_factory.mktemp("reports-bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=60, seed=11)), folder)
    return folder


@pytest.fixture(scope="session")
def store(bank_dir: Path) -> Any:
    from amlscore.reports.store import CaseStore

    return CaseStore.open(bank_dir)


@pytest.fixture(scope="session")
def fake_model() -> Any:
    from amlscore.reports.case_types import ModelInfo

    return ModelInfo(model_set=report_model_set(), name="aml-model-set", version="3", alias="champion", run_id="r123")


@pytest.fixture(scope="session")
def busy_customer(store: Any) -> str:
    """The customer with the most transactions in the data set."""
    rows = store.rows
    return max(rows, key=lambda c: rows[c][1] - rows[c][0])


@pytest.fixture(scope="session")
def audit(tmp_path_factory: pytest.TempPathFactory, store: Any, busy_customer: str) -> Any:
    """A throw-away audit log holding decisions on two transactions of ``busy_customer``."""
    return fake_audit_log(tmp_path_factory.mktemp("state") / "audit.sqlite", store, busy_customer)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory, store: Any, bank_dir: Path) -> Path:
    """A real (small) model set fitted on the test bank's features and saved as the registry stores it
    (``<download>/artifacts/model_set``), with an ``MLmodel`` naming its run."""
    import numpy as np
    import pandas as pd

    from amlscore.features.catalogue import FEATURE_NAMES
    from amlscore.features.params import load_feature_params
    from amlscore.models.anomaly import BehaviourAnomalyDetector
    from amlscore.models.fusion import SuspicionFusion, choose_thresholds
    from amlscore.models.model_set import ModelSet
    from amlscore.models.rules import evaluate_rules, load_rules_config
    from amlscore.models.supervised import SuspicionClassifier

    feats = store.table("features")
    truth = pd.read_csv(bank_dir / "ground_truth.csv", dtype={"txn_id": str})
    y = feats["txn_id"].astype(str).isin(truth["txn_id"]).to_numpy().astype(int)
    X = feats[list(FEATURE_NAMES)].to_numpy(dtype=float)
    order = np.random.default_rng(0).permutation(len(X))
    tr, va = order[: len(X) * 2 // 3], order[len(X) * 2 // 3:]
    clf = SuspicionClassifier(n_estimators=30, min_child_samples=10, min_rounds=5, random_state=0)
    clf.fit(X[tr], y[tr], eval_set=(X[va], y[va]))
    det = BehaviourAnomalyDetector(n_estimators=30, random_state=0).fit(X[tr])
    config = load_rules_config()
    r = evaluate_rules(feats.iloc[va], config)["rule_score"].to_numpy()
    p, a = clf.predict_proba(X[va])[:, 1], det.anomaly_score(X[va])
    fusion = SuspicionFusion().fit(r, p, a, y[va])
    thresholds = choose_thresholds(fusion.score(r, p, a), y[va], target_alert_rate=0.02, target_precision=0.5)
    ms = ModelSet(clf, det, fusion, thresholds, config, load_feature_params(), FEATURE_NAMES,
                  {"data_fingerprint": store.fingerprint, "seed": 0})
    root = tmp_path_factory.mktemp("registered") / "download"
    ms.save(root / "artifacts" / "model_set")
    (root / "MLmodel").write_text("artifact_path: somewhere\nrun_id: run-one\n", encoding="utf-8")
    return root
