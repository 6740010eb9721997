"""Feature values on a tiny hand-made history, checked against numbers worked out by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from amlscore.features.offline import compute_feature_arrays
from amlscore.features.online import OnlineFeatureState, replay
from synthetic_frames import typed_customers, typed_transactions
from amlscore.features.catalogue import FEATURE_NAMES


def _customer(cid, ctype="individual", occ="salaried", agent=None, phone=None, emergency=None):
    return {"customer_id": cid, "customer_type": ctype, "birth_or_incorporation_date": pd.NaT, "nationality": "CN",
            "residence_country": "CN", "home_region": "CN-11", "occupation_or_industry": occ,
            "id_document_type": "resident_id", "is_pep": False, "on_watchlist": False, "onboarding_channel": "counter",
            "agent_id": agent, "phone": phone or f"P{cid}", "emergency_contact_phone": emergency,
            "ownership_layers": pd.NA, "refused_cdd": False, "is_resident": True,
            "declared_annual_income": 120000.0, "onboarded_at": "2024-01-01"}


def _txn(tid, ts, cust, direction, amount, channel, ttype, cp=None, cp_type="unknown", ip=None, ip_country=None,
         ip_region=None, device=None, cp_country=None):
    return {"txn_id": tid, "timestamp": ts, "customer_id": cust, "account_id": "A" + cust, "direction": direction,
            "amount": amount, "channel": channel, "txn_type": ttype, "counterparty_id": cp, "counterparty_type": cp_type,
            "counterparty_country": cp_country, "ip_address": ip, "ip_country": ip_country, "ip_region": ip_region,
            "device_id": device, "terminal_id": None, "terminal_region": None, "operator_id": None}


@pytest.fixture(scope="module")
def rows():
    customers = typed_customers(pd.DataFrame([
        _customer("A", agent="AG", emergency="PE"),
        _customer("B", agent="AG", emergency="PE"),
        _customer("C", ctype="corporate", occ="private_company"),
        _customer("D"),
    ]))
    txns = typed_transactions(pd.DataFrame([
        _txn("T1", "2025-03-01T02:00:00Z", "A", "in", 46000.0, "counter", "cash_deposit"),
        _txn("T2", "2025-03-01T03:00:00Z", "A", "in", 48000.0, "counter", "cash_deposit"),
        _txn("T3", "2025-03-01T04:30:00Z", "A", "out", 90000.0, "online_banking", "transfer", cp="B",
             cp_type="individual", ip="1.1.1.1", ip_country="CN", ip_region="CN-11", device="D1"),
        _txn("T4", "2025-03-01T04:30:00Z", "B", "in", 90000.0, "online_banking", "transfer", cp="A",
             cp_type="individual", ip="1.1.1.1", ip_country="CN", ip_region="CN-11", device="D2"),
        _txn("T5", "2025-03-01T05:00:00Z", "D", "out", 10.0, "online_banking", "transfer",
             ip="1.1.1.1", ip_country="CN", ip_region="CN-11", device="D1"),
        _txn("T6", "2025-09-20T02:00:00Z", "A", "out", 500.0, "mobile_banking", "transfer", cp="C",
             cp_type="corporate", ip="9.9.9.9", ip_country="US", ip_region="US-CA", device="D9"),
    ]))
    arrays = compute_feature_arrays(txns, customers)
    online = replay(OnlineFeatureState(customers), txns)
    ids = txns["txn_id"].astype(str).tolist()
    offline_rows = {tid: {n: arrays[n][i] for n in FEATURE_NAMES} for i, tid in enumerate(ids)}
    online_rows = {tid: dict(zip(FEATURE_NAMES, online[i])) for i, tid in enumerate(ids)}
    return offline_rows, online_rows


EXPECTED = {
    "T2": {
        "in_cnt_1h": 1,  # T1 sits exactly at t - 1h: windows are (t - w, t]
        "in_cnt_24h": 2, "in_sum_24h": 94000.0, "in_mean_24h": 47000.0, "in_max_24h": 48000.0, "in_std_24h": 1000.0,
        "near_threshold_cash_cnt_24h": 2, "cash_dep_sum_24h": 94000.0, "is_large_cash": 0, "is_cash": 1,
        "hour_local": 11, "is_night": 0, "share_counter_30d": 1.0, "cash_share_30d": 1.0,
        "amount_vs_own_mean_90d": 48000.0 / 46000.0, "amount_z_own_90d": math.nan,
        "peer_cash_ratio_30d": 94000.0 / 1000.0,  # no peer history yet: the floor of 1,000 CNY applies
        "agent_other_customers": 1, "emergency_phone_other_customers": 1, "phone_other_customers": 0,
        "flow_vs_income_90d": 94000.0 * 365 / 90 / 120000.0,
    },
    "T3": {
        "out_cnt_24h": 1, "passthrough_ratio_24h": 90000.0 / 94000.0, "residual_balance_ratio_7d": 4000.0 / 94000.0,
        "hours_since_last_in": 1.5, "out_within_24h_of_in": 1, "fan_out_7d": 1, "is_new_counterparty": 1,
        "ip_customers_24h": 1, "device_customers_24h": 1, "in_share_30d": 94000.0 / 184000.0,
    },
    "T4": {"ip_customers_24h": 2, "fan_in_7d": 1, "device_customers_24h": 1},
    "T5": {"ip_customers_24h": 3, "device_customers_24h": 2, "is_new_counterparty": 0},
    "T6": {
        "days_since_prev_txn": (pd.Timestamp("2025-09-20T02:00Z") - pd.Timestamp("2025-03-01T04:30Z")) / pd.Timedelta(days=1),
        "is_reactivation": 1, "reactivated_30d": 1, "is_ip_abroad": 1, "is_ip_outside_home_region": 1,
        "is_corp_indiv": 1, "is_new_counterparty": 1, "in_cnt_90d": 0, "out_cnt_90d": 1, "ip_customers_24h": 1,
        "account_age_days": (pd.Timestamp("2025-09-20T02:00Z") - pd.Timestamp("2023-12-31T16:00Z")) / pd.Timedelta(days=1),
    },
}


@pytest.mark.parametrize("path", ["offline", "online"])
@pytest.mark.parametrize("txn_id", sorted(EXPECTED))
def test_feature_values_match_hand_computation(rows, path, txn_id):
    row = rows[0 if path == "offline" else 1][txn_id]
    for name, expected in EXPECTED[txn_id].items():
        got = float(row[name])
        if math.isnan(expected):
            assert math.isnan(got), f"{txn_id} {name}: expected NaN, got {got}"
        else:
            assert got == pytest.approx(expected, rel=1e-12), f"{txn_id} {name}"


def test_a_bank_where_no_customer_has_an_agent_or_emergency_phone():
    customers = typed_customers(pd.DataFrame([_customer("A"), _customer("B")]))
    txns = typed_transactions(pd.DataFrame([
        _txn("T1", "2025-03-01T02:00:00Z", "A", "in", 100.0, "counter", "cash_deposit"),
        _txn("T2", "2025-03-01T03:00:00Z", "B", "out", 50.0, "counter", "cash_withdrawal"),
    ]))
    offline = compute_feature_arrays(txns, customers)
    online = replay(OnlineFeatureState(customers), txns)
    j = FEATURE_NAMES.index("agent_other_customers")
    assert offline["agent_other_customers"].tolist() == [0, 0] == online[:, j].tolist()
    assert offline["emergency_phone_other_customers"].tolist() == [0, 0]
