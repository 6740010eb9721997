"""The rules configuration: loads, hashes, and rejects every kind of bad setting with a clear message."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from amlscore.contract.errors import AmlError
from amlscore.models.rules import RulesConfigError, load_rules_config, parse_rules_config
from amlscore.models.rules.config import DEFAULT_CONFIG_PATH, default_config_data

PHRASE = re.compile(r"^The '[^']+' parameter of RulesConfig must be .+\. Got .+ instead\.$", re.S)


def problems_of(data: dict) -> list[str]:
    with pytest.raises(RulesConfigError) as info:
        parse_rules_config(data)
    assert isinstance(info.value, AmlError)
    for p in info.value.problems:
        assert PHRASE.match(p), p
    return info.value.problems


def changed(**paths) -> dict:
    """The packaged data with dotted-path assignments (``a__b__c=value``)."""
    data = default_config_data()
    for path, value in paths.items():
        node = data
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node[k]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


def test_packaged_config_loads_and_hashes():
    cfg = load_rules_config()
    assert re.fullmatch(r"[0-9a-f]{64}", cfg.hash)
    assert cfg.short_hash == cfg.hash[:12]
    assert load_rules_config(DEFAULT_CONFIG_PATH).hash == cfg.hash
    assert cfg.level_ids == ("high", "medium_high", "medium", "medium_low", "low")
    assert cfg.max_item_score == 5


def test_hash_ignores_layout_but_not_content(tmp_path: Path):
    data = default_config_data()
    reordered = dict(reversed(list(data.items())))
    path = tmp_path / "rules.yaml"
    path.write_text("# a comment\n" + yaml.safe_dump(reordered, default_flow_style=False, allow_unicode=True), encoding="utf-8")
    assert load_rules_config(path).hash == load_rules_config().hash
    other = load_rules_config(overrides={"behaviour": {"unusual_rule_score": 41}})
    assert other.hash != load_rules_config().hash


def test_weights_of_every_set_sum_to_100(cfg):
    for name, elements in cfg.weight_sets.items():
        assert sum(e.weight for e in elements.values()) == pytest.approx(100), name
        assert sum(w for e in elements.values() for w in e.items.values()) == pytest.approx(100), name


def test_element_weights_not_summing_to_100():
    (p,) = problems_of(changed(weight_sets__individual_new__customer__weight=35,
                               weight_sets__individual_new__customer__items={"relationship_channel": 7, "id_document": 7,
                                                                            "report_history": 7, "adverse_records": 7, "age": 7}))
    assert "'weight_sets.individual_new'" in p and "summing to 100" in p and "Got 95 (customer 35" in p


def test_sub_item_weights_not_summing_to_element_weight():
    data = changed(weight_sets__corporate_existing__industry__items={"industry_risk": 15, "pep_association": 4})
    (p,) = problems_of(data)
    assert "'weight_sets.corporate_existing.industry.items'" in p and "element's weight 20" in p and "Got 19" in p


@pytest.mark.parametrize("weight", [0, -5])
def test_weight_not_positive(weight):
    data = changed(weight_sets__individual_existing__industry__items={"industry_risk": 20, "pep_association": weight})
    problems = problems_of(data)
    assert any("'weight_sets.individual_existing.industry.items.pep_association'" in p and "greater than 0" in p for p in problems)
    data = changed(weight_sets__individual_existing__industry__weight=weight)
    assert any("'weight_sets.individual_existing.industry.weight'" in p for p in problems_of(data))


def _levels(*bands, months=(6, 12, 24, 36, 36)):
    ids = ["high", "medium_high", "medium", "medium_low", "low"]
    return [{"id": i, "name": {"en": i, "zh": i}, "band": list(b), "review_months": m} for i, b, m in zip(ids, bands, months)]


def test_band_gap():
    (p,) = problems_of(changed(levels=_levels([65, 100], [50, 60], [40, 50], [30, 40], [0, 30])))
    assert "without gaps or overlaps" in p and "a gap between 'medium_high' (up to 60) and 'high' (from 65)" in p


def test_band_overlap():
    (p,) = problems_of(changed(levels=_levels([65, 100], [50, 65], [40, 52], [30, 40], [0, 30])))
    assert "an overlap between 'medium' (up to 52) and 'medium_high' (from 50)" in p


def test_bands_must_reach_0_and_100():
    problems = problems_of(changed(levels=_levels([65, 99], [50, 65], [40, 50], [30, 40], [5, 30])))
    assert any("ending at 99" in p for p in problems) and any("starting at 5" in p for p in problems)


def test_at_least_three_levels():
    data = changed(levels=_levels([50, 100], [0, 50])[:2], suppression__low_risk_levels=["medium_high"])
    assert any("'levels'" in p and "at least 3" in p for p in problems_of(data))


def test_unknown_sub_item_in_tables_and_in_weights():
    data = default_config_data()
    data["sub_items"]["shoe_size"] = {"missing": 3, "categories": {"big": 5}}
    (p,) = problems_of(data)
    assert "'sub_items'" in p and "known sub-items" in p and "Got 'shoe_size'" in p
    data = default_config_data()
    data["weight_sets"]["individual_existing"]["industry"]["items"] = {"industry_risk": 14, "shoe_size": 6}
    problems = problems_of(data)
    assert any("'weight_sets.individual_existing.industry.items'" in p and "Got 'shoe_size'" in p for p in problems)


def test_sub_item_under_the_wrong_element_or_customer_type():
    data = default_config_data()
    data["weight_sets"]["individual_existing"]["industry"]["items"] = {"industry_risk": 14, "age": 6}
    data["weight_sets"]["individual_existing"]["customer"]["items"] = {"relationship_channel": 5, "id_document": 5,
                                                                        "report_history": 8, "adverse_records": 5, "corporate_age": 7}
    problems = problems_of(data)
    assert any("listed under its element 'customer'" in p for p in problems)
    assert any("applies to individual customers" in p and "'corporate_age'" in p for p in problems)


def test_weight_sets_must_all_be_there():
    data = default_config_data()
    del data["weight_sets"]["corporate_new"]
    (p,) = problems_of(data)
    assert "'weight_sets'" in p and "no entry for 'corporate_new'" in p


def test_review_interval_rules():
    problems = problems_of(changed(levels=_levels([65, 100], [50, 65], [40, 50], [30, 40], [0, 30], months=(7, 12, 24, 36, 36))))
    assert any("'levels[0].review_months'" in p and "at most 6" in p and "Got 7" in p for p in problems)
    problems = problems_of(changed(levels=_levels([65, 100], [50, 65], [40, 50], [30, 40], [0, 30], months=(6, 13, 24, 36, 36))))
    assert any("'levels[1].review_months'" in p and "at most twice the interval of the level above ('high': 6 months)" in p
               for p in problems)
    problems = problems_of(changed(levels=_levels([65, 100], [50, 65], [40, 50], [30, 40], [0, 30], months=(6, 12, 12, 6, 12))))
    assert any("'levels[3].review_months'" in p and "at least the interval of the level above" in p for p in problems)
    (p,) = problems_of(changed(reviews__first_rating_max_months=48))
    assert "'reviews.first_rating_max_months'" in p and "at most 36" in p
    (p,) = problems_of(changed(reviews__new_customer_rating_working_days=15))
    assert "at most 10 working days" in p


def test_scoring_table_errors():
    data = default_config_data()
    data["sub_items"]["age"]["missing"] = 2  # below the middle of 1..5
    data["sub_items"]["relationship_channel"]["categories"] = {"counter": 1, "online": 3, "agent": 9, "carrier_pigeon": 2}
    data["sub_items"]["cash_intensity"]["inputs"]["cash_share"] = {"edges": [0.4, 0.2], "scores": [1, 2]}
    problems = problems_of(data)
    text = "\n".join(problems)
    assert "'sub_items.age.missing'" in text and "never scored as low risk" in text
    assert "unknown 'carrier_pigeon'" in text and "no entry for 'intermediary'" in text
    assert "'sub_items.relationship_channel.categories.agent'" in text
    assert "'sub_items.cash_intensity.inputs.cash_share.edges'" in text and "strictly increasing" in text
    assert "'sub_items.cash_intensity.inputs.cash_share.scores'" in text and "one more score than edges (3)" in text


def test_transaction_rule_errors():
    data = default_config_data()
    data["transaction_rules"]["rules"]["large_cash"]["when"][0]["feature"] = "amount_in_dollars"
    data["transaction_rules"]["rules"]["structuring"]["weight"] = 1.5
    data["transaction_rules"]["rules"]["fan_in"]["weight"] = 0
    problems = problems_of(data)
    text = "\n".join(problems)
    assert "'transaction_rules.rules.structuring.weight'" in text and "less than or equal to 1" in text
    assert "'transaction_rules.rules.fan_in.weight'" in text and "greater than 0" in text
    data = default_config_data()
    data["transaction_rules"]["rules"]["large_cash"]["when"][0]["feature"] = "amount_in_dollars"
    (p,) = problems_of(data)
    assert "'transaction_rules.rules.large_cash.when[0].feature'" in p and "FEATURE_NAMES" in p


def test_regulatory_limits_cannot_be_relaxed():
    problems = problems_of(changed(large_value__cash_threshold=60000, direct_to_lowest__individual_assets_limit=300000))
    assert any("'large_value.cash_threshold'" in p and "at most 50,000 CNY" in p for p in problems)
    assert any("'direct_to_lowest.individual_assets_limit'" in p for p in problems)
    # tightening is fine
    assert load_rules_config(overrides={"large_value": {"cash_threshold": 40000}}).large_value.cash_threshold == 40000


def test_other_meaning_checks():
    data = changed(suppression__low_risk_levels=["lowest"], direct_to_lowest__candidate_industries=["astronaut"])
    data["calendar"]["extra_working_days"].append("2025-03-05")  # a Wednesday
    text = "\n".join(problems_of(data))
    assert "'suppression.low_risk_levels[0]'" in text and "'direct_to_lowest.candidate_industries'" in text
    assert "'calendar.extra_working_days" in text and "Saturday or Sunday" in text


def test_calendar_days_listed_twice_or_both_ways_are_refused():
    data = default_config_data()
    data["calendar"]["holidays"].append("2026-02-16")  # already a Spring Festival holiday
    data["calendar"]["holidays"].append("2026-02-28")  # a worked Saturday listed as a holiday too
    text = "\n".join(problems_of(data))
    assert "'calendar.holidays[" in text and "2026-02-16 a second time" in text
    assert "not also listed as a holiday" in text and "2026-02-28" in text


def test_unknown_and_missing_settings():
    data = default_config_data()
    data["colour"] = "blue"
    del data["behaviour"]
    text = "\n".join(problems_of(data))
    assert "'colour'" in text and "not a known setting" in text
    assert "'behaviour'" in text and "required" in text


def test_every_problem_is_reported_at_once():
    data = changed(weight_sets__individual_new__industry__weight=30, reviews__first_rating_max_months=40)
    data["sub_items"]["age"]["missing"] = 1
    assert len(problems_of(data)) >= 3


def test_file_errors(tmp_path: Path):
    with pytest.raises(RulesConfigError, match="does not exist"):
        load_rules_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("levels: [unclosed\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="not valid YAML"):
        load_rules_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n", encoding="utf-8")
    with pytest.raises(RulesConfigError, match="mapping of settings"):
        load_rules_config(listy)


def test_overrides_remove_keys_with_none():
    data = default_config_data()
    assert "dismissal_valid_days" in data["suppression"]
    cfg = load_rules_config(overrides={"suppression": {"dismissal_valid_days": None}})
    assert cfg.suppression.dismissal_valid_days is None


def test_config_is_frozen(cfg):
    with pytest.raises(Exception):
        cfg.max_item_score = 10  # type: ignore[misc]


def test_fatf_lists_agree_with_the_feature_parameters(cfg):
    """A counterparty on the rating's FATF lists also sets the is_high_risk_country feature."""
    params = yaml.safe_load((Path(__file__).resolve().parents[2] / "amlscore" / "features" / "config" / "feature_params.yaml").read_text())
    feature_list = set(params["high_risk_countries"])
    assert set(cfg.lists.fatf_black) | set(cfg.lists.fatf_grey) <= feature_list


def test_default_data_is_a_copy():
    a = default_config_data()
    a["levels"] = []
    assert default_config_data()["levels"] != []
    assert copy.deepcopy(default_config_data()) == default_config_data()


def test_docs_describe_every_sub_item_rule_and_level(cfg):
    from amlscore.models.rules import spec

    doc = (Path(__file__).resolve().parents[2] / "docs" / "rules.md").read_text(encoding="utf-8")
    for s in spec.SUB_ITEMS:
        assert f"`{s.id}`" in doc, s.id
    for rule_id in cfg.transaction_rules.rules:
        assert f"`{rule_id}`" in doc, rule_id
    for lv in cfg.levels:
        assert lv.name.zh in doc and f"`{lv.id}`" in doc
    for code in spec.HIGHEST_REASONS + spec.LOWEST_REFUSALS + spec.SUPPRESSION_REASONS:
        assert f"`{code}`" in doc, code
