"""The LightGBM wrapper: sklearn conventions, early stopping on PR-AUC, persistence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.models.supervised import NotFittedError, SuspicionClassifier


def _xy(n=2000, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    y = (X[:, 0] + 0.5 * X[:, 1] + rng.normal(0, 0.5, n) > 2.0).astype(int)
    return X, y


def test_fit_returns_self_and_probabilities_rank_positives_higher():
    X, y = _xy()
    clf = SuspicionClassifier(n_estimators=50, min_child_samples=10, random_state=0)
    assert clf.fit(X[:1500], y[:1500], eval_set=(X[1500:], y[1500:])) is clf
    p = clf.predict_proba(X[1500:])
    assert p.shape == (500, 2) and np.allclose(p.sum(axis=1), 1)
    assert p[y[1500:] == 1, 1].mean() > p[y[1500:] == 0, 1].mean()
    assert 1 <= clf.best_iteration_ <= 50 and clf.best_score_ is not None
    assert clf.booster_.current_iteration() == clf.best_iteration_


def test_min_rounds_is_respected_by_early_stopping():
    X, y = _xy(seed=1)
    clf = SuspicionClassifier(n_estimators=60, min_rounds=30, early_stopping_rounds=1, random_state=0)
    clf.fit(X[:1500], y[:1500], eval_set=(X[1500:], y[1500:]))
    assert clf.best_iteration_ >= 30


def test_contributions_sum_to_the_raw_score():
    X, y = _xy()
    clf = SuspicionClassifier(n_estimators=30, random_state=0).fit(X, y)
    c = clf.contributions(X[:10])
    raw = clf.booster_.predict(X[:10], raw_score=True)
    np.testing.assert_allclose(c.sum(axis=1), raw, atol=1e-9)


def test_text_round_trip_gives_identical_predictions():
    X, y = _xy()
    clf = SuspicionClassifier(n_estimators=30, random_state=0).fit(X, y)
    again = SuspicionClassifier.from_text(clf.to_text(), clf.describe())
    np.testing.assert_array_equal(again.predict_proba(X), clf.predict_proba(X))


def test_same_seed_same_model():
    X, y = _xy()
    a = SuspicionClassifier(n_estimators=20, random_state=3).fit(X, y)
    b = SuspicionClassifier(n_estimators=20, random_state=3).fit(X, y)
    assert a.to_text() == b.to_text()


def test_errors_are_clear():
    with pytest.raises(NotFittedError, match="No booster found. Need to call fit beforehand."):
        SuspicionClassifier().predict_proba(np.zeros((1, 3)))
    X, y = _xy()
    with pytest.raises(ValueError, match=r"The 'learning_rate' parameter of SuspicionClassifier must be .* Got 0 instead"):
        SuspicionClassifier(learning_rate=0).fit(X, y)
    with pytest.raises(ValueError, match="both classes"):
        SuspicionClassifier().fit(X, np.zeros(len(X)))
    clf = SuspicionClassifier(n_estimators=5).fit(pd.DataFrame(X, columns=list("abcdef")), y)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict_proba(pd.DataFrame(X, columns=list("fedcba")))


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402


@parametrize_with_checks(
    [SuspicionClassifier(n_estimators=5, min_child_samples=1, random_state=0)],
    expected_failed_checks=lambda est: {
        "check_sample_weight_equivalence_on_dense_data":
            "LightGBM counts rows, not weights, for min_child_samples, and bagging samples rows: "
            "a weight of 2 is not the same as a repeated row",
    },
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_single_row_path_gives_booster_predict_to_the_last_bit():
    """predict_one and the single-row C API's contributions equal Booster.predict exactly; contributions_one
    (the compiled TreeSHAP of amlscore.models.treeshap, another summation order) equals it to rounding."""
    import pickle

    X, y = _xy(3000, seed=4)
    X[np.random.default_rng(5).random(X.shape) < 0.05] = np.nan  # missing values follow each node's default side
    clf = SuspicionClassifier(n_estimators=40, min_child_samples=10, random_state=0).fit(X[:2000], y[:2000])
    assert clf._single_row() is not None  # the fast path is in use with this LightGBM
    for row in X[2000:2300]:
        one = row[None, :]
        assert clf.predict_one(one).shape == (1,)
        assert clf.predict_one(one)[0] == clf.booster_.predict(one, num_threads=1)[0]
        contrib = clf.booster_.predict(one, pred_contrib=True)[0]
        np.testing.assert_array_equal(clf._single_row().contributions(row), contrib)
        np.testing.assert_allclose(clf.contributions_one(row), contrib, rtol=1e-9, atol=1e-9)
    several = X[2300:2310]
    np.testing.assert_array_equal(clf.predict_one(several), clf.booster_.predict(several, num_threads=1))
    again = pickle.loads(pickle.dumps(clf))  # the C handle is not pickled; it is made again on first use
    assert "_single_row_predictor" not in again.__getstate__()
    assert again.predict_one(X[:1])[0] == clf.predict_one(X[:1])[0]
    clf.fit(X[:1000], y[:1000])  # a new booster gets a new single-row predictor
    assert clf.predict_one(X[:1])[0] == clf.booster_.predict(X[:1], num_threads=1)[0]
    with pytest.raises(ValueError, match="a row of 6 features"):
        clf.contributions_one(X[0, :5])
