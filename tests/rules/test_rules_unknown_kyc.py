"""Contract 1.1: unknown KYC is scored by each sub-item's configured ``missing`` value, said so in the
explanation in both languages, counted per customer, and never a direct-to-highest reason."""

from __future__ import annotations

import pytest

from amlscore.contract import dataset_from_frames
from amlscore.models.rules import rate_customers
from amlscore.models.rules.config import default_config_data, parse_rules_config
from rules_builders import AS_OF, NO_REPORTS, behaviour_frame, customer, customers_frame

UNKNOWN_KYC = dict(is_pep=None, on_watchlist=None, refused_cdd=None, id_document_type=None, onboarding_channel=None,
                   birth_or_incorporation_date=None)
UNKNOWN_ITEMS = {"pep_association", "adverse_records", "id_document", "relationship_channel", "age"}


def _rate(cfg, **overrides):
    return rate_customers(customers_frame(customer(**overrides)), NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)


def test_unknown_flags_are_not_a_direct_to_highest_reason(cfg):
    r = _rate(cfg, **UNKNOWN_KYC).ratings.iloc[0]
    assert r["rating_basis"] == "weighted_score" and r["highest_reasons"] == ""
    assert _rate(cfg, is_pep=True).ratings["highest_reasons"].iat[0] == "pep"  # a known PEP still is one


def test_unknown_sub_items_score_their_missing_value_and_are_counted(cfg):
    res = _rate(cfg, **UNKNOWN_KYC)
    b = res.breakdown.set_index("sub_item")
    for item in UNKNOWN_ITEMS:
        assert bool(b.loc[item, "missing"]), item
        assert b.loc[item, "score"] == cfg.sub_items[item].missing, item
    assert res.ratings["n_missing"].iat[0] == len(UNKNOWN_ITEMS)
    assert set(res.ratings["missing_items"].iat[0].split("|")) == UNKNOWN_ITEMS
    known = _rate(cfg)
    assert known.ratings["n_missing"].iat[0] == 0
    assert res.ratings["score"].iat[0] > known.ratings["score"].iat[0]  # unknown is not low risk


def test_the_explanation_says_unknown_in_english_and_chinese(cfg):
    res = _rate(cfg, is_pep=None)
    pep = cfg.sub_items["pep_association"].missing
    en = [line for line in res.explain("C1", "en") if "Politically exposed persons" in line]
    zh = [line for line in res.explain("C1", "zh") if "政治公众人物" in line]
    assert en and f"information missing or doubtful, scored conservatively at {pep}" in en[0]
    assert zh and f"信息缺失或存疑，从严按{pep}分计" in zh[0]
    assert "1 sub-item(s) had missing or doubtful information" in res.explain("C1", "en")[-2]
    assert "1 个子项信息缺失或存疑" in res.explain("C1", "zh")[-2]


def test_rating_from_a_loaded_1_1_customers_table_with_empty_kyc(cfg):
    """The loader's nullable dtypes (boolean with NA) reach the rating as unknown, not as a default."""
    import pandas as pd

    raw = customers_frame(customer(customer_id="C1", **UNKNOWN_KYC), customer(customer_id="C2"))  # None: empty cells
    tx = pd.DataFrame(columns=["txn_id", "timestamp", "customer_id", "account_id", "direction", "amount", "channel",
                               "txn_type", "counterparty_id", "counterparty_type", "counterparty_country", "ip_address",
                               "ip_country", "ip_region", "device_id", "terminal_id", "terminal_region", "operator_id"])
    data = dataset_from_frames(raw, tx, None)
    assert data.customers["is_pep"].isna().tolist() == [True, False]
    res = rate_customers(data.customers, NO_REPORTS, behaviour_frame(C1={}, C2={}), cfg, AS_OF)
    assert res.ratings.set_index("customer_id")["n_missing"].to_dict() == {"C1": len(UNKNOWN_ITEMS), "C2": 0}


def test_missing_score_defaults_to_the_middle_of_the_scale():
    data = default_config_data()
    del data["sub_items"]["pep_association"]["missing"]
    m = max(data["sub_items"]["pep_association"]["categories"].values())
    config = parse_rules_config(data)
    assert config.sub_items["pep_association"].missing == (m + 2) // 2  # ceil((m + 1) / 2): 3 of 5


@pytest.mark.parametrize("missing", [1, 2])
def test_missing_score_below_the_middle_is_refused(missing):
    from amlscore.contract.errors import AmlError

    data = default_config_data()
    data["sub_items"]["pep_association"]["missing"] = missing
    with pytest.raises(AmlError, match="never scored as low risk"):
        parse_rules_config(data)
