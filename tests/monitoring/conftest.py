"""Fixtures for monitoring tests: a small synthetic bank, a model set trained on it (saved to a folder,
no MLflow), and a copy of the bank whose cash share is doubled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from drift_data import double_cash_share  # noqa: E402

from amlscore.synth.bank import generate_bank, write_bank  # noqa: E402
from amlscore.synth.config import SynthConfig  # noqa: E402

# Small and quick: every setting that only costs time is turned down.
FAST = {"lgbm": {"n_estimators": 60, "min_rounds": 10, "early_stopping_rounds": 20},
        "anomaly": {"n_estimators": 50}, "max_train_negatives": 20_000, "anomaly_fit_rows": 20_000}


@pytest.fixture(scope="session")
def bank_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bank") / "data"
    write_bank(generate_bank(SynthConfig(customers=200, days=150, seed=3)), folder)
    return folder


@pytest.fixture(scope="session")
def model_set_dir(bank_dir, tmp_path_factory) -> Path:
    """A model set trained on the bank (validation period = its drift reference), saved to a folder."""
    from amlscore.training.train import TrainConfig, train

    # The fusion fitted on the validation period, which gives the rule score a weight here: the backtests
    # of a rules change need one (the default out-of-fold fusion may weigh the rule score 0, and a rules
    # change then moves no fused alert, which the backtest reports as such). The bank-wide anomaly score
    # without a floor, as before the gated floor became the default: with it, this small bank's anomaly
    # score takes the alerts the structuring rule decided, and raising the rule's threshold removes none.
    result = train(TrainConfig(data=bank_dir, seed=0, fusion_fit="valid", pu="none", fusion_refit=False,
                               anomaly_model="bank", fusion_anomaly_floor=0.0, **FAST))
    assert result.model_set.fusion.coef_[0] > 0, "the fixture's fusion gives the rule score no weight"
    folder = tmp_path_factory.mktemp("models") / "model_set"
    result.model_set.save(folder)
    return folder


@pytest.fixture(scope="session")
def doubled_cash_dir(bank_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("doubled") / "data"
    double_cash_share(bank_dir, folder)
    return folder
