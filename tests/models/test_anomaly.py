"""The compiled IsolationForest equals scikit-learn's; direction, attribution and persistence."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.anomaly import BEHAVIOUR_FEATURES, BehaviourAnomalyDetector, CompiledIsolationForest


@pytest.mark.parametrize("max_features", [1.0, 0.6])
@pytest.mark.parametrize("max_samples", [64, 256])
def test_compiled_forest_equals_sklearn_score_samples(max_features, max_samples):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 12))
    X[rng.random(X.shape) < 0.05] = np.nan  # missing values take each node's learned side
    forest = IsolationForest(n_estimators=60, max_samples=max_samples, max_features=max_features, random_state=0).fit(X)
    compiled = CompiledIsolationForest.from_sklearn(forest)
    Y = rng.normal(scale=2.0, size=(2000, 12))
    Y[rng.random(Y.shape) < 0.05] = np.nan
    assert np.max(np.abs(compiled.score_samples(Y) - forest.score_samples(Y))) <= 1e-12
    assert np.max(np.abs(compiled.anomaly_score(Y) + forest.score_samples(Y))) <= 1e-12


def test_compiled_forest_round_trips_through_npz(tmp_path):
    rng = np.random.default_rng(1)
    forest = IsolationForest(n_estimators=20, random_state=0).fit(rng.normal(size=(500, 5)))
    compiled = CompiledIsolationForest.from_sklearn(forest)
    compiled.to_npz(tmp_path / "f.npz")
    again = CompiledIsolationForest.from_npz(tmp_path / "f.npz")
    Y = rng.normal(size=(100, 5))
    np.testing.assert_array_equal(again.score_samples(Y), compiled.score_samples(Y))


def _matrix(n, seed):
    rng = np.random.default_rng(seed)
    return np.abs(rng.normal(size=(n, len(FEATURE_NAMES))))


def test_detector_direction_higher_is_more_anomalous():
    X = _matrix(3000, 0)
    det = BehaviourAnomalyDetector(n_estimators=100, random_state=0).fit(X)
    odd = X[:5].copy()
    odd[:, FEATURE_NAMES.index("fan_in_7d")] = 500.0
    odd[:, FEATURE_NAMES.index("device_customers_7d")] = 80.0
    normal, anomalous = det.anomaly_score(X[:5]), det.anomaly_score(odd)
    assert (anomalous > normal).all()
    assert ((anomalous > 0) & (anomalous <= 1)).all()
    # scikit-learn's conventions are kept for score_samples / decision_function / predict
    np.testing.assert_array_equal(det.score_samples(odd), -anomalous)
    assert set(np.unique(det.predict(X[:50]))) <= {-1, 1}


def test_detector_scores_equal_the_reference_forest(tmp_path):
    from amlscore.models.anomaly import transform_behaviour

    X = _matrix(1500, 2)
    det = BehaviourAnomalyDetector(n_estimators=40, random_state=0).fit(X)
    Z = transform_behaviour(X, det.feature_indices_)
    assert np.max(np.abs(det.score_samples(X) - det.iforest_.score_samples(Z))) <= 1e-12
    spec = det.to_dir(tmp_path)
    again = BehaviourAnomalyDetector.from_dir(tmp_path, spec)
    np.testing.assert_array_equal(again.anomaly_score(X), det.anomaly_score(X))
    assert again.load_reference().n_estimators == 40


def test_attribution_credits_the_feature_that_isolates():
    X = _matrix(3000, 3)
    det = BehaviourAnomalyDetector(n_estimators=100, random_state=0).fit(X)
    row = np.median(X, axis=0)  # an ordinary row ...
    row[FEATURE_NAMES.index("device_customers_7d")] = 1e6  # ... but for one feature
    attribution = det.attribution(row)
    shares = np.array([s for _, _, s in attribution])
    assert np.isclose(shares.sum(), 1.0) and (shares >= 0).all()
    assert attribution[0][0] == "device_customers_7d"
    assert attribution[0][1] == 1e6
    assert {name for name, _, _ in attribution} <= set(BEHAVIOUR_FEATURES)


def test_parameter_validation_names_parameter_allowed_and_received():
    with pytest.raises(ValueError, match=r"The 'n_estimators' parameter of BehaviourAnomalyDetector must be .* Got 0 instead"):
        BehaviourAnomalyDetector(n_estimators=0).fit(_matrix(50, 0))
    with pytest.raises(ValueError, match="must name features of the catalogue"):
        BehaviourAnomalyDetector(features=("no_such_feature",)).fit(_matrix(50, 0))


def test_score_and_attribution_equals_the_two_calls():
    X = _matrix(2000, 3)
    X[np.random.default_rng(4).random(X.shape) < 0.05] = np.nan
    det = BehaviourAnomalyDetector(n_estimators=40, random_state=0).fit(X[:1500])
    for row in X[1500:1700]:
        score, attribution = det.score_and_attribution(row)
        assert score == det.anomaly_score(row[None, :])[0]
        assert repr(attribution) == repr(det.attribution(row))  # repr: NaN values compare equal
    with pytest.raises(ValueError, match="one row"):
        det.score_and_attribution(X[0, :10])
