"""The decision schema: one JSON form of an explanation, one cleaner, one feature wording, one model-set protocol."""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import math

import numpy as np
import pytest
from fakes import FakeModelSet

from amlscore.core.decision import ModelSetLike, json_safe
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.labels import feature_label
from amlscore.models.model_set import ModelSet
from amlscore.models.rules import explain_rules

_METHODS = ("check_features", "score_vector", "score_frame", "explain_vector", "score_and_explain")


def test_json_safe_cleans_what_json_cannot_hold():
    value = {1: np.float64("nan"), "inf": float("inf"), "f32": np.float32(0.5), "i": np.int64(7), "b": np.bool_(True),
             "arr": np.array([1.0, np.nan]), "t": (1, "a"), "d": dt.date(2026, 1, 5), "ok": [None, "x", 2.5]}
    out = json_safe(value)
    assert out == {"1": None, "inf": None, "f32": 0.5, "i": 7, "b": True, "arr": [1.0, None], "t": [1, "a"],
                   "d": "2026-01-05", "ok": [None, "x", 2.5]}
    assert type(out["i"]) is int and type(out["b"]) is bool
    json.dumps(out, allow_nan=False)


def test_explanation_json_form_is_asdict_with_non_finite_numbers_as_none(model_set):
    x = np.full(len(FEATURE_NAMES), 1.0)
    x[FEATURE_NAMES.index("amount")] = 48_000.0
    x[FEATURE_NAMES.index("hours_since_last_in")] = np.nan  # a feature value JSON cannot hold
    for lang in ("en", "zh"):
        e = model_set.explain_vector(x, top_k=len(FEATURE_NAMES), lang=lang)
        d = e.to_dict()
        assert d == json_safe(dataclasses.asdict(e))
        assert json.loads(json.dumps(d, allow_nan=False)) == d
        nan_value = [c for c in d["lgbm_contributions"] + d["anomaly_attribution"] if c["feature"] == "hours_since_last_in"]
        assert nan_value and all(c["value"] is None for c in nan_value)


def test_one_wording_of_a_feature_in_the_explanation_the_rules_and_the_report(model_set):
    """The API's explanation labels, the rule-condition sentences and the case report's labels are one function's."""
    from amlscore.reports.case_facts import explanation_facts

    x = np.zeros(len(FEATURE_NAMES))
    x[FEATURE_NAMES.index("amount")], x[FEATURE_NAMES.index("is_cash")] = 60_000.0, 1.0
    for lang in ("en", "zh"):
        e = model_set.explain_vector(x, top_k=8, lang=lang)
        assert [c.label for c in e.lgbm_contributions] == [feature_label(c.feature, lang) for c in e.lgbm_contributions]
        facts = explanation_facts(e.to_dict(), dict(zip(FEATURE_NAMES, x.tolist())), lang)
        assert [a.label for a in facts.attributions] == [c.label for c in e.lgbm_contributions]
        _, batch_e = model_set.score_and_explain(x, top_k=8, lang=lang)
        fired = batch_e.rules_fired
        assert fired, "the large-cash rule fires on CNY 60,000 in cash"
        sentence = explain_rules(model_set.score_vector(x[None, :]).rules[0], model_set.rules_config, lang)[1]
        assert feature_label("amount", lang) in sentence and feature_label("is_cash", lang) in sentence


def test_the_model_set_and_the_tests_fake_have_every_member_of_the_protocol_alike():
    """Consumers call a model set without checking for methods: the one fake must offer what the real one offers."""
    fake = FakeModelSet()
    assert isinstance(fake, ModelSetLike)
    members = {n for n in ModelSetLike.__dict__ if not n.startswith("_")}
    assert set(_METHODS) | {"alert_threshold"} <= members
    for name in _METHODS:
        real = inspect.signature(getattr(ModelSet, name))
        mine = inspect.signature(getattr(FakeModelSet, name))
        shape = [(p.name, p.kind, p.default) for p in real.parameters.values()]
        assert [(p.name, p.kind, p.default) for p in mine.parameters.values()] == shape, name
        protocol = inspect.signature(getattr(ModelSetLike, name))
        assert [(p.name, p.kind, p.default) for p in protocol.parameters.values()] == shape, name
    for attribute in ("feature_names", "metadata", "rules_config"):
        assert attribute in ModelSetLike.__annotations__


def test_the_fakes_results_are_the_real_types():
    from amlscore.core.decision import Explanation, ScoreBatch

    fake = FakeModelSet()
    x = np.zeros((1, len(FEATURE_NAMES)))
    x[0, FEATURE_NAMES.index("amount")] = 60_000.0
    batch, e = fake.score_and_explain(x)
    assert isinstance(batch, ScoreBatch) and isinstance(e, Explanation)
    assert e.to_dict() == fake.explain_vector(x).to_dict()
    assert math.isclose(e.suspicion_score, float(batch.suspicion_score[0]))
    with pytest.raises(ValueError):
        fake.check_features(list(reversed(FEATURE_NAMES)))
    fake.check_features(list(reversed(FEATURE_NAMES)), require_order=False)
