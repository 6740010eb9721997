"""Graph features on small hand-made histories (numbers worked out by hand), point in time, and the
online path against the offline one, replayed transactions counted once."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from amlscore.features.catalogue import CATALOGUE, FEATURE_NAMES
from amlscore.features.graph import GRAPH_FEATURES
from amlscore.features.offline import compute_feature_arrays
from amlscore.features.online import OnlineFeatureState, replay
from synthetic_frames import make_customers, make_transactions, typed_customers, typed_transactions
from test_hand_computed import _customer
from test_point_in_time_and_parity import assert_same_features

GRAPH_NAMES = [s.name for s in CATALOGUE if s.group == "graph"]
GRAPH_COLS = [FEATURE_NAMES.index(n) for n in GRAPH_NAMES]
T0 = pd.Timestamp("2025-03-03T02:00:00Z")


def _at(hours: float) -> str:
    return (T0 + pd.Timedelta(hours=hours)).isoformat()


def _pay(tid: str, hours: float, payer: str, payee: str, amount: float, payee_type: str = "individual",
         legs: str = "both") -> list[dict]:
    """A transfer: customer names are single upper-case letters or words of them; an outside account
    starts with ``acct``. ``legs`` = "both" gives the in leg too when both are customers."""
    rows = []
    payer_inside, payee_inside = not payer.startswith("acct"), not payee.startswith("acct")
    if payer_inside:
        rows.append(_row(tid + "o", hours, payer, "out", amount, payee if payee_inside else None,
                         None if payee_inside else payee, payee_type))
    if payee_inside and (legs == "both" or not payer_inside):
        rows.append(_row(tid + "i", hours, payee, "in", amount, payer if payer_inside else None,
                         None if payer_inside else payer, "individual" if payer_inside else "corporate"))
    return rows


def _row(tid, hours, cust, direction, amount, cp_id, cp_account, cp_type):
    return {"txn_id": tid, "timestamp": _at(hours), "customer_id": cust, "account_id": "A" + cust,
            "direction": direction, "amount": amount, "channel": "online_banking", "txn_type": "transfer",
            "counterparty_id": cp_id, "counterparty_account": cp_account, "counterparty_type": cp_type,
            "counterparty_country": "CN", "ip_address": None, "ip_country": None, "ip_region": None,
            "device_id": None, "terminal_id": None, "terminal_region": None, "operator_id": None}


def _customers(names: str, corporate: str = "") -> pd.DataFrame:
    return typed_customers(pd.DataFrame([
        _customer(n, ctype="corporate" if n in corporate else "individual",
                  occ="private_company" if n in corporate else "salaried") for n in names]))


def _both_paths(customers: pd.DataFrame, rows: list[dict], reports: pd.DataFrame | None = None
                ) -> dict[str, dict[str, float]]:
    """txn_id -> graph features; the offline and online paths must give the same."""
    txns = typed_transactions(pd.DataFrame(rows))
    arrays = compute_feature_arrays(txns, customers, reports=reports)
    offline = np.column_stack([arrays[n].astype(np.float64) for n in FEATURE_NAMES])
    online = replay(OnlineFeatureState(customers, reports=reports), txns)
    assert_same_features(offline, online)
    ids = txns["txn_id"].astype(str).tolist()
    return {tid: dict(zip(GRAPH_NAMES, offline[i, GRAPH_COLS])) for i, tid in enumerate(ids)}


def test_a_cycle_of_three_is_found_on_both_legs_of_the_closing_transfer():
    rows = _pay("T1", 0, "A", "B", 1000) + _pay("T2", 1, "B", "C", 990) + _pay("T3", 2, "C", "A", 980)
    g = _both_paths(_customers("ABC"), rows)
    for leg in ("T3o", "T3i"):  # the payer's out row and the payee's in row see the same cycle, once
        assert g[leg]["cycle_len_7d"] == 3 and g[leg]["cycle_cnt_7d"] == 1, leg
    assert g["T2o"]["cycle_len_7d"] == 0 and g["T1o"]["cycle_len_7d"] == 0


def test_a_cycle_of_five_and_its_limits():
    names = "ABCDE"
    rows = []
    for i in range(5):  # A -> B -> C -> D -> E -> A, one hop an hour, out legs only
        rows += _pay(f"T{i}", i, names[i], names[(i + 1) % 5], 1000 - i, legs="out")
    g = _both_paths(_customers(names), rows)
    assert g["T4o"]["cycle_len_7d"] == 5 and g["T4o"]["cycle_cnt_7d"] == 1

    # the same loop with the hops out of time order (C -> D before B -> C) is no temporal cycle
    shuffled = []
    for i, hours in enumerate((0, 2, 1, 3, 4)):
        shuffled += _pay(f"T{i}", hours, names[i], names[(i + 1) % 5], 1000 - i, legs="out")
    assert _both_paths(_customers(names), shuffled)["T4o"]["cycle_len_7d"] == 0

    # money back after more than 7 days does not close a cycle
    late = rows[:-1] + _pay("T4", 24 * 7 + 1, "E", "A", 996, legs="out")
    assert _both_paths(_customers(names), late)["T4o"]["cycle_len_7d"] == 0


def test_scatter_gather_through_intermediaries():
    # an outside account S pays M, N, P; each passes the money on to the outside account T
    rows = []
    for i, mid in enumerate("MNP"):
        rows += _pay(f"S{mid}", i, "acctS", mid, 5000)
    for i, mid in enumerate("MNP"):
        rows += _pay(f"G{mid}", 5 + i, mid, "acctT", 4900, payee_type="corporate")
    g = _both_paths(_customers("MNP"), rows)
    assert [g[f"G{m}o"]["scatter_gather_7d"] for m in "MNP"] == [0, 1, 2]
    assert [g[f"G{m}o"]["cp_fan_in_7d"] for m in "MNP"] == [1, 2, 3]
    assert g["GPo"]["cp_in_sum_7d"] == 3 * 4900.0
    assert g["SPi"]["cp_fan_out_7d"] == 3 and g["SPi"]["cp_out_sum_7d"] == 15000.0  # S scattered to 3
    assert g["GPo"]["gather_scatter_7d"] == 1  # P: one payer, one payee
    assert g["GPo"]["payer_indiv_share_30d"] == 0.0  # T is a corporate


def test_a_pass_through_chain_counts_hops_that_keep_most_of_the_amount():
    rows = (_pay("T1", 0, "acctP", "A", 10000)
            + _pay("T2", 2, "A", "B", 9500)
            + _pay("T3", 3, "B", "acctQ", 9400, payee_type="corporate")
            + _pay("T4", 4, "B", "C", 4000))  # keeps under 80 % of anything that came in: no hop
    g = _both_paths(_customers("ABC"), rows)
    assert g["T1i"]["chain_len_24h"] == 0 and math.isnan(g["T1i"]["chain_kept_share_24h"])
    for leg in ("T2o", "T2i"):
        assert g[leg]["chain_len_24h"] == 1 and g[leg]["chain_kept_share_24h"] == pytest.approx(0.95), leg
    assert g["T3o"]["chain_len_24h"] == 2 and g["T3o"]["chain_kept_share_24h"] == pytest.approx(9400 / 9500)
    assert g["T4o"]["chain_len_24h"] == 0


def test_the_payer_side_of_a_firm_paying_individuals():
    rows = (_pay("T1", 0, "X", "D", 3000) + _pay("T2", 1, "X", "E", 2000) + _pay("T3", 2, "X", "D", 1000)
            + _pay("T4", 3, "X", "acctK", 4000, payee_type="corporate"))
    g = _both_paths(_customers("XDE", corporate="X"), rows)
    assert g["T3o"]["payer_new_indiv_payees_30d"] == 2 and g["T3o"]["payer_payees_30d"] == 2
    assert g["T3o"]["payer_indiv_share_30d"] == 1.0
    assert g["T4o"]["payer_indiv_share_30d"] == pytest.approx(6000 / 10000)
    # the payee's in row describes the same payer, counting the transfer once
    assert g["T3i"]["payer_indiv_share_30d"] == 1.0 and g["T3i"]["payer_payees_30d"] == 2
    assert g["T2i"]["payer_new_indiv_payees_30d"] == 2


def test_a_report_counts_from_its_report_date_on():
    reports = pd.DataFrame({"report_id": ["R1", "R2"], "customer_id": ["B", "D"], "txn_id": [None, None],
                            "report_date": ["2025-03-04", "2025-03-01"], "label": ["suspicious", "not_suspicious"],
                            "typology": [None, None]})
    # 2025-03-04 00:00 bank time (UTC+8) is 2025-03-03T16:00Z, 14 hours after T0
    rows = (_pay("T1", 0, "C", "A", 500) + _pay("T2", 1, "A", "B", 400) + _pay("T3", 13.9, "A", "B", 300)
            + _pay("T4", 14.1, "A", "B", 200) + _pay("T5", 15, "C", "D", 100))
    g = _both_paths(_customers("ABCD"), rows, reports)
    assert g["T3o"]["cp_reported"] == 0 and g["T3o"]["reported_cps_30d"] == 0
    assert g["T4o"]["cp_reported"] == 1 and g["T4o"]["reported_cps_30d"] == 1
    assert g["T4o"]["reported_out_sum_30d"] == 900.0  # 400 + 300 + 200 paid to B, reported by now
    assert g["T4o"]["reported_distance_30d"] == 1
    # C is two hops from B (C -> A -> B); D's report is not a suspicious one
    assert g["T5o"]["reported_2hop_30d"] == 1 and g["T5o"]["reported_distance_30d"] == 2
    assert g["T5o"]["cp_reported"] == 0
    # the reported customer's own rows do not count itself
    assert g["T4i"]["reported_cps_30d"] == 0


def _bank_reports(customers: pd.DataFrame, txns: pd.DataFrame) -> pd.DataFrame:
    """Suspicious reports of a fifth of the customers, dated across the history."""
    rng = np.random.default_rng(11)
    ids = customers["customer_id"].astype(str).to_numpy()
    chosen = rng.choice(ids, size=len(ids) // 5, replace=False)
    days = pd.to_datetime(txns["timestamp"]).dt.tz_convert(None).dt.normalize()
    dates = rng.choice(pd.date_range(days.min(), days.max()).strftime("%Y-%m-%d"), size=len(chosen))
    return pd.DataFrame({"report_id": [f"R{i}" for i in range(len(chosen))], "customer_id": chosen,
                         "txn_id": None, "report_date": dates, "label": "suspicious", "typology": None})


def test_graph_features_are_point_in_time_with_reports(small_bank):
    customers, txns = small_bank
    reports = _bank_reports(customers, txns)
    cut = txns["timestamp"].iloc[len(txns) // 2]
    early = txns[txns["timestamp"] <= cut].reset_index(drop=True)
    base = compute_feature_arrays(early, customers, reports=reports)
    later = txns[txns["timestamp"] > cut].copy()
    later["amount"] = later["amount"] * 3 + 1
    later["direction"] = later["direction"].map({"in": "out", "out": "in"}).astype(txns["direction"].dtype)
    full = pd.concat([early, later]).sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)
    after = compute_feature_arrays(full, customers, reports=reports)
    pos = pd.Index(full["txn_id"].astype(str)).get_indexer(early["txn_id"].astype(str))
    a = np.column_stack([base[n].astype(np.float64) for n in GRAPH_FEATURES])
    b = np.column_stack([after[n].astype(np.float64) for n in GRAPH_FEATURES])[pos]
    assert_same_features(a, b, list(GRAPH_FEATURES))
    # reports do change later rows (the features read them), and a report dated after the history none
    assert (a[:, GRAPH_FEATURES.index("reported_cps_30d")] > 0).any()
    future = reports.assign(report_date="2099-01-01")
    none = compute_feature_arrays(early, customers, reports=future)
    assert (none["reported_cps_30d"] == 0).all() and (none["cp_reported"] == 0).all()


def test_online_graph_parity_with_reports_and_replays_counted_once(small_bank):
    customers, txns = small_bank
    reports = _bank_reports(customers, txns)
    offline = compute_feature_arrays(txns, customers, reports=reports)
    expected = np.column_stack([offline[n].astype(np.float64) for n in FEATURE_NAMES])
    state = OnlineFeatureState(customers, reports=reports)
    from amlscore.features.events import transaction_records

    records = list(transaction_records(txns))
    got = []
    for i, record in enumerate(records):
        got.append(state.update_vector(record))
        if i % 500 == 0 and i:  # a replayed transaction returns its row and changes nothing
            counts = state._graph.arrays.count.copy()
            again = state.update_vector(records[i - 1])
            np.testing.assert_array_equal(again, got[i - 1])
            np.testing.assert_array_equal(state._graph.arrays.count, counts)
    assert_same_features(expected, np.array(got))
    # the history exercises the graph, not just zeros
    for name in ("cp_fan_in_7d", "gather_scatter_7d", "payer_new_indiv_payees_30d", "reported_cps_30d",
                 "reported_2hop_30d"):
        assert offline[name].max() > 0, name


def test_forgotten_outside_accounts_free_their_ids_without_changing_a_feature(monkeypatch):
    """Outside accounts idle past the graph's window (+90 days) are forgotten and their node ids reused;
    every edge still naming an old id is older than any window, so no feature changes."""
    import amlscore.features.online as online_mod

    monkeypatch.setattr(online_mod, "_SWEEP_EVERY", 200)
    monkeypatch.setattr(online_mod, "_SWEEP_STEPS", 2)
    customers = make_customers(40, seed=5)
    txns = make_transactions(customers, 5000, seed=6, days=400)
    # the first and the last 60 days deal with accounts seen only once: the first ones are idle long
    # enough to be forgotten before the last ones need ids
    ts = txns["timestamp"]
    once = ((ts < ts.min() + pd.Timedelta(days=60)) | (ts > ts.max() - pd.Timedelta(days=60))).to_numpy()
    txns["counterparty_id"] = txns["counterparty_id"].where(~once, None)
    txns["counterparty_account"] = txns["counterparty_account"].astype(object)
    txns.loc[once, "counterparty_account"] = [f"ONCE{i}" for i in range(int(once.sum()))]
    txns["counterparty_account"] = txns["counterparty_account"].astype("string")
    offline = compute_feature_arrays(txns, customers)
    expected = np.column_stack([offline[n].astype(np.float64) for n in FEATURE_NAMES])
    state = OnlineFeatureState(customers)
    got = replay(state, txns)
    assert_same_features(expected, got)
    n_outside = int(pd.Series(txns["counterparty_account"]).dropna().nunique())
    assert state._graph.next_node - state._graph.n_customers < n_outside  # ids were reused


def test_the_payer_against_its_peer_group():
    # X and Y are firms of one peer group; on the first day Y pays a fifth of its outflow to individuals
    rows = (_pay("T1", 0, "Y", "acctK", 8000, payee_type="corporate") + _pay("T2", 1, "Y", "D", 2000)
            + _pay("T3", 24, "X", "D", 3000) + _pay("T4", 25, "acctS", "D", 500))
    g = _both_paths(_customers("XYD", corporate="XY"), rows)
    name = "payer_indiv_share_vs_peers_30d"
    assert math.isnan(g["T2o"][name])  # no complete day before: the peer group paid nothing out yet
    assert g["T3o"][name] == pytest.approx(1.0 - 2000 / 10000)
    assert g["T3i"][name] == pytest.approx(1.0 - 2000 / 10000)  # the payee's row describes the same payer
    assert math.isnan(g["T4i"][name])  # an outside payer has no peer group
