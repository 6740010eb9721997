"""The generated tables meet the data contract and look like a bank's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from amlscore.contract.load import Dataset
from amlscore.contract.schema import IP_CHANNELS, TERMINAL_CHANNELS
from amlscore.synth.bank import SyntheticBank

from synthbank_helpers import SMALL, local_days


def test_output_passes_the_contract_validator(dataset: Dataset, bank: SyntheticBank) -> None:
    assert len(dataset.customers) == SMALL.customers
    assert len(dataset.transactions) == len(bank.transactions) > 50_000
    assert len(dataset.reports) == len(bank.reports) > 0
    assert dataset.warnings == ()


def test_channel_bound_fields(dataset: Dataset) -> None:
    tx = dataset.transactions
    # The customer's own session: on out rows of e-banking only (an in row's payee did not act).
    session = (tx["channel"].isin(IP_CHANNELS) & (tx["direction"] == "out")).to_numpy()
    terminal = tx["channel"].isin(TERMINAL_CHANNELS).to_numpy()
    for column in ("ip_address", "device_id"):
        present = tx[column].notna().to_numpy()
        assert (present == session).all(), column
    assert tx[tx["direction"] == "in"]["channel"].isin(IP_CHANNELS).any()  # credits arrive through e-banking too
    assert (tx["terminal_id"].notna().to_numpy() == terminal).all()
    assert tx.loc[terminal, "terminal_region"].notna().all()
    # Operators are the exception, not the rule.
    assert 0 < tx["operator_id"].notna().mean() < 0.02


def test_internal_transfers_appear_twice_with_matching_legs(dataset: Dataset) -> None:
    tx = dataset.transactions
    internal = tx[tx["counterparty_id"].notna()]
    keys = ["timestamp", "amount", "txn_type"]
    out = internal[internal["direction"] == "out"].rename(columns={"customer_id": "payer", "counterparty_id": "payee"})
    inn = internal[internal["direction"] == "in"].rename(columns={"customer_id": "payee", "counterparty_id": "payer"})
    joined = out.merge(inn, on=["payer", "payee", *keys], how="outer", indicator=True, suffixes=("_out", "_in"))
    assert (joined["_merge"] == "both").all()
    assert (joined["txn_id_out"] != joined["txn_id_in"]).all()
    assert len(joined) == len(out) == len(inn)
    # The credit leg takes the payer's channel and none of the payer's session.
    assert (joined["channel_in"] == joined["channel_out"]).all()
    assert joined["ip_address_in"].isna().all() and joined["device_id_in"].isna().all()
    # Each leg names the other leg's account.
    assert (joined["counterparty_account_out"] == joined["account_id_in"]).all()
    assert (joined["counterparty_account_in"] == joined["account_id_out"]).all()
    # Most transfers stay inside the bank.
    transfers = tx[tx["txn_type"] == "transfer"]
    assert transfers["counterparty_id"].notna().mean() > 0.5
    # A counterparty of the bank is a customer of the bank.
    assert internal["counterparty_id"].isin(dataset.customers["customer_id"]).all()


def test_outside_counterparties_have_accounts_at_other_banks(dataset: Dataset) -> None:
    tx = dataset.transactions
    cash = tx["txn_type"].isin(["cash_deposit", "cash_withdrawal"])
    outside = tx["counterparty_id"].isna() & ~cash
    assert tx.loc[cash, "counterparty_account"].isna().all()
    accounts = tx.loc[outside, "counterparty_account"]
    assert accounts.notna().all()
    assert not accounts.isin(tx["account_id"]).any()  # not an account of this bank
    # Customers deal with recurring outside accounts, not a new one every time.
    assert accounts.nunique() < 0.5 * len(accounts)


def test_transactions_are_inside_the_window_and_after_onboarding(dataset: Dataset) -> None:
    tx = dataset.transactions
    days = local_days(tx["timestamp"])
    start = np.datetime64(SMALL.start, "D")
    assert days.min() >= start and days.max() <= start + SMALL.days - 1
    onboarded = tx["customer_id"].map(dataset.customers.set_index("customer_id")["onboarded_at"])
    assert (days >= onboarded.to_numpy(dtype="datetime64[D]")).all()
    amounts = tx["amount"].to_numpy()
    assert (amounts > 0).all() and np.allclose(np.round(amounts, 2), amounts)


def test_daily_and_weekly_rhythm(dataset: Dataset) -> None:
    local = dataset.transactions["timestamp"].dt.tz_convert("Asia/Shanghai")
    pos = dataset.transactions["channel"] == "pos"
    hours = np.bincount(local[pos].dt.hour, minlength=24) / pos.sum()
    assert hours[0:6].sum() < 0.03  # few card payments at night
    assert hours[12] > hours[15] and hours[19] > hours[15]  # lunch and evening peaks
    weekday = np.bincount(local[pos].dt.day_of_week, minlength=7)
    assert weekday[5] > weekday[1]  # busier Saturdays


def test_population_is_spread_like_a_bank(dataset: Dataset) -> None:
    c = dataset.customers
    corporate = (c["customer_type"] == "corporate").mean()
    assert 0.08 < corporate < 0.16
    assert c["home_region"].str.fullmatch(r"CN-\d\d").all()
    assert c["home_region"].nunique() > 15
    assert c["is_pep"].mean() < 0.02 and c["on_watchlist"].mean() < 0.01
    assert 0.005 < (~c["is_resident"]).mean() < 0.05
    assert 0.02 < c["onboarding_channel"].isin(["agent", "intermediary"]).mean() < 0.10
    assert c["agent_id"].notna().sum() == c["onboarding_channel"].isin(["agent", "intermediary"]).sum()
    corp = c[c["customer_type"] == "corporate"]
    assert corp["ownership_layers"].notna().mean() > 0.8
    assert c.loc[c["customer_type"] == "individual", "ownership_layers"].isna().all()
    assert c["declared_annual_income"].isna().any() and c["declared_annual_income"].notna().mean() > 0.8
    assert (c["onboarded_at"] < pd.Timestamp(SMALL.start)).mean() > 0.8
    assert set(c.loc[c["customer_type"] == "corporate", "id_document_type"]) <= {"business_license", "other"}
    assert {"passport", "hmt_permit"} <= set(c["id_document_type"])


def test_an_agent_executing_a_transaction_appears_as_its_operator(dataset: Dataset) -> None:
    tx = dataset.transactions
    by_agent = tx[tx["operator_id"].str.startswith("AG", na=False)]
    assert len(by_agent) > 0
    agent_of = by_agent["customer_id"].map(dataset.customers.set_index("customer_id")["agent_id"])
    assert (by_agent["operator_id"] == agent_of).all()
    assert (by_agent["channel"] == "counter").all()
