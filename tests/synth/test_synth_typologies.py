"""Every typology is injected at its rate, over the whole window, and can be seen in the data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.contract.load import Dataset
from amlscore.synth.bank import SyntheticBank
from amlscore.synth.config import DEFAULT_TYPOLOGIES, TYPOLOGY_SPECS, load_bank_rules

from synthbank_helpers import SMALL, local_days, participants

RULES = load_bank_rules()


def _rows(labelled: pd.DataFrame, typology: str) -> pd.DataFrame:
    return labelled[labelled["typology"] == typology]


def test_every_typology_has_its_configured_number_of_scenarios(bank: SyntheticBank) -> None:
    gt = bank.ground_truth
    assert set(gt["typology"].astype(str)) == set(DEFAULT_TYPOLOGIES)
    for spec in TYPOLOGY_SPECS:
        scenarios = gt.loc[gt["typology"] == spec.name, "scenario_id"].nunique()
        assert scenarios == SMALL.scenario_count(spec), spec.name
    # A scenario is of one typology.
    assert (gt.groupby("scenario_id")["typology"].nunique() == 1).all()


def test_laundering_share_is_small_but_every_typology_counts(bank: SyntheticBank) -> None:
    gt = bank.ground_truth
    rate = len(gt) / len(bank.transactions)
    assert 0.005 < rate < 0.06
    share = gt["typology"].value_counts(normalize=True)
    assert (share > 0.005).all(), share


def test_each_typology_spans_the_window(labelled: pd.DataFrame) -> None:
    """A time split into thirds leaves every typology in train, validation and test."""
    days = local_days(labelled["timestamp"])
    third = ((days - days.min()).astype(int) * 3 // SMALL.days).clip(0, 2)
    launder = labelled["laundering"].to_numpy()
    table = pd.crosstab(labelled.loc[launder, "typology"], third[launder])
    assert table.shape == (len(DEFAULT_TYPOLOGIES), 3)
    assert (table.to_numpy() > 0).all(), table


def test_launderers_also_live_normally_and_normal_customers_are_never_launderers(
        labelled: pd.DataFrame, bank: SyntheticBank) -> None:
    gang = participants(bank)
    mine = labelled[labelled["customer_id"].isin(gang)]
    assert (~mine["laundering"]).mean() > 0.2  # cover activity on the launderers' accounts
    others = labelled[~labelled["customer_id"].isin(gang)]
    assert not others["laundering"].any()


def test_structuring_is_cash_just_under_the_threshold(labelled: pd.DataFrame) -> None:
    t = RULES.large_cash_threshold
    rows = _rows(labelled, "structuring")
    cash = rows[rows["txn_type"] == "cash_deposit"]
    near = (cash["amount"] >= t * (1 - RULES.near_threshold_band)) & (cash["amount"] < t)
    assert near.mean() > 0.6
    normal = labelled[~labelled["laundering"] & (labelled["txn_type"] == "cash_deposit")]
    normal_near = (normal["amount"] >= t * 0.9) & (normal["amount"] < t)
    assert normal_near.mean() < 0.1 < near.mean()
    # Legitimate cash businesses do deposit big sums, sometimes above the threshold.
    assert (normal["amount"] >= t).any()


def test_fan_in_and_fan_out_hubs_have_many_counterparties(labelled: pd.DataFrame) -> None:
    for typology, direction in (("fan_in", "in"), ("fan_out", "out")):
        rows = _rows(labelled, typology)
        rows = rows[(rows["direction"] == direction) & (rows["txn_type"] == "transfer")]
        per_hub = rows.groupby("scenario_id").apply(lambda g: g.groupby("customer_id").size().max())
        assert (per_hub >= 10).all(), typology


def test_rapid_pass_through_moves_money_on_within_hours(labelled: pd.DataFrame) -> None:
    rows = _rows(labelled, "rapid_pass_through").sort_values("timestamp")
    gaps = []
    for _, g in rows.groupby("customer_id"):
        ins = g.loc[g["direction"] == "in", "timestamp"].to_numpy()
        outs = g.loc[g["direction"] == "out", "timestamp"].to_numpy()
        if len(ins) and len(outs):
            k = np.searchsorted(ins, outs, side="right") - 1
            ok = k >= 0
            gaps.append((outs[ok] - ins[k[ok]]) / np.timedelta64(1, "h"))
    gaps = np.concatenate(gaps)
    assert np.median(gaps) < 13 and (gaps <= 24).mean() > 0.8


def test_shared_ip_device_rows_share_an_ip_or_device_across_customers(labelled: pd.DataFrame) -> None:
    rows = _rows(labelled, "shared_ip_device")
    rows = rows[rows["ip_address"].notna()]
    by_ip = rows.groupby("scenario_id").apply(lambda g: g.groupby("ip_address")["customer_id"].nunique().max())
    by_dev = rows.groupby("scenario_id").apply(lambda g: g.groupby("device_id")["customer_id"].nunique().max())
    assert (np.maximum(by_ip, by_dev) >= 3).all()
    normal = labelled[~labelled["laundering"] & labelled["device_id"].notna()]
    assert normal.groupby("device_id")["customer_id"].nunique().quantile(0.99) <= 2


def test_ip_abroad_is_outside_the_home_region(labelled: pd.DataFrame, dataset: Dataset) -> None:
    rows = _rows(labelled, "ip_abroad")
    rows = rows[rows["ip_address"].notna()]
    home = rows["customer_id"].map(dataset.customers.set_index("customer_id")["home_region"])
    away = (rows["ip_country"] != RULES.bank_country) | (rows["ip_region"] != home)
    assert away.to_numpy(dtype=bool, na_value=True).mean() > 0.95
    normal = labelled[~labelled["laundering"] & labelled["ip_address"].notna()]
    assert 0 < (normal["ip_country"] != RULES.bank_country).mean() < 0.05  # travellers and expats


def test_corp_to_personal_pays_individuals_from_a_firm(labelled: pd.DataFrame, dataset: Dataset) -> None:
    rows = _rows(labelled, "corp_to_personal")
    kind = rows["customer_id"].map(dataset.customers.set_index("customer_id")["customer_type"])
    paid = rows[(kind == "corporate").to_numpy() & (rows["direction"] == "out").to_numpy()]
    assert len(paid) > 20
    assert (paid["counterparty_type"] == "individual").all() and (paid["txn_type"] == "transfer").all()


def test_dormant_accounts_were_silent_for_180_days(labelled: pd.DataFrame, dataset: Dataset) -> None:
    rows = _rows(labelled, "dormant_reactivation")
    onboarded = dataset.customers.set_index("customer_id")["onboarded_at"]
    for customer, g in rows.groupby("customer_id"):
        first = g["timestamp"].min()
        before = labelled[(labelled["customer_id"] == customer) & (labelled["timestamp"] < first)]
        last = before["timestamp"].max().tz_localize(None) if len(before) else onboarded[customer]
        assert (first.tz_localize(None) - last).days >= RULES.dormancy_days, customer


def test_high_risk_remittances_go_to_high_risk_countries(labelled: pd.DataFrame) -> None:
    rows = _rows(labelled, "high_risk_remittance")
    rem = rows[rows["txn_type"] == "remittance"]
    assert len(rem) > 10 and rem["counterparty_country"].isin(RULES.high_risk_countries).all()


def test_agent_ring_shares_agent_and_emergency_contact(bank: SyntheticBank, dataset: Dataset) -> None:
    gt = bank.ground_truth
    customers = dataset.customers.set_index("customer_id")
    for _, g in gt[gt["typology"] == "agent_ring"].groupby("scenario_id"):
        ring = customers.loc[g["customer_id"].astype(str).unique()]
        assert ring["agent_id"].nunique() == 1 and ring["agent_id"].notna().all()
        assert ring["emergency_contact_phone"].value_counts().iloc[0] >= 3


def test_cycle_money_comes_back_round(labelled: pd.DataFrame) -> None:
    rows = _rows(labelled, "cycle")
    for _, g in rows[(rows["direction"] == "out") & rows["counterparty_id"].notna()].groupby("scenario_id"):
        edges = dict(zip(g["customer_id"].astype(str), g["counterparty_id"].astype(str)))
        start = next(iter(sorted(edges)))
        seen, node = [start], edges[start]
        while node != start and node in edges and node not in seen:
            seen.append(node)
            node = edges[node]
        assert node == start and len(seen) >= 3


@pytest.mark.parametrize("typology", DEFAULT_TYPOLOGIES)
def test_amounts_vary_within_a_typology(labelled: pd.DataFrame, typology: str) -> None:
    amounts = _rows(labelled, typology)["amount"]
    assert amounts.nunique() > 10 and amounts.std() > 0
