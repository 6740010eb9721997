"""The weighted rating: arithmetic pinned against hand-computed examples, weight sets, missing data,
behaviour feeding the business sub-items."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.models.rules import customer_behaviour, load_rules_config, rate_customers
from amlscore.models.rules.config import default_config_data, parse_rules_config
from rules_builders import (
    AS_OF,
    NO_REPORTS,
    behaviour_frame,
    corporate,
    customer,
    customers_frame,
    feature_frame,
    reports_frame,
    uniform_tables_config,
)


def row(result, cid: str) -> pd.Series:
    r = result.ratings
    return r[r["customer_id"] == cid].iloc[0]


def items(result, cid: str) -> dict[str, tuple[int, float, bool]]:
    b = result.breakdown
    b = b[b["customer_id"] == cid]
    return {str(s): (int(p), float(w), bool(m)) for s, p, w, m in zip(b["sub_item"], b["score"], b["weight"], b["missing"])}


# ---------------------------------------------------------------------------------------------
# The formula's range: sum(a_i * p_i) / m from 100/m to 100
# ---------------------------------------------------------------------------------------------
FULL_INDIVIDUAL = customer()
FULL_CORPORATE = corporate()
FULL_NEW = customer(customer_id="C9", onboarded_at="2025-06-01")


@pytest.mark.parametrize("m", [5, 10])
def test_all_sub_items_at_the_top_give_exactly_100(m):
    cfg = uniform_tables_config(m, m=m)
    res = rate_customers(customers_frame(FULL_INDIVIDUAL, FULL_CORPORATE, FULL_NEW), NO_REPORTS,
                         behaviour_frame(C1={}, K1={}, C9={}), cfg, AS_OF)
    assert res.ratings["score"].tolist() == [100.0, 100.0, 100.0]
    assert set(res.ratings["weight_set"]) == {"individual_existing", "corporate_existing", "individual_new"}


@pytest.mark.parametrize("m, expected", [(5, 20.0), (10, 10.0)])
def test_all_sub_items_at_1_give_100_over_m(m, expected):
    cfg = uniform_tables_config(1, m=m)
    res = rate_customers(customers_frame(FULL_INDIVIDUAL, FULL_CORPORATE, FULL_NEW), NO_REPORTS,
                         behaviour_frame(C1={}, K1={}, C9={}), cfg, AS_OF)
    assert res.ratings["n_missing"].tolist() == [0, 0, 0]
    assert res.ratings["score"].tolist() == [expected] * 3


def test_contributions_add_up_to_the_score_and_weights_to_100(cfg):
    res = rate_customers(customers_frame(customer(), corporate(), customer(customer_id="C2", onboarded_at="2025-06-01")),
                         NO_REPORTS, behaviour_frame(C1={"cash_share": 0.7}, K1={}), cfg, AS_OF)
    b = res.breakdown
    sums = b.groupby("customer_id")[["contribution", "weight"]].sum()
    scores = res.ratings.set_index("customer_id")["score"]
    assert np.allclose(sums.loc[scores.index, "contribution"].round(2), scores)
    assert np.allclose(sums["weight"], 100)
    assert np.allclose(b["contribution"], b["weight"] * b["score"] / cfg.max_item_score)
    elements = res.ratings.set_index("customer_id")[[f"score_{e}" for e in ("customer", "geography", "business", "industry")]]
    assert np.allclose(elements.sum(axis=1), scores, atol=0.021)


# ---------------------------------------------------------------------------------------------
# Hand-computed examples with the packaged configuration
# ---------------------------------------------------------------------------------------------
def test_hand_computed_existing_individual(cfg):
    c = customer(customer_id="A", onboarding_channel="online", id_document_type="passport",
                 birth_or_incorporation_date="2003-07-01", home_region="CN-53", occupation_or_industry="self_employed")
    beh = behaviour_frame(A=dict(fatf_grey_cp_count=2, offshore_cp_count=1, cash_share=0.5, peer_cash_ratio=6,
                                 non_face_to_face_share=0.95, cross_border_share=0.2, high_risk_txn_count=2,
                                 unusual_txn_count=5, peer_txn_freq_ratio=2.5))
    res = rate_customers(customers_frame(c), reports_frame(("A", "2025-01-10", "suspicious")), beh, cfg, AS_OF)
    expected = {  # sub-item: (score, weight)
        "relationship_channel": (3, 5),   # online
        "id_document": (3, 5),            # passport
        "report_history": (4, 8),         # 1 suspicious report: edges [1, 2] -> 4
        "adverse_records": (2, 5),        # none found in the bank's records
        "age": (3, 7),                    # 21 on 2025-06-30 (birthday on 07-01): [18, 25) -> 3
        "sanctioned_jurisdiction": (1, 5),
        "fatf_jurisdiction": (4, 5),      # counterparties in grey-list countries
        "predicate_crime_region": (4, 3), # CN-53 listed
        "offshore_jurisdiction": (4, 4),  # a counterparty in an offshore centre
        "distance": (1, 3),
        "cash_intensity": (4, 8),         # share 0.5 -> 3, peer ratio 6 -> 4: highest 4
        "non_face_to_face": (3, 4),       # 0.95 >= 0.9
        "cross_border": (4, 6),           # share 0.2 -> 3, 2 high-risk txns -> 4
        "agent_transactions": (1, 5),
        "unusual_activity": (4, 7),       # 5 unusual txns -> 4, peer freq 2.5 -> 2
        "industry_risk": (3, 14),         # self-employed
        "pep_association": (1, 6),
    }
    got = items(res, "A")
    assert {k: (v[0], v[1]) for k, v in got.items()} == expected
    # (93 + 56 + 101 + 48) / 5 = 298 / 5
    r = row(res, "A")
    assert r["score"] == 59.6
    assert (r["score_customer"], r["score_geography"], r["score_business"], r["score_industry"]) == (18.6, 11.2, 20.2, 9.6)
    assert r["level"] == r["score_level"] == "medium_high"
    assert r["rating_basis"] == "weighted_score" and r["highest_reasons"] == ""  # one report is not "repeated"
    assert r["weight_set"] == "individual_existing" and r["n_missing"] == 0


def test_hand_computed_new_corporate_with_missing_behaviour(cfg):
    k = corporate(customer_id="K", occupation_or_industry="precious_metals", onboarding_channel="intermediary",
                  ownership_layers=3, phone="shared", birth_or_incorporation_date="2023-01-15", onboarded_at="2025-05-01",
                  nationality="HK", residence_country="HK", home_region="CN-44")
    others = [customer(customer_id=f"O{i}", phone="shared") for i in range(2)]
    res = rate_customers(customers_frame(k, *others), NO_REPORTS, None, cfg, AS_OF)
    expected = {
        "information_disclosure": (3, 6, False),   # non-listed private entity
        "relationship_channel": (4, 5, False),     # intermediary
        "id_document": (1, 4, False),              # business licence
        "report_history": (1, 6, False),
        "ownership_complexity": (3, 8, False),     # 3 layers
        "adverse_records": (4, 5, False),          # phone shared with 2 other customers
        "corporate_age": (4, 6, False),            # 2 whole years
        "sanctioned_jurisdiction": (3, 6, True),   # counterparty countries unknown -> missing (3)
        "fatf_jurisdiction": (3, 6, True),
        "predicate_crime_region": (1, 4, False),
        "offshore_jurisdiction": (3, 5, True),     # HK is not on the offshore list
        "distance": (4, 4, False),                 # resident abroad
        "cash_intensity": (3, 2, True),            # no behaviour -> missing (3)
        "non_face_to_face": (3, 2, True),
        "cross_border": (3, 2, True),
        "agent_transactions": (3, 2, True),
        "unusual_activity": (3, 2, True),
        "industry_risk": (5, 19, False),
        "pep_association": (1, 6, False),
    }
    assert items(res, "K") == expected
    r = row(res, "K")
    assert r["weight_set"] == "corporate_new" and bool(r["is_new"])
    # (116 + 71 + 30 + 101) / 5 = 318 / 5
    assert r["score"] == 63.6
    assert r["level"] == "medium_high"
    assert r["n_missing"] == 8
    assert r["missing_items"].split("|") == ["sanctioned_jurisdiction", "fatf_jurisdiction", "offshore_jurisdiction",
                                             "cash_intensity", "non_face_to_face", "cross_border", "agent_transactions",
                                             "unusual_activity"]


def test_score_on_a_band_boundary_takes_the_upper_band():
    data = default_config_data()
    for table in data["sub_items"].values():
        if "categories" in table:
            table["categories"] = {k: 1 for k in table["categories"]}
        else:
            for bins in table["inputs"].values():
                bins["scores"] = [1] * len(bins["scores"])
    ids = ["high", "medium_high", "medium", "medium_low", "low"]
    bands = [[60, 100], [40, 60], [20, 40], [10, 20], [0, 10]]
    data["levels"] = [dict(lv, band=b) for lv, b in zip(data["levels"], bands)]
    cfg = parse_rules_config(data)
    res = rate_customers(customers_frame(customer()), NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)
    assert res.ratings["score"].iat[0] == 20.0
    assert res.ratings["level"].iat[0] == "medium" == ids[2]


# ---------------------------------------------------------------------------------------------
# Weight sets, dates, reports
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("onboarded, ctype, expected", [
    ("2025-06-01", "individual", "individual_new"),
    ("2025-04-02", "individual", "individual_new"),        # 89 days
    ("2025-04-01", "individual", "individual_existing"),   # 90 days
    ("2025-06-01", "corporate", "corporate_new"),
    ("2019-01-01", "corporate", "corporate_existing"),
])
def test_weight_set_by_type_and_age(cfg, onboarded, ctype, expected):
    c = customer(onboarded_at=onboarded) if ctype == "individual" else corporate(customer_id="C1", onboarded_at=onboarded)
    res = rate_customers(customers_frame(c), NO_REPORTS, None, cfg, AS_OF)
    assert res.ratings["weight_set"].iat[0] == expected


def test_customers_onboarded_after_the_rating_date_are_left_out(cfg):
    res = rate_customers(customers_frame(customer(), customer(customer_id="C2", onboarded_at="2025-07-01")), NO_REPORTS,
                         None, cfg, AS_OF)
    assert res.ratings["customer_id"].tolist() == ["C1"]
    assert set(res.breakdown["customer_id"]) == {"C1"}


def test_only_suspicious_reports_filed_before_the_rating_date_count(cfg):
    reps = reports_frame(("C1", "2025-06-30", "suspicious"), ("C1", "2025-07-05", "suspicious"),
                         ("C1", "2025-01-01", "not_suspicious"))
    res = rate_customers(customers_frame(customer()), reps, None, cfg, AS_OF)
    assert res.breakdown.set_index("sub_item").loc["report_history", "value"] == 0
    assert "suspicious_report" not in res.ratings["lowest_refusals"].iat[0]


def test_reports_must_be_a_frame(cfg):
    from amlscore.contract.errors import AmlError

    with pytest.raises(AmlError, match="empty one when there is no report"):
        rate_customers(customers_frame(customer()), None, None, cfg, AS_OF)


# ---------------------------------------------------------------------------------------------
# Missing or doubtful information
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field, value, sub_item, missing_score", [
    ("birth_or_incorporation_date", None, "age", 4),
    ("onboarding_channel", "carrier_pigeon", "relationship_channel", 4),
    ("occupation_or_industry", "astronaut", "industry_risk", 4),
    ("id_document_type", None, "id_document", 5),
])
def test_missing_information_is_marked_and_never_low(cfg, field, value, sub_item, missing_score):
    known = rate_customers(customers_frame(customer()), NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)
    unknown = rate_customers(customers_frame(customer(**{field: value})), NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)
    score, _w, missing = items(unknown, "C1")[sub_item]
    assert missing and score == missing_score
    assert sub_item in unknown.ratings["missing_items"].iat[0].split("|")
    assert unknown.ratings["score"].iat[0] > known.ratings["score"].iat[0]


def test_missing_ownership_of_a_corporate_scores_the_top(cfg):
    res = rate_customers(customers_frame(corporate(ownership_layers=None)), NO_REPORTS, behaviour_frame(K1={}), cfg, AS_OF)
    assert items(res, "K1")["ownership_complexity"] == (5, 5.0, True)


def test_no_behaviour_is_never_lower_than_quiet_behaviour(cfg):
    c = customers_frame(customer(), corporate())
    quiet = rate_customers(c, NO_REPORTS, behaviour_frame(C1={}, K1={}), cfg, AS_OF)
    none = rate_customers(c, NO_REPORTS, None, cfg, AS_OF)
    assert (none.ratings["score"].to_numpy() > quiet.ratings["score"].to_numpy()).all()
    # a customer missing from the behaviour frame has had no transaction in the window: shares are unknown
    absent = rate_customers(c, NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)
    assert items(absent, "K1")["cash_intensity"] == (3, 8.0, True)
    assert items(absent, "K1")["unusual_activity"] == (1, 7.0, False)  # no transaction: none was unusual
    assert items(absent, "K1")["sanctioned_jurisdiction"][2] is False  # counterparties known: none


# ---------------------------------------------------------------------------------------------
# Geography
# ---------------------------------------------------------------------------------------------
def test_geography_cases(cfg):
    cs = customers_frame(
        customer(customer_id="KP", nationality="KP"),
        customer(customer_id="GREY", residence_country="VN"),
        customer(customer_id="VG", nationality="VG"),
        customer(customer_id="CP"),
    )
    beh = behaviour_frame(KP={}, GREY={}, VG={}, CP=dict(sanctioned_cp_count=1, fatf_black_cp_count=1))
    res = rate_customers(cs, NO_REPORTS, beh, cfg, AS_OF)
    b = res.breakdown.set_index(["customer_id", "sub_item"])
    assert b.loc[("KP", "sanctioned_jurisdiction"), "case"] == "customer_country"
    assert b.loc[("KP", "fatf_jurisdiction"), "case"] == "customer_black"
    assert b.loc[("GREY", "fatf_jurisdiction"), ["case", "score"]].tolist() == ["customer_grey", 4]
    assert b.loc[("GREY", "distance"), ["case", "score"]].tolist() == ["abroad", 4]
    assert b.loc[("VG", "offshore_jurisdiction"), ["case", "score"]].tolist() == ["customer_country", 5]
    assert b.loc[("CP", "sanctioned_jurisdiction"), ["case", "score"]].tolist() == ["counterparty_country", 5]
    assert b.loc[("CP", "fatf_jurisdiction"), ["case", "score"]].tolist() == ["counterparty_black", 5]
    assert b.loc[("CP", "distance"), "case"] == "bank_region"


def test_bank_regions_make_other_regions_farther():
    cfg = load_rules_config(overrides={"bank": {"regions": ["CN-62"]}})
    res = rate_customers(customers_frame(customer(), customer(customer_id="C2", home_region="CN-62")), NO_REPORTS,
                         behaviour_frame(C1={}, C2={}), cfg, AS_OF)
    b = res.breakdown.set_index(["customer_id", "sub_item"])
    assert b.loc[("C1", "distance"), ["case", "score"]].tolist() == ["outside_bank_regions", 2]
    assert b.loc[("C2", "distance"), "case"] == "bank_region"


def test_shared_phone_is_an_adverse_record(cfg):
    cs = customers_frame(*(customer(customer_id=f"S{i}", phone="same") for i in range(3)), customer(customer_id="P1", phone="x"),
                         customer(customer_id="P2", phone="x"))
    res = rate_customers(cs, NO_REPORTS, None, cfg, AS_OF)
    b = res.breakdown[res.breakdown["sub_item"] == "adverse_records"].set_index("customer_id")
    assert b.loc["S0", "case"] == "shared_phone" and b.loc["S0", "score"] == 4
    assert b.loc["P1", "case"] == "none_found"  # one other customer only (a family phone)


# ---------------------------------------------------------------------------------------------
# Behaviour feeds the business sub-items
# ---------------------------------------------------------------------------------------------
def _txns(cid: str, n: int, **features) -> list[dict]:
    base = dict(amount=1000.0, channel_code=5)
    return [dict(base, customer_id=cid, txn_id=f"{cid}-{i}", timestamp=f"2025-06-{10 + i:02d}T03:00:00Z", **features)
            for i in range(n)]


def test_a_change_in_behaviour_changes_the_rating(cfg):
    c = customers_frame(customer())
    quiet = feature_frame(_txns("C1", 10))
    cashy = feature_frame(_txns("C1", 10, is_cash=1, amount=60000.0, peer_cash_ratio_30d=12.0, near_threshold_cash_cnt_7d=3))
    txns = quiet[["customer_id", "timestamp"]].assign(counterparty_country="CN")
    before = rate_customers(c, NO_REPORTS, customer_behaviour(quiet, AS_OF, cfg, transactions=txns), cfg, AS_OF)
    after = rate_customers(c, NO_REPORTS, customer_behaviour(cashy, AS_OF, cfg, transactions=txns), cfg, AS_OF)
    # quiet: (35 + 20 + 30 + 20) / 5; cash: cash_intensity 5 (+32), 10 unusual transactions -> 5 (+28)
    assert before.ratings["score"].iat[0] == 21.0 and before.ratings["level"].iat[0] == "low"
    assert after.ratings["score"].iat[0] == 33.0 and after.ratings["level"].iat[0] == "medium_low"
    assert items(after, "C1")["cash_intensity"][0] == 5 and items(after, "C1")["unusual_activity"][0] == 5
    # without the transactions the counterparty countries are unknown: scored conservatively, never lower
    blind = rate_customers(c, NO_REPORTS, customer_behaviour(quiet, AS_OF, cfg), cfg, AS_OF)
    assert blind.ratings["score"].iat[0] == 26.6  # sanctioned 3x5, FATF 3x5, offshore 3x4 instead of 5, 5, 4


def test_behaviour_after_the_rating_date_does_not_count(cfg):
    c = customers_frame(customer())
    late = feature_frame(_txns("C1", 3, is_cash=1, peer_cash_ratio_30d=12.0) + [
        dict(customer_id="C1", txn_id="x", timestamp="2025-06-30T17:00:00Z", is_cash=1, amount=9.0, peer_cash_ratio_30d=50.0)])
    beh = customer_behaviour(late, AS_OF, cfg)  # 2025-06-30T17:00Z is 2025-07-01 01:00 on the bank's clock
    assert beh.loc["C1", "n_txn"] == 3 and beh.loc["C1", "peer_cash_ratio"] == 12.0


# ---------------------------------------------------------------------------------------------
# Frames as the loader types them, and vectorisation
# ---------------------------------------------------------------------------------------------
def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    from amlscore.contract.schema import CUSTOMERS

    out = frame.copy()
    for col in CUSTOMERS.columns:
        if col.kind == "category":
            out[col.name] = pd.Categorical(out[col.name], categories=list(col.values))
        elif col.kind == "bool":
            out[col.name] = out[col.name].astype(bool)
        elif col.kind == "date":
            out[col.name] = pd.to_datetime(out[col.name])
        elif col.kind == "integer":
            out[col.name] = out[col.name].astype("Int64")
        elif col.kind in ("text", "country"):
            out[col.name] = out[col.name].astype("string")
    return out


def test_typed_and_plain_frames_rate_the_same(cfg):
    plain = customers_frame(customer(), corporate(ownership_layers=None), customer(customer_id="C3", agent_id="A1",
                                                                                  birth_or_incorporation_date=None))
    a = rate_customers(plain, NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)
    b = rate_customers(_typed(plain), NO_REPORTS, behaviour_frame(C1={}), cfg, AS_OF)
    pd.testing.assert_frame_equal(a.ratings, b.ratings)
    pd.testing.assert_frame_equal(a.breakdown, b.breakdown)


def test_rating_many_at_once_equals_one_by_one(cfg):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(16):
        rows.append(customer(customer_id=f"R{i}", onboarding_channel=rng.choice(["counter", "online", "agent"]),
                             occupation_or_industry=rng.choice(["salaried", "casino", "student", "self_employed"]),
                             nationality=rng.choice(["CN", "CN", "VG", "KP"]), is_pep=bool(rng.random() < 0.1),
                             onboarded_at=rng.choice(["2025-06-01", "2018-01-01"])))
    beh = behaviour_frame(**{f"R{i}": dict(cash_share=float(rng.random()), unusual_txn_count=float(rng.integers(0, 12)))
                             for i in range(0, 16, 2)})
    together = rate_customers(customers_frame(*rows), NO_REPORTS, beh, cfg, AS_OF).ratings.set_index("customer_id")
    for r in rows[::3]:
        alone = rate_customers(customers_frame(r), NO_REPORTS, beh, cfg, AS_OF).ratings.iloc[0]
        assert together.loc[r["customer_id"], "score"] == alone["score"]
        assert together.loc[r["customer_id"], "level"] == alone["level"]


def test_config_hash_travels_with_every_rating(cfg):
    res = rate_customers(customers_frame(customer(), corporate()), NO_REPORTS, None, cfg, AS_OF)
    assert set(res.ratings["config_hash"]) == {cfg.hash}
    assert res.config_hash == cfg.hash


def test_duplicate_customer_ids_are_refused(cfg):
    from amlscore.contract.errors import AmlError

    with pytest.raises(AmlError, match="must be unique"):
        rate_customers(customers_frame(customer(), customer()), NO_REPORTS, None, cfg, AS_OF)


def test_progress_is_reported(cfg):
    seen = []
    rate_customers(customers_frame(customer()), NO_REPORTS, None, cfg, AS_OF, progress=lambda s, d, t: seen.append((d, t)))
    assert seen[-1][0] == seen[-1][1] and len(seen) > 5
