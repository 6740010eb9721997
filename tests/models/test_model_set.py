"""The model set: feature checks, score paths agree, direction, explanations, save/load."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.model_set import FeatureMismatchError, ModelSet, ModelSetError

from model_rows import IDX, random_features


def _frame(X):
    f = pd.DataFrame(X, columns=list(FEATURE_NAMES))
    f.insert(0, "txn_id", [f"T{i}" for i in range(len(f))])
    return f


def test_check_features_lists_unseen_and_missing(model_set):
    names = list(FEATURE_NAMES)
    model_set.check_features(names)
    bad = names[:-2] + ["surprise_feature"]
    with pytest.raises(FeatureMismatchError) as err:
        model_set.check_features(bad)
    text = str(err.value)
    assert "Feature names unseen at fit time:\n- surprise_feature" in text
    assert f"Feature names seen at fit time, yet now missing:\n- {names[-2]}\n- {names[-1]}" in text
    with pytest.raises(FeatureMismatchError, match="same order"):
        model_set.check_features(names[1:2] + names[:1] + names[2:])
    model_set.check_features(names[::-1], require_order=False)
    with pytest.raises(FeatureMismatchError, match="shape"):
        model_set.score_vector(np.zeros((1, 5)))
    with pytest.raises(FeatureMismatchError, match="unseen at fit time"):
        model_set.score_frame(_frame(random_features(3, 1)).assign(extra=1.0))


def test_score_frame_and_score_vector_agree(model_set):
    X = random_features(300, seed=7)
    frame = model_set.score_frame(_frame(X))
    assert list(frame.columns) == ["txn_id", "suspicion_score", "rule_score", "lgbm_probability", "anomaly_score",
                                   "alert", "top_reasons"]
    batch = model_set.score_vector(X)
    np.testing.assert_allclose(batch.suspicion_score, frame["suspicion_score"], rtol=0, atol=1e-9)
    np.testing.assert_array_equal(batch.rule_score, frame["rule_score"])
    np.testing.assert_array_equal(batch.lgbm_probability, frame["lgbm_probability"])
    np.testing.assert_array_equal(batch.anomaly_score, frame["anomaly_score"])
    np.testing.assert_array_equal(batch.alert, frame["alert"].to_numpy())
    one = model_set.score_vector(X[3])
    assert len(one) == 1 and abs(one.suspicion_score[0] - frame["suspicion_score"].iat[3]) < 1e-9
    json.dumps(one.to_dict())
    s = frame["suspicion_score"]
    assert ((s >= 0) & (s <= 100)).all()
    assert (frame["alert"] == (s >= model_set.alert_threshold)).all()
    alerted = frame[frame["alert"]]
    assert alerted["top_reasons"].str.len().gt(0).all()


def test_score_vector_is_fast_for_one_row(model_set):
    x = random_features(1, seed=3)
    model_set.score_vector(x)
    times = []
    for _ in range(200):
        t = time.perf_counter()
        model_set.score_vector(x)
        times.append(time.perf_counter() - t)
    assert np.median(times) < 0.005  # target < 2 ms; the margin absorbs a busy test machine


def test_a_fired_rule_never_lowers_the_score(model_set):
    X = random_features(200, seed=9)
    X[:, IDX["is_high_risk_country"]] = 0.0
    before = model_set.score_vector(X)
    X2 = X.copy()
    X2[:, IDX["is_high_risk_country"]] = 1.0  # fires high_risk_country; also an input of LightGBM
    after = model_set.score_vector(X2)
    assert (after.rule_score >= before.rule_score).all()
    # with the LightGBM probability and anomaly held, a higher rule score never lowers the fused score
    held = model_set.fusion.score(after.rule_score, before.lgbm_probability, before.anomaly_score)
    assert (held >= before.suspicion_score - 1e-12).all()


def test_explanations_name_every_feature_in_the_language_asked(model_set):
    """A compliance officer reading in Chinese sees Chinese labels, one per feature, for every attribution."""
    import re

    cjk = re.compile("[\u4e00-\u9fff]")
    X = random_features(3, seed=5)
    for lang in ("en", "zh"):
        e = model_set.explain_vector(X[0], top_k=len(FEATURE_NAMES), lang=lang)
        labels = [c.label for c in e.lgbm_contributions] + [a.label for a in e.anomaly_attribution]
        assert labels and all(label and label not in FEATURE_NAMES for label in labels), lang
        if lang == "zh":
            assert all(cjk.search(label) or label in ("POS", "ATM") for label in labels), labels
    from amlscore.features.labels import feature_label

    for lang in ("en", "zh"):
        every = [feature_label(n, lang) for n in FEATURE_NAMES]
        assert len(set(every)) == len(FEATURE_NAMES), lang  # no two features read the same
        assert not set(every) & set(FEATURE_NAMES), lang


def test_rounding_noise_is_not_listed_as_a_reason(model_set, monkeypatch):
    """A contribution that is rounding noise (terms of a path cancelling) is left out like an exact zero."""
    X = random_features(1, seed=3)
    real = model_set.classifier.contributions_one(X[0])
    noisy = real.copy()
    noisy[:-1] = 0.0
    noisy[IDX["amount"]], noisy[IDX["is_cash"]], noisy[IDX["in_sum_7d"]] = 0.8, -3e-17, 2e-16
    monkeypatch.setattr(model_set.classifier, "contributions_one", lambda row: noisy)
    e = model_set.explain_vector(X[0], top_k=8, lang="en")
    assert [c.feature for c in e.lgbm_contributions] == ["amount"]


def test_explanation_adds_up_and_serialises(model_set):
    X = random_features(5, seed=11)
    X[0, IDX["near_threshold_cash_cnt_7d"]] = 5
    for lang in ("en", "zh"):
        e = model_set.explain_vector(X[0], top_k=len(FEATURE_NAMES), lang=lang)
        raw = model_set.classifier.booster_.predict(X[:1], raw_score=True)[0]
        total = e.lgbm_expected_value + sum(c.contribution for c in e.lgbm_contributions)
        assert abs(total - raw) < 1e-9
        assert any(r.rule_id == "structuring" for r in e.rules_fired)
        logit = np.log(e.suspicion_score / (100 - e.suspicion_score))
        assert abs(e.fusion_intercept + sum(e.fusion_terms.values()) - logit) < 1e-9
        assert abs(sum(a.share for a in e.anomaly_attribution) - 1) < 1e-9
        json.dumps(e.to_dict(), ensure_ascii=False)
    assert "结构" in e.rules_fired[0].name or e.rules_fired[0].name  # Chinese names come from the config
    with pytest.raises(ValueError, match="'lang'"):
        model_set.explain_vector(X[0], lang="fr")


def test_save_load_gives_identical_scores(model_set, tmp_path):
    model_set.save(tmp_path / "ms")
    again = ModelSet.load(tmp_path / "ms")
    X = random_features(400, seed=13)
    pd.testing.assert_frame_equal(again.score_frame(_frame(X)), model_set.score_frame(_frame(X)))
    assert again.metadata["rules_config_hash"] == model_set.rules_config.hash
    assert again.feature_names == model_set.feature_names
    assert again.alert_threshold == model_set.alert_threshold
    (tmp_path / "ms" / "lgbm.txt").write_text("tampered", encoding="utf-8")
    with pytest.raises(ModelSetError, match="altered"):
        ModelSet.load(tmp_path / "ms")
    with pytest.raises(ModelSetError, match="not a model set"):
        ModelSet.load(tmp_path)


def _same_scores(a, b):
    for name in ("suspicion_score", "rule_score", "lgbm_probability", "anomaly_score", "alert"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.rules_fired == b.rules_fired and a.alert_threshold == b.alert_threshold
    assert [r.score for r in a.rules] == [r.score for r in b.rules]


def test_score_and_explain_equals_score_vector_and_explain_vector(model_set):
    """The one-pass call the service makes gives exactly the two separate calls' results."""
    X = random_features(150, seed=17)
    X[0, IDX["near_threshold_cash_cnt_7d"]] = 5  # a fired rule
    X[1] = np.nan  # every feature undefined
    X[2] = 0.0
    for i, x in enumerate(X):
        for lang in ("en", "zh"):
            top_k = (3, 8, len(FEATURE_NAMES))[i % 3]
            batch, expl = model_set.score_and_explain(x[None, :] if i % 2 else x, top_k=top_k, lang=lang)
            _same_scores(batch, model_set.score_vector(x))
            assert expl.to_dict() == model_set.explain_vector(x, top_k=top_k, lang=lang).to_dict()
            assert json.dumps(expl.to_dict(), sort_keys=True) == json.dumps(
                model_set.explain_vector(x, top_k=top_k, lang=lang).to_dict(), sort_keys=True)
    with pytest.raises(ValueError, match="'lang'"):
        model_set.score_and_explain(X[0], lang="fr")
    with pytest.raises(ValueError, match="one row"):
        model_set.score_and_explain(X[:2])


def test_explanation_holds_lightgbm_treeshap_values(model_set):
    """The attributions are LightGBM's pred_contrib values for the row: the expected value exactly, the
    contributions to rounding (the compiled TreeSHAP of amlscore.models.treeshap sums in another order)."""
    X = random_features(20, seed=19)
    booster = model_set.classifier.booster_
    for x in X:
        e = model_set.explain_vector(x, top_k=len(FEATURE_NAMES))
        contrib = booster.predict(x[None, :], pred_contrib=True)[0]
        assert e.lgbm_expected_value == contrib[-1]
        for c in e.lgbm_contributions:
            assert c.contribution == pytest.approx(contrib[FEATURE_NAMES.index(c.feature)], rel=1e-9, abs=1e-9)
        assert e.components["lgbm_probability"] == booster.predict(x[None, :])[0]
