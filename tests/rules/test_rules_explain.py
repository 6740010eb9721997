"""Explanations in English and Chinese exist for every sub-item, case, input, reason and rule."""

from __future__ import annotations

import re

import numpy as np
import pytest

from amlscore.contract.errors import AmlError
from amlscore.models.rules import (
    breakdown_text,
    explain_rating,
    explain_rules,
    rate_customers,
    score_transaction_rules,
    spec,
    texts,
)
from amlscore.features.labels import has_label
from amlscore.models.rules.explain import sub_item_line
from rules_builders import AS_OF, NO_REPORTS, behaviour_frame, corporate, customer, customers_frame, reports_frame

CJK = re.compile(r"[\u4e00-\u9fff]")


def test_every_text_exists_in_both_languages(cfg):
    pairs = {("element", e): texts.ELEMENTS[e] for e in spec.ELEMENTS}
    for s in spec.SUB_ITEMS:
        pairs[("sub_item", s.id)] = texts.SUB_ITEMS[s.id]
        for k in s.keys:
            pairs[(s.id, k)] = texts.CASES[(s.id, k)] if s.kind == "categories" else texts.INPUTS[(s.id, k)]
    for code in spec.HIGHEST_REASONS:
        pairs[("highest", code)] = texts.HIGHEST_REASONS[code]
    for code in spec.LOWEST_REFUSALS:
        pairs[("lowest", code)] = texts.LOWEST_REFUSALS[code]
    for code in spec.SUPPRESSION_REASONS:
        pairs[("suppression", code)] = texts.SUPPRESSION_REASONS[code]
    for key, (en, zh) in pairs.items():
        assert en.strip() and not CJK.search(en), key
        assert CJK.search(zh), key
    for lv in cfg.levels:
        assert lv.name.en and CJK.search(lv.name.zh)
    for rule_id, rule in cfg.transaction_rules.rules.items():
        assert rule.name.en and CJK.search(rule.name.zh), rule_id
        for c in rule.when:
            assert has_label(c.feature), (rule_id, c.feature)  # worded features, not bare names


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_sub_item_case_and_input_can_be_worded(cfg, lang):
    for s in spec.SUB_ITEMS:
        if s.kind == "categories":
            variants = [(k, "", np.nan, False) for k in s.keys] + [("", "", np.nan, True), (s.keys[0], "", np.nan, True)]
        else:
            variants = [("", k, v, False) for k in s.keys for v in (0.0, 0.5, 7.0, 1e6)] + [("", s.keys[0], np.nan, True)]
        for case, input_id, value, missing in variants:
            line = sub_item_line(cfg, s.id, case, input_id, value, 3, 5.0, 3.0, missing, lang)
            assert texts.pick(texts.SUB_ITEMS[s.id], lang) in line
            assert ("得分 3/5" in line) if lang == "zh" else ("score 3 of 5" in line)
            assert bool(CJK.search(line)) is (lang == "zh") or s.id == "industry_risk"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rating_explanation_covers_every_weighted_sub_item(cfg, lang):
    res = rate_customers(customers_frame(customer(is_pep=True), corporate(ownership_layers=None)),
                         reports_frame(("C1", "2025-01-01", "suspicious")), behaviour_frame(C1={"cash_share": 0.7}), cfg, AS_OF)
    for cid, ws in (("C1", "individual_existing"), ("K1", "corporate_existing")):
        lines = explain_rating(res, cid, lang=lang)
        assert lines == res.explain(cid, lang)
        weighted = [s for s in spec.SUB_ITEMS if cfg.item_weight(ws, s.id) > 0]
        for s in weighted:
            assert any(texts.pick(texts.SUB_ITEMS[s.id], lang) in line for line in lines), s.id
        text = "\n".join(lines)
        assert cfg.short_hash in text
        level = cfg.level(res.ratings.set_index("customer_id").loc[cid, "level"])
        assert (level.name.zh if lang == "zh" else level.name.en) in text
    c1 = "\n".join(explain_rating(res, "C1", lang=lang))
    assert texts.pick(texts.HIGHEST_REASONS["pep"], lang) in c1
    assert texts.pick(texts.LOWEST_REFUSALS["suspicious_report"], lang) in c1


def test_lines_add_up_to_the_score(cfg):
    res = rate_customers(customers_frame(customer()), NO_REPORTS, behaviour_frame(C1={"cash_share": 0.5}), cfg, AS_OF)
    lines = explain_rating(res, "C1")
    points = [float(m) for line in lines for m in re.findall(r"= ([0-9.]+) points", line)]
    assert sum(points) == pytest.approx(res.ratings["score"].iat[0], abs=0.01 * len(points))


def test_breakdown_text_matches_sub_item_lines(cfg):
    cs = customers_frame(customer(), corporate(), customer(customer_id="C2", birth_or_incorporation_date=None, nationality="KP"),
                         corporate(customer_id="K2", ownership_layers=None, onboarded_at="2025-06-01"))
    beh = behaviour_frame(C1={"cash_share": 0.5, "peer_cash_ratio": 7.25}, K1={"cash_share": float("nan")},
                          C2={"unusual_txn_count": 4, "peer_txn_freq_ratio": 12.0})
    res = rate_customers(cs, NO_REPORTS, beh, cfg, AS_OF)
    for lang in ("en", "zh"):
        vectorised = breakdown_text(res, lang)
        assert len(vectorised) == len(res.breakdown)
        one_by_one = [sub_item_line(cfg, str(r.sub_item), str(r.case), str(r.input), float(r.value), int(r.score),
                                    float(r.weight), float(r.contribution), bool(r.missing), lang)
                      for r in res.breakdown.itertuples(index=False)]
        assert vectorised.tolist() == one_by_one
        assert all(bool(CJK.search(t)) for t in vectorised) if lang == "zh" else True


def test_rule_explanations(cfg):
    zero = {name: 0.0 for name in __import__("amlscore.features.catalogue", fromlist=["FEATURE_NAMES"]).FEATURE_NAMES}
    r = score_transaction_rules(dict(zero, is_cash=1, amount=60_000.0, is_high_risk_country=1), cfg)
    en = explain_rules(r, cfg, "en")
    zh = explain_rules(r, cfg, "zh")
    assert en[0].startswith("Rule score 65.0 of 100 from 2 rule(s)")
    assert any("Large cash transaction (weight 0.30): transaction amount 60,000 ≥ 50,000; cash transaction 1 = 1." == line for line in en)
    assert zh[0].startswith("规则评分 65.0/100") and any("大额现金交易（权重 0.30）：交易金额 60,000 ≥ 50,000" in line for line in zh)
    quiet = score_transaction_rules(zero, cfg)
    assert explain_rules(quiet, cfg, "en")[0].startswith("No rule fired")
    assert explain_rules(quiet, cfg, "zh")[0].startswith("未触发任何规则")


def test_unknown_language_and_customer(cfg):
    res = rate_customers(customers_frame(customer()), NO_REPORTS, None, cfg, AS_OF)
    with pytest.raises(AmlError, match="'lang'"):
        explain_rating(res, "C1", lang="fr")
    with pytest.raises(AmlError, match="not in this rating"):
        explain_rating(res, "nobody")
