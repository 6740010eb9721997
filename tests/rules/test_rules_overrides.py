"""Direct-to-highest rules and direct-to-lowest eligibility, each one on its own."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.models.rules import load_rules_config, rate_customers
from rules_builders import AS_OF, NO_REPORTS, behaviour_frame, corporate, customer, customers_frame, reports_frame

TWO_REPORTS = reports_frame(("C1", "2024-03-01", "suspicious"), ("C1", "2025-02-01", "suspicious"))
ONE_REPORT = reports_frame(("C1", "2025-02-01", "suspicious"))
ASSETS = pd.Series({"C1": 100_000.0, "K1": 400_000.0})


def rate(c: dict, reports=NO_REPORTS, behaviour=None, cfg=None, assets=ASSETS):
    behaviour = behaviour if behaviour is not None else behaviour_frame(**{c["customer_id"]: {}})
    return rate_customers(customers_frame(c), reports, behaviour, cfg or load_rules_config(), AS_OF, assets=assets).ratings.iloc[0]


# ---------------------------------------------------------------------------------------------
# Direct to the highest level
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overrides, reports, code", [
    ({"on_watchlist": True}, NO_REPORTS, "watchlist"),
    ({"is_pep": True}, NO_REPORTS, "pep"),
    ({}, TWO_REPORTS, "repeated_reports"),
    ({"refused_cdd": True}, NO_REPORTS, "refused_cdd"),
])
def test_each_direct_to_highest_rule(overrides, reports, code):
    r = rate(customer(**overrides), reports)
    assert r["level"] == "high" and r["level_rank"] == 0
    assert r["rating_basis"] == "direct_to_highest"
    assert r["highest_reasons"] == code
    assert r["score_level"] != "high"  # the weighted score alone would not have put it there
    assert "direct_to_highest" in r["lowest_refusals"].split("|")
    assert r["review_interval_months"] == 6


def test_one_report_is_not_repeated_and_the_count_is_configurable():
    assert rate(customer(), ONE_REPORT)["rating_basis"] == "weighted_score"
    three = load_rules_config(overrides={"direct_to_highest": {"repeated_reports_min": 3}})
    assert rate(customer(), TWO_REPORTS, cfg=three)["rating_basis"] == "weighted_score"


def test_several_reasons_are_all_listed():
    r = rate(customer(is_pep=True, on_watchlist=True), TWO_REPORTS)
    assert r["highest_reasons"] == "watchlist|pep|repeated_reports"


def test_pep_corporate_controller_counts():
    r = rate(corporate(is_pep=True))
    assert r["level"] == "high" and r["highest_reasons"] == "pep"


# ---------------------------------------------------------------------------------------------
# Direct to the lowest level
# ---------------------------------------------------------------------------------------------
def test_a_clean_candidate_goes_to_the_lowest_level():
    busy = behaviour_frame(C1=dict(cash_share=0.9, peer_cash_ratio=20, unusual_txn_count=4))
    r = rate(customer(), behaviour=busy)
    assert r["lowest_candidate"] and r["lowest_eligible"] and r["lowest_refusals"] == ""
    assert r["rating_basis"] == "direct_to_lowest" and r["level"] == "low"
    assert r["score_level"] != "low"  # the weighted score alone is higher


def test_state_organ_corporate_within_the_limit_is_eligible():
    r = rate(corporate(customer_id="K1", occupation_or_industry="state_organ"))
    assert r["lowest_eligible"] and r["rating_basis"] == "direct_to_lowest"


def test_not_a_candidate_keeps_its_weighted_level_but_eligibility_is_reported():
    r = rate(customer(occupation_or_industry="self_employed"))
    assert not r["lowest_candidate"] and r["lowest_eligible"]
    assert r["rating_basis"] == "weighted_score"


def test_switched_off():
    off = load_rules_config(overrides={"direct_to_lowest": {"enabled": False}})
    r = rate(customer(), cfg=off)
    assert not r["lowest_candidate"] and r["rating_basis"] == "weighted_score"


@pytest.mark.parametrize("case, code", [
    ("assets_unknown", "assets_unknown"),
    ("individual_assets_200001", "assets_above_limit"),
    ("corporate_assets_500001", "assets_above_limit"),
    ("correspondent_or_trust", "correspondent_or_trust"),
    ("non_resident", "non_resident_or_foreign_id"),
    ("foreign_id", "non_resident_or_foreign_id"),
    ("passport", "non_resident_or_foreign_id"),
    ("hmt_permit", "non_resident_or_foreign_id"),
    ("suspicious_report", "suspicious_report"),
    ("agent_id", "agent_representation"),
    ("agent_channel", "agent_representation"),
    ("operated_by_other", "agent_representation"),
    ("refused_cdd", "refused_cdd"),
])
def test_each_exclusion_refuses_direct_to_lowest(case, code):
    cfg = load_rules_config(overrides={"direct_to_lowest": {"candidate_industries": ["salaried", "state_organ", "money_service"]}})
    c, reports, behaviour, assets = customer(), NO_REPORTS, None, ASSETS
    match case:
        case "assets_unknown":
            assets = None
        case "individual_assets_200001":
            assets = pd.Series({"C1": 200_001.0})
        case "corporate_assets_500001":
            c, assets = corporate(customer_id="C1", occupation_or_industry="state_organ"), pd.Series({"C1": 500_001.0})
        case "correspondent_or_trust":
            c = customer(occupation_or_industry="money_service")
        case "non_resident":
            c = customer(is_resident=False)
        case "foreign_id" | "passport" | "hmt_permit":
            c = customer(id_document_type=case)
        case "suspicious_report":
            reports = ONE_REPORT
        case "agent_id":
            c = customer(agent_id="A7")
        case "agent_channel":
            c = customer(onboarding_channel="agent")
        case "operated_by_other":
            behaviour = behaviour_frame(C1=dict(operated_by_other_share=0.1))
        case "refused_cdd":
            c = customer(refused_cdd=True)
    r = rate(c, reports, behaviour, cfg, assets)
    assert r["lowest_candidate"]
    assert not r["lowest_eligible"]
    assert code in r["lowest_refusals"].split("|")
    assert r["rating_basis"] != "direct_to_lowest"


@pytest.mark.parametrize("ctype, limit", [("individual", 200_000.0), ("corporate", 500_000.0)])
def test_assets_at_the_limit_are_not_above_it(ctype, limit):
    c = customer() if ctype == "individual" else corporate(customer_id="C1", occupation_or_industry="state_organ")
    r = rate(c, assets=pd.Series({"C1": limit}))
    assert r["lowest_eligible"] and r["rating_basis"] == "direct_to_lowest"


def test_unknown_facts_never_make_a_customer_eligible():
    # no assets, unknown industry, unknown channel: every unknown refuses
    r = rate(customer(occupation_or_industry=None, onboarding_channel=None, id_document_type=None), assets=None)
    refusals = set(r["lowest_refusals"].split("|"))
    assert {"assets_unknown", "correspondent_or_trust", "non_resident_or_foreign_id", "agent_representation"} <= refusals
