"""Training with the peer-group anomaly component: the configuration, the fit, the model card, the
saved model set."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FAST

from amlscore.contract.errors import AmlError
from amlscore.models.anomaly import BehaviourAnomalyDetector
from amlscore.models.model_set import ModelSet
from amlscore.models.peer_anomaly import PeerAnomalyConfigError, PeerGroupAnomalyDetector
from amlscore.training.report import model_card_md
from amlscore.training.result import feature_matrix
from amlscore.training.train import TrainConfig, anomaly_detector, train


def test_anomaly_model_settings_are_checked(tmp_path):
    with pytest.raises(AmlError, match="'anomaly_model' parameter must be 'bank' or 'peer_group'. Got 'peers'"):
        TrainConfig(data=tmp_path, anomaly_model="peers")
    bad = tmp_path / "peer.yaml"
    bad.write_text("min_group_rows: 0\n", encoding="utf-8")
    with pytest.raises(PeerAnomalyConfigError, match="'min_group_rows' key in peer.yaml"):
        TrainConfig(data=tmp_path, anomaly_model="peer_group", anomaly_peer_config=str(bad))
    # the bank-wide component does not read the file
    assert TrainConfig(data=tmp_path, anomaly_model="bank", anomaly_peer_config=bad).anomaly_model == "bank"


def test_the_detector_follows_the_configuration_file_and_the_overrides(tmp_path):
    path = tmp_path / "peer.yaml"
    path.write_text("group_by: [is_corporate]\nmin_group_rows: 50\nshrinkage_rows: 10\n", encoding="utf-8")
    det = anomaly_detector(TrainConfig(data=tmp_path, seed=5, anomaly_model="peer_group", anomaly_peer_config=path,
                                       anomaly={"n_estimators": 30, "shrinkage_rows": 20}))
    assert isinstance(det, PeerGroupAnomalyDetector)
    assert (det.min_group_rows, det.shrinkage_rows, det.n_estimators, det.random_state) == (50, 20, 30, 5)
    assert type(anomaly_detector(TrainConfig(data=tmp_path, anomaly_model="bank"))) is BehaviourAnomalyDetector
    assert type(anomaly_detector(TrainConfig(data=tmp_path))) is PeerGroupAnomalyDetector  # the default


def test_training_fits_saves_and_describes_the_peer_group_component(bank_dir, tmp_path):
    config = TrainConfig(data=bank_dir, seed=0, anomaly_model="peer_group", **FAST)
    result = train(config)
    det = result.model_set.detector
    assert isinstance(det, PeerGroupAnomalyDetector)
    assert result.diagnostics["anomaly_model"] == "peer_group"
    assert sum(det.baseline_.rows) <= det.baseline_.bank_rows == result.diagnostics["anomaly_fit_rows"]
    card = model_card_md(result, config)
    assert "measured against the customer's peer group (is_corporate" in card
    assert f"Its fusion weight: {result.model_set.fusion.coef_[2]:.3f}" in card
    result.model_set.save(tmp_path / "ms")
    loaded = ModelSet.load(tmp_path / "ms")
    X = feature_matrix(result.prepared.features, np.flatnonzero(result.prepared.split_codes == 2)[:500])
    np.testing.assert_array_equal(loaded.score_vector(X).anomaly_score, result.model_set.score_vector(X).anomaly_score)
    np.testing.assert_array_equal(loaded.score_vector(X).suspicion_score,
                                  result.model_set.score_vector(X).suspicion_score)


def test_the_train_command_passes_the_anomaly_model_on(tmp_path, train_command_configs, capsys):
    from amlscore.cli import run

    assert run(["train", "--data", str(tmp_path), "--anomaly-model", "peer_group"]) != 0
    assert train_command_configs[-1].anomaly_model == "peer_group"
    assert run(["train", "--data", str(tmp_path), "--anomaly-model", "peers"]) == 2
    assert "'anomaly_model' parameter must be 'bank' or 'peer_group'" in capsys.readouterr().err


def test_the_train_command_passes_the_fusion_floor_on_and_defaults_to_train_config(tmp_path, train_command_configs,
                                                                                   capsys):
    from amlscore.cli import run

    seen = train_command_configs
    assert run(["train", "--data", str(tmp_path), "--fusion-anomaly-floor", "0.75"]) != 0
    assert seen[-1].fusion_anomaly_floor == 0.75
    assert run(["train", "--data", str(tmp_path)]) != 0
    defaults = TrainConfig(data=tmp_path)
    assert (seen[-1].fusion_anomaly_floor, seen[-1].anomaly_model) == (defaults.fusion_anomaly_floor, defaults.anomaly_model)
    assert run(["train", "--data", str(tmp_path), "--fusion-anomaly-floor", "9"]) == 2
    assert "'fusion_anomaly_floor' parameter must be a number in [0, 5]" in capsys.readouterr().err
