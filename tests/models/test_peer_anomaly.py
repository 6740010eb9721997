"""The peer-group anomaly component: its statistics, shrinkage, batch/one-row parity, configuration
errors and the model set round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_rows import IDX, random_features

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.params import load_feature_params
from amlscore.models.anomaly import BehaviourAnomalyDetector
from amlscore.models.model_set import ModelSet, ModelSetError
from amlscore.models.peer_anomaly import (
    DEFAULT_PEER_ANOMALY_CONFIG,
    PEER_GROUPS_FILE,
    PeerAnomalyConfig,
    PeerAnomalyConfigError,
    PeerBaseline,
    PeerGroupAnomalyDetector,
    load_peer_anomaly_config,
    robust_centre_scale,
)

CORP = IDX["is_corporate"]
FAN_IN, CASH = IDX["fan_in_7d"], IDX["cash_share_30d"]


def _two_segments(n: int, seed: int, corporate_share: float = 0.3) -> np.ndarray:
    """Rows where corporates normally have a high fan-in and a low cash share, individuals the reverse."""
    rng = np.random.default_rng(seed)
    X = np.abs(rng.normal(size=(n, len(FEATURE_NAMES))))
    corp = rng.random(n) < corporate_share
    X[:, CORP] = corp.astype(float)
    X[:, FAN_IN] = np.where(corp, rng.normal(40.0, 4.0, n), rng.normal(1.0, 0.3, n)).clip(0)
    X[:, CASH] = np.where(corp, rng.uniform(0.0, 0.05, n), rng.uniform(0.5, 0.9, n))
    return X


def _t(v: np.ndarray) -> np.ndarray:
    return np.sign(v) * np.log1p(np.abs(v))


# -- robust statistics -----------------------------------------------------------------------------


def test_robust_scale_is_mad_then_mean_deviation_then_one():
    T = np.column_stack([
        [1.0, 2.0, 3.0, 4.0, 100.0],  # MAD 1 -> 1.4826
        [0.0, 0.0, 0.0, 0.0, 5.0],  # MAD 0 -> 1.2533 * mean |t - 0| = 1.2533 * 1
        [2.0, 2.0, 2.0, 2.0, 2.0],  # constant -> 1
        [np.nan, 1.0, np.nan, 3.0, 5.0],  # NaN ignored: median 3, MAD 2
    ])
    centre, scale = robust_centre_scale(T)
    np.testing.assert_allclose(centre, [3.0, 0.0, 2.0, 3.0])
    np.testing.assert_allclose(scale, [1.4826, 1.2533, 1.0, 2 * 1.4826])
    centre, scale = robust_centre_scale(np.full((3, 1), np.nan))
    assert np.isnan(centre[0]) and np.isnan(scale[0])


def test_fit_learns_each_groups_median_and_mad():
    X = _two_segments(4000, 0)
    det = PeerGroupAnomalyDetector(n_estimators=20, min_group_rows=50, shrinkage_rows=0, random_state=0).fit(X)
    b = det.baseline_
    assert b.keys == ("is_corporate=0", "is_corporate=1")
    corp = X[:, CORP] == 1
    assert b.rows == (int((~corp).sum()), int(corp.sum())) and b.bank_rows == 4000
    assert b.weights == (1.0, 1.0)  # no shrinkage asked
    j = det.feature_names_.index("fan_in_7d")
    for slot, members in ((0, ~corp), (1, corp)):
        t = _t(X[members, FAN_IN])
        med = np.median(t)
        assert b.centres[slot, j] == pytest.approx(med, rel=1e-12)
        assert b.scales[slot, j] == pytest.approx(1.4826 * np.median(np.abs(t - med)), rel=1e-12)
    assert b.centres[-1, j] == pytest.approx(np.median(_t(X[:, FAN_IN])), rel=1e-12)  # the bank's, last


def test_shrinkage_pulls_a_small_group_toward_the_bank_and_tiny_groups_use_the_bank():
    X = _two_segments(3000, 1, corporate_share=0.1)
    n_corp = int((X[:, CORP] == 1).sum())
    k = 400.0
    shrunk = PeerGroupAnomalyDetector(n_estimators=10, min_group_rows=50, shrinkage_rows=k, random_state=0).fit(X)
    raw = PeerGroupAnomalyDetector(n_estimators=10, min_group_rows=50, shrinkage_rows=0, random_state=0).fit(X)
    w = n_corp / (n_corp + k)
    assert shrunk.baseline_.weights[1] == pytest.approx(w)
    bank_c, bank_s = raw.baseline_.centres[-1], raw.baseline_.scales[-1]
    np.testing.assert_allclose(shrunk.baseline_.centres[1], w * raw.baseline_.centres[1] + (1 - w) * bank_c, rtol=1e-12)
    np.testing.assert_allclose(shrunk.baseline_.scales[1], w * raw.baseline_.scales[1] + (1 - w) * bank_s, rtol=1e-12)
    # the large group is shrunk less than the small one
    assert shrunk.baseline_.weights[0] > shrunk.baseline_.weights[1]
    # below min_group_rows a group has no statistics of its own and is measured against the bank
    alone = PeerGroupAnomalyDetector(n_estimators=10, min_group_rows=n_corp + 1, random_state=0).fit(X)
    assert alone.baseline_.keys == ("is_corporate=0",)
    corp_row = X[X[:, CORP] == 1][0]
    assert alone.peer_group_of(corp_row) == "bank"
    t = _t(corp_row[alone.feature_indices_])
    expected = (t - alone.baseline_.centres[-1]) / alone.baseline_.scales[-1]
    np.testing.assert_allclose(alone._input(corp_row[None, :])[0], np.nan_to_num(expected), rtol=1e-12)


@pytest.mark.parametrize("seed", [2, 12, 22])
def test_a_groups_normal_behaviour_is_not_anomalous_but_anothers_is(seed):
    X = _two_segments(6000, seed)
    # few features, so that the two that tell the segments apart decide (the rest is noise here)
    features = ("fan_in_7d", "cash_share_30d", "night_share_30d", "fan_out_7d")
    bank = BehaviourAnomalyDetector(features=features, n_estimators=150, random_state=seed).fit(X)
    peer = PeerGroupAnomalyDetector(features=features, n_estimators=150, min_group_rows=100, random_state=seed).fit(X)
    test = _two_segments(2000, seed + 1)
    corp = test[test[:, CORP] == 1]
    # an individual behaving like a corporate (high fan-in, no cash): ordinary bank-wide, odd among peers
    mimic = test[test[:, CORP] == 0].copy()
    mimic[:, FAN_IN], mimic[:, CASH] = corp[: len(mimic), FAN_IN].mean(), 0.02

    def share_above(det: BehaviourAnomalyDetector, rows: np.ndarray) -> float:
        """Share of the test rows that score below the median of ``rows``: how unusual ``rows`` look."""
        return float(np.mean(det.anomaly_score(test) < np.median(det.anomaly_score(rows))))

    assert share_above(peer, mimic) > 0.95  # more anomalous than nearly every real row
    assert share_above(peer, mimic) > share_above(bank, mimic) + 0.2
    # the corporates' own behaviour ranks less anomalous once measured against corporates
    assert share_above(peer, corp) < share_above(bank, corp)


def test_peer_deviations_and_attribution_name_the_feature_off_its_peers():
    X = _two_segments(4000, 4)
    det = PeerGroupAnomalyDetector(n_estimators=150, min_group_rows=100, random_state=0).fit(X)
    row = np.median(X[X[:, CORP] == 0], axis=0)
    row[FAN_IN] = 40.0  # a corporate's fan-in on an individual
    name, raw, peer_median, z = det.peer_deviations(row)[0]
    assert name == "fan_in_7d" and raw == 40.0 and z > 5
    assert peer_median == pytest.approx(np.median(X[X[:, CORP] == 0, FAN_IN]), rel=0.05)
    assert det.attribution(row)[0][0] == "fan_in_7d"


# -- parity: one row online = the batch -----------------------------------------------------------------


@pytest.mark.parametrize("forest", ["shared", "per_group"])
def test_one_row_scores_equal_the_batch_bit_for_bit(forest):
    X = _two_segments(3000, 5)
    det = PeerGroupAnomalyDetector(n_estimators=60, min_group_rows=100, forest=forest, random_state=0).fit(X)
    Y = _two_segments(300, 6)
    Y[np.random.default_rng(7).random(Y.shape) < 0.05] = np.nan  # undefined features and unknown groups
    Y[:5, CORP] = 7.0  # a group never seen in training: the bank's statistics
    batch = det.anomaly_score(Y)
    for i, row in enumerate(Y):
        score, attribution = det.score_and_attribution(row)
        assert score == batch[i]
        np.testing.assert_equal(attribution, det.attribution(row))  # (NaN raw values compare equal here)
        assert det.anomaly_score(row[None, :])[0] == batch[i]
    assert {det.peer_group_of(r) for r in Y[:5]} == {"bank"}


# -- configuration ------------------------------------------------------------------------------------


def test_the_packaged_configuration_loads():
    config = load_peer_anomaly_config()
    assert config == load_peer_anomaly_config(DEFAULT_PEER_ANOMALY_CONFIG)
    assert config.group_by == ("is_corporate",) and config.min_group_rows >= 2
    det = PeerGroupAnomalyDetector(**config.estimator_params())
    assert det.get_params()["shrinkage_rows"] == config.shrinkage_rows


@pytest.mark.parametrize(("text", "words"), [
    ("group_by: [no_such_feature]\n", ["group_by", "no_such_feature"]),
    ("group_by: [cash_share_30d]\n", ["group_by", "flag or code", "cash_share_30d", "ratio"]),
    ("group_by: []\n", ["group_by"]),
    ("features: [fan_in_7d, is_corporate]\n", ["is_corporate", "both"]),
    ("features: [fan_in_7d, fan_in_7d]\n", ["features", "more than once"]),
    ("min_group_rows: 1\n", ["min_group_rows", "greater than or equal to 2", "1"]),
    ("shrinkage_rows: -5\n", ["shrinkage_rows", "-5"]),
    ("shrinkage_rows: .inf\n", ["shrinkage_rows"]),
    ("group_by_typo: [is_corporate]\n", ["group_by_typo", "extra"]),
    ("forest: per_customer\n", ["forest", "per_group", "per_customer"]),
    ("- a list\n", ["mapping"]),
    ("group_by: [is_corporate\n", ["not valid YAML"]),
])
def test_configuration_errors_name_the_file_and_the_key(tmp_path, text, words):
    path = tmp_path / "peer.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PeerAnomalyConfigError) as info:
        load_peer_anomaly_config(path)
    message = str(info.value)
    assert "peer.yaml" in message
    for word in words:
        assert word in message


def test_a_missing_configuration_file_is_named(tmp_path):
    with pytest.raises(PeerAnomalyConfigError, match="not found: .*absent.yaml"):
        load_peer_anomaly_config(tmp_path / "absent.yaml")


def test_parameters_given_in_code_follow_the_same_rules():
    X = _two_segments(500, 8)
    with pytest.raises(ValueError, match="flag or code"):
        PeerGroupAnomalyDetector(group_by=("amount",), n_estimators=5).fit(X)
    with pytest.raises(ValueError, match="min_group_rows"):
        PeerGroupAnomalyDetector(min_group_rows=1, n_estimators=5).fit(X)
    assert PeerAnomalyConfig(group_by=["is_corporate", "channel_code"]).group_by == ("is_corporate", "channel_code")


def test_baseline_refuses_statistics_that_cannot_score():
    with pytest.raises(ValueError, match="shape"):
        PeerBaseline(["is_corporate"], ["fan_in_7d"], ["is_corporate=0"], [10], [1.0], np.zeros((1, 1)),
                     np.ones((1, 1)), 10)
    with pytest.raises(ValueError, match="positive scales"):
        PeerBaseline(["is_corporate"], ["fan_in_7d"], [], [], [], np.zeros((1, 1)), np.zeros((1, 1)), 10)


# -- persistence and the model set ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def peer_model_set(fitted_parts) -> ModelSet:
    X, y, clf, _, fusion, thresholds, config = fitted_parts
    det = PeerGroupAnomalyDetector(n_estimators=50, min_group_rows=100, random_state=0).fit(X[:3000])
    return ModelSet(clf, det, fusion, thresholds, config, load_feature_params(), FEATURE_NAMES,
                    {"data_fingerprint": "test", "seed": 0})


@pytest.mark.parametrize("forest", ["shared", "per_group"])
def test_detector_round_trips_through_its_folder(tmp_path, forest):
    X = _two_segments(2000, 9)
    det = PeerGroupAnomalyDetector(n_estimators=30, min_group_rows=100, shrinkage_rows=50, forest=forest,
                                   random_state=0).fit(X)
    spec = det.to_dir(tmp_path)
    assert len(spec["group_forest_files"]) == (2 if forest == "per_group" else 0)
    assert spec["kind"] == "peer_group" and spec["params"]["group_by"] == ["is_corporate"]
    stats = json.loads((tmp_path / PEER_GROUPS_FILE).read_text(encoding="utf-8"))
    assert [g["key"] for g in stats["groups"]] == ["is_corporate=0", "is_corporate=1"]
    again = PeerGroupAnomalyDetector.from_dir(tmp_path, spec)
    np.testing.assert_array_equal(again.baseline_.centres, det.baseline_.centres)
    np.testing.assert_array_equal(again.baseline_.scales, det.baseline_.scales)
    np.testing.assert_array_equal(again.anomaly_score(X), det.anomaly_score(X))
    assert again.attribution(X[0]) == det.attribution(X[0])


def test_model_set_save_load_gives_identical_scores_and_explanations(peer_model_set, fitted_parts, tmp_path):
    X = fitted_parts[0][3000:3200]
    peer_model_set.save(tmp_path / "ms")
    manifest = json.loads((tmp_path / "ms" / "model_set.json").read_text(encoding="utf-8"))
    assert manifest["detector"]["kind"] == "peer_group" and PEER_GROUPS_FILE in manifest["files"]
    loaded = ModelSet.load(tmp_path / "ms")
    assert isinstance(loaded.detector, PeerGroupAnomalyDetector)
    a, b = peer_model_set.score_vector(X), loaded.score_vector(X)
    np.testing.assert_array_equal(a.anomaly_score, b.anomaly_score)
    np.testing.assert_array_equal(a.suspicion_score, b.suspicion_score)
    for row in X[:10]:
        _, e1 = peer_model_set.score_and_explain(row)
        _, e2 = loaded.score_and_explain(row)
        assert e1.anomaly_attribution == e2.anomaly_attribution


def test_model_set_offline_and_online_paths_agree(peer_model_set, fitted_parts):
    import pandas as pd

    X = fitted_parts[0][3000:3300]
    frame = pd.DataFrame(X, columns=list(FEATURE_NAMES))
    offline = peer_model_set.score_frame(frame, reasons="none")
    online = peer_model_set.score_vector(X)
    np.testing.assert_array_equal(offline["anomaly_score"].to_numpy(), online.anomaly_score)
    np.testing.assert_array_equal(offline["suspicion_score"].to_numpy(), online.suspicion_score)
    for i in range(0, 300, 37):
        batch, explanation = peer_model_set.score_and_explain(X[i])
        assert batch.anomaly_score[0] == online.anomaly_score[i]
        assert explanation.components["anomaly_score"] == online.anomaly_score[i]


def test_altered_peer_statistics_are_refused(peer_model_set, tmp_path):
    peer_model_set.save(tmp_path / "ms")
    path = tmp_path / "ms" / PEER_GROUPS_FILE
    stats = json.loads(path.read_text(encoding="utf-8"))
    stats["bank"]["centre"][0] += 1.0
    path.write_text(json.dumps(stats), encoding="utf-8")
    with pytest.raises(ModelSetError, match=f"{PEER_GROUPS_FILE} does not match"):
        ModelSet.load(tmp_path / "ms")


def test_an_unknown_detector_kind_is_refused(model_set, tmp_path):
    model_set.save(tmp_path / "ms")
    manifest_path = tmp_path / "ms" / "model_set.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["detector"]["kind"] == "bank"
    del manifest["detector"]["kind"]  # model sets saved before the kind was recorded: bank-wide
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert type(ModelSet.load(tmp_path / "ms").detector) is BehaviourAnomalyDetector
    manifest["detector"]["kind"] = "clusters"
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ModelSetError, match="kind 'clusters'"):
        ModelSet.load(tmp_path / "ms")


def test_random_rows_with_few_corporates_fall_back_to_the_bank():
    X = random_features(1000, seed=11)  # about 10 % corporates: 100 rows
    det = PeerGroupAnomalyDetector(n_estimators=20, min_group_rows=150, random_state=0).fit(X)
    assert det.baseline_.keys == ("is_corporate=0",)
    assert "is_corporate=0" in det.describe()


def test_per_group_forests_score_their_group_and_the_shared_one_the_rest():
    X = _two_segments(3000, 13, corporate_share=0.1)
    n_corp = int((X[:, CORP] == 1).sum())
    det = PeerGroupAnomalyDetector(n_estimators=40, min_group_rows=n_corp + 1, forest="per_group",
                                   random_state=0).fit(X)
    assert det.baseline_.keys == ("is_corporate=0",) and len(det.group_forests_) == 1
    Z = det._input(X)
    indiv, corp = X[:, CORP] == 0, X[:, CORP] == 1
    scores = det.anomaly_score(X)
    np.testing.assert_array_equal(scores[indiv], det.group_forests_[0].anomaly_score(Z[indiv]))
    np.testing.assert_array_equal(scores[corp], det.compiled_.anomaly_score(Z[corp]))  # no forest of their own
    assert "one forest per group" in det.describe()
    # reproducible: the same random_state, the same forests
    again = PeerGroupAnomalyDetector(n_estimators=40, min_group_rows=n_corp + 1, forest="per_group",
                                     random_state=0).fit(X)
    np.testing.assert_array_equal(again.anomaly_score(X), scores)
