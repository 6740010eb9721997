"""Fusion: monotone in every component, calibrated scale, direction; thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from amlscore.models.fusion import SuspicionFusion, choose_thresholds


def _data(n=3000, seed=0, anomaly_sign=1.0):
    rng = np.random.default_rng(seed)
    r = rng.choice([0.0, 30.0, 50.0, 65.0], size=n, p=[0.85, 0.07, 0.05, 0.03])
    p = 1 / (1 + np.exp(-rng.normal(-4, 2, n)))
    a = rng.uniform(0.35, 0.75, n)
    logit = -5 + 2 * r / 100 + 1.0 * np.log(p / (1 - p)) / 2 + anomaly_sign * 3 * (a - 0.5)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return r, p, a, y


def test_scores_are_between_0_and_100_and_higher_means_more_suspicious():
    r, p, a, y = _data()
    fusion = SuspicionFusion().fit(r, p, a, y)
    s = fusion.score(r, p, a)
    assert ((s >= 0) & (s <= 100)).all()
    assert s[y == 1].mean() > s[y == 0].mean()
    assert (fusion.coef_ >= 0).all()


@pytest.mark.parametrize("anomaly_sign", [1.0, -1.0])
def test_fusion_is_monotone_in_each_component(anomaly_sign):
    r, p, a, y = _data(anomaly_sign=anomaly_sign)
    fusion = SuspicionFusion().fit(r, p, a, y)
    assert (fusion.coef_ >= 0).all()  # even when the data would rather have a negative weight
    rng = np.random.default_rng(5)
    base = (rng.uniform(0, 100, 500), rng.uniform(0, 1, 500), rng.uniform(0, 1, 500))
    s0 = fusion.score(*base)
    for k, step in enumerate((10.0, 0.05, 0.05)):
        moved = list(base)
        moved[k] = np.minimum(moved[k] + step, 100.0 if k == 0 else 1.0)
        assert (fusion.score(*moved) >= s0).all(), f"component {k} lowered the score"


def test_calibrated_on_the_fitting_data():
    r, p, a, y = _data(n=20000, seed=2)
    fusion = SuspicionFusion(C=100.0).fit(r, p, a, y)
    s = fusion.score(r, p, a) / 100
    # a logistic fit with an intercept reproduces the base rate
    assert abs(s.mean() - y.mean()) < 0.005


def test_score_one_equals_vectorised_and_round_trips():
    r, p, a, y = _data()
    fusion = SuspicionFusion().fit(r, p, a, y)
    again = SuspicionFusion.from_dict(fusion.to_dict())
    s = again.score(r[:20], p[:20], a[:20])
    one = np.array([again.score_one(r[i], p[i], a[i])[0] for i in range(20)])
    np.testing.assert_allclose(one, s, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(again.score(r, p, a), fusion.score(r, p, a))


def test_zero_weight_rows_are_ignored_and_one_class_fails():
    r, p, a, y = _data()
    w = np.ones(len(y))
    w[:100] = 0
    SuspicionFusion().fit(r, p, a, y, sample_weight=w)
    with pytest.raises(ValueError, match="both classes"):
        SuspicionFusion().fit(r, p, a, np.zeros(len(y)))


def test_thresholds_for_alert_rate_and_precision():
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 100, 10000)
    y = (rng.random(10000) < s / 100 * 0.2).astype(int)
    t = choose_thresholds(s, y, target_alert_rate=0.01, target_precision=0.15)
    assert abs((s >= t.rate_threshold).mean() - 0.01) < 0.001
    assert t.precision_met
    alert = s >= t.precision_threshold
    assert y[alert].mean() >= 0.15
    assert t.alert_threshold == t.rate_threshold
    t2 = choose_thresholds(s, y, target_alert_rate=0.01, target_precision=0.99, policy="precision")
    assert not t2.precision_met and t2.alert_threshold == t2.precision_threshold
    with pytest.raises(ValueError, match="target_alert_rate"):
        choose_thresholds(s, y, target_alert_rate=1.5)


def test_a_floor_holds_a_component_the_labels_would_drop_and_leaves_a_stronger_one_free():
    r, p, a, y = _data(anomaly_sign=-1.0)  # the labels would rather weigh the anomaly score negatively
    free = SuspicionFusion().fit(r, p, a, y)
    assert free.coef_[2] == 0 and not free.at_floor_.any()
    held = SuspicionFusion(min_log_odds_per_sd=(0.0, 0.0, 0.8)).fit(r, p, a, y)
    # the standardised weight is at the floor: one standard deviation moves the log-odds by 0.8
    assert held.coef_[2] * a.std() == pytest.approx(0.8, rel=1e-6)
    assert held.at_floor_.tolist() == [False, False, True]
    # a floor below what the labels give is not binding: the same fit as without it
    r2, p2, a2, y2 = _data(anomaly_sign=1.0)
    loose = SuspicionFusion(min_log_odds_per_sd=(0.0, 0.0, 0.01)).fit(r2, p2, a2, y2)
    np.testing.assert_allclose(loose.coef_, SuspicionFusion().fit(r2, p2, a2, y2).coef_, rtol=1e-5)
    assert not loose.at_floor_.any()
    # saved and loaded with its floor
    again = SuspicionFusion.from_dict(held.to_dict())
    assert again.min_log_odds_per_sd == [0.0, 0.0, 0.8] and again.at_floor_.tolist() == [False, False, True]
    np.testing.assert_array_equal(again.score(r, p, a), held.score(r, p, a))


def test_a_floor_on_a_constant_component_does_not_bind_and_bad_floors_are_refused():
    r, p, a, y = _data()
    flat = SuspicionFusion(min_log_odds_per_sd=(0.0, 0.0, 1.0)).fit(r, p, np.full_like(a, 0.5), y)
    assert not flat.at_floor_.any()
    for bad in ((0.0, 1.0), (0.0, 0.0, -0.5), (0.0, 0.0, float("nan"))):
        with pytest.raises(ValueError, match="'min_log_odds_per_sd' parameter must be 3 finite numbers >= 0"):
            SuspicionFusion(min_log_odds_per_sd=bad).fit(r, p, a, y)
