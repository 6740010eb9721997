"""SynthConfig checks its values and sizes the typologies with the bank."""

from __future__ import annotations

import datetime as dt

import pytest

from amlscore.contract.errors import AmlError
from amlscore.synth.clock import Clock
from amlscore.synth.config import TYPOLOGY_BY_NAME, SynthConfig, load_bank_rules, stream


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"customers": 199}, "'customers'"),
        ({"customers": 2.5}, "'customers'"),
        ({"days": 29}, "'days'"),
        ({"seed": -1}, "'seed'"),
        ({"start": "2025-01-01"}, "'start'"),
        ({"laundering_scale": -1}, "'laundering_scale'"),
    ],
)
def test_bad_values_name_the_parameter(kwargs: dict, fragment: str) -> None:
    with pytest.raises(AmlError, match=fragment):
        SynthConfig(**kwargs)


def test_scenarios_scale_with_customers_and_years() -> None:
    spec = TYPOLOGY_BY_NAME["structuring"]
    small, big = SynthConfig(customers=2000), SynthConfig(customers=20000)
    assert big.scenario_count(spec) == 10 * small.scenario_count(spec)
    assert SynthConfig(customers=200, days=30).scenario_count(spec) == spec.min_scenarios
    assert SynthConfig(laundering_scale=0).scenario_count(spec) == 0


def test_bank_rules_come_from_the_feature_parameters() -> None:
    rules = load_bank_rules()
    assert rules.large_cash_threshold == 50_000 and rules.utc_offset_hours == 8
    assert "KP" in rules.high_risk_countries


def test_streams_are_independent_and_repeatable() -> None:
    a, b = stream(1, "x").random(3), stream(1, "x").random(3)
    assert (a == b).all() and (stream(1, "y").random(3) != a).all()


def test_clock_is_bank_local_time() -> None:
    clock = Clock(dt.date(2025, 1, 1), 365, 8)
    # Local midnight of 1 January 2025 is 16:00 UTC on 31 December 2024.
    assert clock.epoch0 == int(dt.datetime(2024, 12, 31, 16, tzinfo=dt.timezone.utc).timestamp())
    spring_festival = clock.day_of(dt.date(2025, 1, 29))
    assert clock.day_weights["business"][spring_festival + 1] < 0.3  # offices shut in the holiday week
    double_11 = clock.day_of(dt.date(2025, 11, 11))
    assert clock.day_weights["online"][double_11] > 3 * clock.day_weights["online"][double_11 - 20]
