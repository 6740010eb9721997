"""Fixtures for training tests: a small synthetic bank and a throw-away MLflow store.

Every test here uses ``MLFLOW_TRACKING_URI=sqlite:///<tmp>/mlflow.db``: nothing touches the
project's own store.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amlscore.core.registry import process_wide_mlflow_uri
from amlscore.synth.bank import generate_bank, write_bank
from amlscore.synth.config import SynthConfig

# Small and quick: every setting that only costs time is turned down.
FAST = {"lgbm": {"n_estimators": 60, "min_rounds": 10, "early_stopping_rounds": 20},
        "anomaly": {"n_estimators": 50}, "max_train_negatives": 20_000, "anomaly_fit_rows": 20_000}


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=150, seed=3)), folder)
    return folder


@pytest.fixture(scope="session")
def tracking_uri(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{folder}/mlflow.db"
    # both MLFLOW_TRACKING_URI and MLFLOW_REGISTRY_URI (MLflow writes the latter into the environment too;
    # left over from another module's store, it sent this module's models:/ URIs there), put back after
    with process_wide_mlflow_uri(uri):
        yield uri


@pytest.fixture(scope="session")
def trained(bank_dir, tracking_uri):
    """One logged and registered training run on the small bank (alias @challenger)."""
    from amlscore.training.pipeline import train_and_register
    from amlscore.training.train import TrainConfig

    config = TrainConfig(data=bank_dir, seed=0, **FAST)
    return train_and_register(config, experiment="tests")


@pytest.fixture
def train_command_configs(monkeypatch) -> list:
    """The ``TrainConfig`` of each ``amlscore train`` call the test makes; every call stops with an error
    before any data is read."""
    import amlscore.training.pipeline as pipeline
    from amlscore.contract.errors import AmlError

    seen: list = []

    def fake_training(config, report, experiment):
        seen.append(config)
        raise AmlError("stopped by the test")

    monkeypatch.setattr(pipeline, "train_and_register", fake_training)
    return seen
