"""Transaction indicator rules: each rule fires, the noisy-OR combination, and the single-row path
agreeing with the frame path."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from amlscore.contract.errors import AmlError
from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.models.rules import evaluate_rules, load_rules_config, score_transaction_rules
from amlscore.models.rules.transaction_rules import combine
from rules_builders import feature_frame

ZERO = {name: 0.0 for name in FEATURE_NAMES}


def firing_row(rule) -> dict:
    """A zero row changed just enough for every condition of ``rule`` to hold."""
    row = dict(ZERO)
    for c in rule.when:
        row[c.feature] = {">=": c.threshold, ">": c.threshold + 1, "<=": c.threshold, "<": c.threshold - 1, "==": c.threshold}[c.op]
    return row


def test_nothing_fires_on_a_quiet_row(cfg):
    r = score_transaction_rules(ZERO, cfg)
    assert r.score == 0.0 and r.fired == () and r.config_hash == cfg.hash


@pytest.mark.parametrize("rule_id", list(load_rules_config().transaction_rules.rules))
def test_each_rule_fires_alone_with_its_weight(cfg, rule_id):
    rule = cfg.transaction_rules.rules[rule_id]
    r = score_transaction_rules(firing_row(rule), cfg)
    assert rule_id in r.rule_ids
    fired = {f.rule_id: f for f in r.fired}[rule_id]
    assert fired.weight == rule.weight
    assert [(c.feature, c.op, c.threshold) for c in fired.conditions] == [(c.feature, c.op, c.threshold) for c in rule.when]
    if r.rule_ids == (rule_id,):
        assert r.score == pytest.approx(100 * rule.weight)


def test_the_issue_s_indicators_are_all_configured(cfg):
    assert set(cfg.transaction_rules.rules) >= {
        "large_cash", "structuring", "shared_ip", "shared_device", "ip_abroad", "ip_outside_home_region",
        "rapid_pass_through", "fan_in", "fan_out", "corporate_to_personal_out", "corporate_to_personal_in",
        "dormant_reactivation", "high_risk_country", "shared_agent", "shared_emergency_phone"}


def test_large_cash_threshold_is_inclusive(cfg):
    assert score_transaction_rules(dict(ZERO, is_cash=1, amount=50_000.0), cfg).rule_ids == ("large_cash",)
    assert score_transaction_rules(dict(ZERO, is_cash=1, amount=49_999.99), cfg).rule_ids == ()
    assert score_transaction_rules(dict(ZERO, is_cash=0, amount=80_000.0), cfg).rule_ids == ()


def test_combination_by_hand(cfg):
    # large cash (0.30) and a high-risk country (0.50): 100 * (1 - 0.7 * 0.5) = 65
    r = score_transaction_rules(dict(ZERO, is_cash=1, amount=60_000.0, is_high_risk_country=1), cfg)
    assert set(r.rule_ids) == {"large_cash", "high_risk_country"}
    assert r.score == pytest.approx(65.0)
    # plus structuring (0.50): 100 * (1 - 0.7 * 0.5 * 0.5) = 82.5
    r = score_transaction_rules(dict(ZERO, is_cash=1, amount=60_000.0, is_high_risk_country=1, near_threshold_cash_cnt_7d=3), cfg)
    assert r.score == pytest.approx(82.5)
    assert combine([0.3, 0.5, 0.5]) == pytest.approx(82.5)
    assert combine([]) == 0.0


def test_the_score_stays_within_0_and_100(cfg):
    everything = dict(ZERO)
    for rule in cfg.transaction_rules.rules.values():
        everything.update(firing_row(rule))
    everything.update(is_corporate=1, is_in=0)  # one of the two corporate-to-personal sides
    r = score_transaction_rules(everything, cfg)
    assert 0 < r.score < 100
    assert r.score == pytest.approx(combine([f.weight for f in r.fired]))
    one = load_rules_config(overrides={"transaction_rules": {"rules": {"structuring": {"weight": 1.0}}}})
    assert score_transaction_rules(dict(ZERO, near_threshold_cash_cnt_7d=9), one).score == 100.0


def test_nan_and_none_never_satisfy_a_condition(cfg):
    assert score_transaction_rules(dict(ZERO, is_cash=1, amount=float("nan")), cfg).fired == ()
    assert score_transaction_rules(dict(ZERO, is_cash=None, amount=90_000.0), cfg).fired == ()
    frame = feature_frame([dict(is_cash=1, amount=float("nan"))])
    assert evaluate_rules(frame, cfg)["rule_score"].iat[0] == 0.0


def test_disabled_rules_do_not_fire():
    cfg = load_rules_config(overrides={"transaction_rules": {"rules": {"large_cash": {"enabled": False}}}})
    assert score_transaction_rules(dict(ZERO, is_cash=1, amount=90_000.0), cfg).fired == ()
    assert "fired_large_cash" not in evaluate_rules(feature_frame([{}]), cfg).columns


def _random_rows(cfg, n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rules = list(cfg.transaction_rules.rules.values())
    rows = []
    for _ in range(n):
        row = dict(ZERO)
        for rule in rng.choice(rules, size=rng.integers(0, 5), replace=False):
            row.update(firing_row(rule))
        for name in ("amount", "fan_in_7d", "ip_customers_24h", "passthrough_ratio_24h"):
            if rng.random() < 0.3:
                row[name] = float(rng.choice([np.nan, rng.random() * 100_000, rng.integers(0, 20)]))
        row["is_corporate"] = float(rng.integers(0, 2))
        row["is_in"] = float(rng.integers(0, 2))
        rows.append(row)
    return rows


def test_single_row_equals_frame(cfg):
    rows = _random_rows(cfg, 300)
    frame = feature_frame([dict(r, txn_id=f"T{i}") for i, r in enumerate(rows)])
    out = evaluate_rules(frame, cfg)
    assert out["txn_id"].tolist() == [f"T{i}" for i in range(len(rows))]
    assert set(out["config_hash"]) == {cfg.hash}
    for i, row in enumerate(rows):
        single = score_transaction_rules(row, cfg)
        as_array = score_transaction_rules(np.array([row[name] for name in FEATURE_NAMES], dtype=float), cfg)
        assert single.score == out["rule_score"].iat[i] == as_array.score
        assert "|".join(single.rule_ids) == out["rules_fired"].iat[i]
        assert single.rule_ids == as_array.rule_ids
        assert len(single.fired) == out["n_rules_fired"].iat[i]
    assert out["rule_score"].max() > 0 and out["rule_score"].min() == 0


def test_fired_rules_carry_values_and_thresholds(cfg):
    r = score_transaction_rules(dict(ZERO, passthrough_ratio_24h=0.97, out_within_24h_of_in=1, out_sum_24h=81_000.0), cfg)
    (f,) = r.fired
    assert f.rule_id == "rapid_pass_through"
    assert [(c.feature, c.value, c.op, c.threshold) for c in f.conditions] == [
        ("passthrough_ratio_24h", 0.97, ">=", 0.9), ("out_within_24h_of_in", 1.0, "==", 1.0), ("out_sum_24h", 81_000.0, ">=", 50_000.0)]


def test_missing_features_are_named(cfg):
    with pytest.raises(AmlError, match="amount"):
        score_transaction_rules({"is_cash": 1}, cfg)
    with pytest.raises(AmlError, match="is_cash"):
        evaluate_rules(feature_frame([{}]).drop(columns=["is_cash"]), cfg)
    with pytest.raises(AmlError, match="1-D array"):
        score_transaction_rules(np.zeros(3), cfg)


def test_single_row_is_fast(cfg):
    row = dict(ZERO, is_cash=1, amount=60_000.0)
    score_transaction_rules(row, cfg)
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        score_transaction_rules(row, cfg)
    per_call = (time.perf_counter() - start) / n
    assert per_call < 500e-6, f"{per_call * 1e6:.0f} µs per call"  # ~25 µs here; loose bound for slow CI machines


def test_frame_path_handles_no_rows(cfg):
    out = evaluate_rules(feature_frame([]), cfg)
    assert len(out) == 0 and "rule_score" in out.columns
    assert not math.isnan(combine([0.2]))
