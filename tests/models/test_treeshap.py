"""The compiled TreeSHAP (amlscore.models.treeshap) against LightGBM's pred_contrib, and its use in SuspicionClassifier."""

from __future__ import annotations

import pickle

import lightgbm as lgb
import numpy as np
import pytest

from amlscore.models.supervised import SuspicionClassifier
from amlscore.models.treeshap import CompiledTreeShap, UnsupportedModelError

K_ZERO = float(np.float32(1e-35))  # LightGBM's kZeroThreshold


def _close(got: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-9)


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Columns: 0 normal with NaN; 1 many exact zeros and NaN (trained with zero_as_missing in one model);
    2 coarse (values on the split thresholds); 3 heavy-tailed; 4 integer counts with NaN; 5 noise."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([
        rng.normal(size=n),
        np.where(rng.random(n) < 0.35, 0.0, rng.normal(1.0, 1.0, n)),
        np.round(rng.normal(size=n), 1),
        rng.standard_t(2, size=n) * 100,
        rng.poisson(2.0, n).astype(float),
        rng.normal(size=n),
    ])
    X[rng.random(n) < 0.12, 0] = np.nan
    X[rng.random(n) < 0.08, 1] = np.nan
    X[rng.random(n) < 0.10, 4] = np.nan
    x0 = np.nan_to_num(X[:, 0], nan=1.0)
    signal = x0 + (X[:, 1] == 0) + np.isnan(X[:, 4]) + 0.5 * X[:, 2] + 0.01 * np.nan_to_num(X[:, 3])
    y = (signal + rng.normal(0, 0.8, n) > 1.0).astype(float)
    return X, y


def _train(params: dict, X: np.ndarray, y: np.ndarray, rounds: int = 25, **dataset: object) -> lgb.Booster:
    base = {"objective": "binary", "verbose": -1, "num_leaves": 31, "max_depth": 12, "min_data_in_leaf": 3,
            "learning_rate": 0.2, "num_threads": 1, "seed": 0, "deterministic": True}
    return lgb.train({**base, **params}, lgb.Dataset(X, y, **dataset), num_boost_round=rounds)


@pytest.fixture(scope="module")
def data():
    return _data()


@pytest.fixture(scope="module")
def boosters(data):
    X, y = data
    return {
        "nan": _train({}, X, y),  # missing type NaN where a column has NaN, None elsewhere
        "zero_as_missing": _train({"zero_as_missing": True}, X, y),  # missing type Zero
        "no_missing": _train({"use_missing": False}, X, y),  # missing type None: NaN reads as 0
        "deep_few_rows": _train({"num_leaves": 63, "max_depth": -1, "min_data_in_leaf": 1,
                                 "min_sum_hessian_in_leaf": 0.0}, X[:300], y[:300], rounds=15),
    }


def _missing_types(booster: lgb.Booster) -> set[str]:
    found = set()

    def walk(node: dict) -> None:
        if "split_index" in node:
            found.add(node["missing_type"])
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


def _hard_rows(booster: lgb.Booster, X: np.ndarray, seed: int) -> np.ndarray:
    """Rows of the data plus rows with NaN, zeros, values within kZeroThreshold of 0, extremes, infinities,
    and every split threshold (and its neighbouring doubles) of the model."""
    rng = np.random.default_rng(seed)
    rows = [X[:150]]
    special = np.array([np.nan, 0.0, -0.0, K_ZERO, -K_ZERO, 0.5 * K_ZERO, 2 * K_ZERO, 1e-300, 1e300, -1e300,
                        np.inf, -np.inf, 1e308, -1e308])
    Z = X[rng.integers(0, len(X), 200)].copy()
    mask = rng.random(Z.shape) < 0.3
    Z[mask] = rng.choice(special, mask.sum())
    rows.append(Z)
    thresholds: dict[int, list[float]] = {}
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                thresholds.setdefault(node["split_feature"], []).append(node["threshold"])
                stack += [node["left_child"], node["right_child"]]
    on = X[rng.integers(0, len(X), 200)].copy()
    for f, ts in thresholds.items():
        ts = np.asarray(ts)
        pick = rng.choice(ts, len(on))
        how = rng.integers(0, 4, len(on))  # on, just below, just above, or the data's value
        pick = np.where(how == 1, np.nextafter(pick, -np.inf), np.where(how == 2, np.nextafter(pick, np.inf), pick))
        on[:, f] = np.where(how < 3, pick, on[:, f])
    rows.append(on)
    return np.vstack(rows)


@pytest.mark.parametrize("name", ["nan", "zero_as_missing", "no_missing", "deep_few_rows"])
def test_equals_lightgbm_pred_contrib(boosters, data, name):
    booster = boosters[name]
    compiled = CompiledTreeShap.build(booster)
    assert compiled is not None
    X = _hard_rows(booster, data[0], seed=len(name))
    ref = booster.predict(X, pred_contrib=True)
    got = compiled.contributions_many(X)
    _close(got, ref)
    assert np.array_equal(got[:, -1], ref[:, -1])  # the expected value is summed as LightGBM does: same bits
    # each row's contributions add up to its raw score
    np.testing.assert_allclose(got.sum(axis=1), booster.predict(X, raw_score=True), rtol=1e-9, atol=1e-9)
    for row, want in zip(X[::37], got[::37]):  # the one-row entry point gives the same numbers
        assert np.array_equal(compiled.contributions(row), want)


def test_the_models_cover_every_missing_type(boosters):
    assert {"NaN", "None"} <= _missing_types(boosters["nan"])
    assert "Zero" in _missing_types(boosters["zero_as_missing"])
    assert _missing_types(boosters["no_missing"]) == {"None"}
    deep = boosters["deep_few_rows"].dump_model()["tree_info"]
    assert max(t["num_leaves"] for t in deep) > 31


def test_infinite_thresholds_are_kept(data):
    """A split whose threshold is inf (written 'inf' in the text model, 1e300 in dump_model) sends inf left."""
    X, y = data
    booster = _train({}, X, y, rounds=5)
    text = booster.model_to_string()
    lines = [line for line in text.splitlines() if not line.startswith("tree_sizes=")]  # sizes change
    for k, line in enumerate(lines):  # set the first threshold of the first tree to inf
        if line.startswith("threshold="):
            values = line.split("=", 1)[1].split()
            values[0] = "inf"
            lines[k] = "threshold=" + " ".join(values)
            break
    edited = lgb.Booster(model_str="\n".join(lines) + "\n")
    assert "inf" in edited.model_to_string().split("threshold=", 1)[1].split("\n", 1)[0].split()[0]
    rows = X[:50].copy()
    feature = int(edited.dump_model()["tree_info"][0]["tree_structure"]["split_feature"])
    rows[::2, feature] = np.inf
    rows[1::4, feature] = 1e301
    _close(CompiledTreeShap.build(edited).contributions_many(rows), edited.predict(rows, pred_contrib=True))


def test_regression_and_constant_trees(data):
    X, y = data
    reg = _train({"objective": "regression", "min_data_in_leaf": 250}, X, y + X[:, 5], rounds=8)
    compiled = CompiledTreeShap.build(reg)
    _close(compiled.contributions_many(X[:100]), reg.predict(X[:100], pred_contrib=True))
    # a model whose trees are all constant (no split meets min_data_in_leaf)
    flat = _train({"min_data_in_leaf": 10_000}, X, y, rounds=3)
    compiled = CompiledTreeShap.build(flat)
    assert compiled is not None and compiled.n_nodes == 0
    np.testing.assert_array_equal(compiled.contributions_many(X[:5]), flat.predict(X[:5], pred_contrib=True))


def test_iterations_are_chosen_as_lightgbm_does(data):
    X, y = data
    booster = _train({}, X, y, rounds=20)
    compiled = CompiledTreeShap.build(booster, start_iteration=3, num_iteration=7)
    assert compiled.n_trees == 7
    ref = booster.predict(X[:80], pred_contrib=True, start_iteration=3, num_iteration=7)
    _close(compiled.contributions_many(X[:80]), ref)


def test_unsupported_models_give_none(data):
    X, y = data
    Xc = X.copy()
    Xc[:, 4] = np.nan_to_num(Xc[:, 4], nan=7.0)
    y_cat = ((Xc[:, 4] == 1) | (Xc[:, 4] == 4) | (y > 0)).astype(float)
    cat = _train({"min_data_per_group": 5, "cat_smooth": 1.0}, Xc, y_cat, rounds=10, categorical_feature=[4])
    assert "==" in str(cat.dump_model())  # a categorical split is there
    assert CompiledTreeShap.build(cat) is None
    multi = _train({"objective": "multiclass", "num_class": 3}, X, (np.nan_to_num(X[:, 0]) > 0) + (X[:, 2] > 1.0),
                   rounds=3)
    assert CompiledTreeShap.build(multi) is None
    linear = _train({"linear_tree": True}, np.nan_to_num(X), y, rounds=3)
    assert CompiledTreeShap.build(linear) is None
    with pytest.raises(UnsupportedModelError):
        CompiledTreeShap.from_model_string(cat.model_to_string())


def test_the_classifier_uses_it_and_falls_back_for_categorical_models(data):
    X, y = data
    clf = SuspicionClassifier(n_estimators=30, min_child_samples=5, num_leaves=15, random_state=0).fit(X, y)
    assert clf._compiled_treeshap() is not None
    for row in _hard_rows(clf.booster_, X, seed=9)[::3]:
        one = row[None, :]
        ref = clf.booster_.predict(one, pred_contrib=True)[0]
        got = clf.contributions_one(row)
        _close(got, ref)
        np.testing.assert_array_equal(clf._single_row().contributions(row), ref)  # the C API path: exact
    np.testing.assert_allclose(clf.contributions_one(X[:1]), clf.contributions(X[:1])[0], rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="a row of 6 features"):
        clf.contributions_one(X[0, :5])
    again = pickle.loads(pickle.dumps(clf))  # the tables are not pickled; made again on first use
    assert "_compiled_treeshap_for" not in again.__getstate__()
    np.testing.assert_array_equal(again.contributions_one(X[3]), clf.contributions_one(X[3]))
    old = clf._compiled_treeshap()
    clf.fit(X[:400], y[:400])  # a new booster gets new tables
    assert clf._compiled_treeshap() is not old
    _close(clf.contributions_one(X[5]), clf.booster_.predict(X[5:6], pred_contrib=True)[0])

    # a model with a categorical split: LightGBM's TreeSHAP (through the C API) is used, bit for bit
    text = clf.to_text()
    cat = _train({"min_data_per_group": 5, "cat_smooth": 1.0}, np.nan_to_num(X, nan=7.0),
                 ((np.nan_to_num(X[:, 4], nan=7.0) == 1) | (y > 0)).astype(float), rounds=10, categorical_feature=[4])
    assert CompiledTreeShap.build(cat) is None
    spec = clf.describe()
    fallback = SuspicionClassifier.from_text(cat.model_to_string(), spec)
    assert fallback._compiled_treeshap() is None
    for row in np.nan_to_num(X[:40], nan=7.0):
        np.testing.assert_array_equal(fallback.contributions_one(row), cat.predict(row[None, :], pred_contrib=True)[0])
    assert SuspicionClassifier.from_text(text, spec)._compiled_treeshap() is not None
