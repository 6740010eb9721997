"""Components of shared identifiers on hand-made histories (numbers worked out by hand): chains of
shared identifiers, links that expire, hubs not followed, growth, reported members, point in time;
the offline and online paths agree on every one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from amlscore.features.catalogue import FEATURE_NAMES
from amlscore.features.idcomp import ID_COMPONENT_FEATURES
from amlscore.features.offline import compute_feature_arrays
from amlscore.features.online import OnlineFeatureState, replay
from amlscore.features.params import FeatureParams, FeatureParamsError, load_feature_params
from amlscore.features.registry import customer_records
from amlscore.features.registry import typed_customers as typed_customers_of
from synthetic_frames import make_customers, make_transactions, typed_customers, typed_transactions
from test_hand_computed import _customer
from test_point_in_time_and_parity import assert_same_features

T0 = pd.Timestamp("2025-03-03T02:00:00Z")
COLS = [FEATURE_NAMES.index(n) for n in ID_COMPONENT_FEATURES]


def _txn(tid: str, days: float, cust: str, ip: str | None = None, device: str | None = None,
         operator: str | None = None) -> dict:
    """An outgoing online payment of ``cust`` to an outside account, from ``ip`` and ``device``."""
    return {"txn_id": tid, "timestamp": (T0 + pd.Timedelta(days=days)).round("s").isoformat(), "customer_id": cust,
            "account_id": "A" + cust, "direction": "out", "amount": 100.0, "channel": "online_banking",
            "txn_type": "transfer", "counterparty_id": None, "counterparty_account": "acct" + tid,
            "counterparty_type": "individual", "counterparty_country": "CN", "ip_address": ip, "ip_country": None,
            "ip_region": None, "device_id": device, "terminal_id": None, "terminal_region": None,
            "operator_id": operator}


def _customers(*rows: dict) -> pd.DataFrame:
    return typed_customers(pd.DataFrame(list(rows)))


def _both_paths(customers: pd.DataFrame, rows: list[dict], reports: pd.DataFrame | None = None,
                params: FeatureParams | None = None) -> dict[str, dict[str, float]]:
    """txn_id -> component features; the offline and online paths must give the same rows."""
    txns = typed_transactions(pd.DataFrame(rows))
    arrays = compute_feature_arrays(txns, customers, params=params, reports=reports)
    offline = np.column_stack([arrays[n].astype(np.float64) for n in FEATURE_NAMES])
    online = replay(OnlineFeatureState(customers, params=params, reports=reports), txns)
    assert_same_features(offline, online)
    ids = txns["txn_id"].astype(str).tolist()
    return {tid: dict(zip(ID_COMPONENT_FEATURES, offline[i, COLS])) for i, tid in enumerate(ids)}


def _ring_customers() -> pd.DataFrame:
    # C and D share an emergency contact phone; the others have their own phones and no agent
    return _customers(_customer("A"), _customer("B"), _customer("C", emergency="PX"), _customer("D", emergency="PX"),
                      _customer("E"))


def test_a_chain_of_device_ip_and_emergency_phone_is_one_component_of_four():
    rows = [_txn("T1", 0, "A", device="dev1"), _txn("T2", 1, "B", device="dev1", ip="ip1"),
            _txn("T3", 2, "C", ip="ip1"), _txn("T4", 3, "D"), _txn("T5", 3.5, "E", ip="ip9")]
    f = _both_paths(_ring_customers(), rows)
    assert f["T1"]["id_component_size"] == 1  # A alone on dev1 so far
    assert np.isnan(f["T1"]["id_component_reported_share"])  # no other member
    assert f["T2"]["id_component_size"] == 2  # A and B on dev1
    # C's IP joins B, B's device joins A, C's emergency phone joins D: 4 where no single count sees 4
    assert f["T3"]["id_component_size"] == 4
    assert f["T4"]["id_component_size"] == 4  # D, without a session, is in it through the phone
    assert f["T5"]["id_component_size"] == 1
    # the transactions' links are younger than 7 days: A and B joined within them; C and D share the
    # phone since they were onboarded
    assert f["T4"]["id_component_growth"] == 2


def test_a_link_older_than_the_window_no_longer_joins():
    rows = [_txn("T1", 0, "A", ip="ipW"), _txn("T2", 5, "B", ip="ipW"), _txn("T3", 34.9, "B"),
            _txn("T4", 35.1, "B"), _txn("T5", 36, "B", ip="ipW")]
    f = _both_paths(_customers(_customer("A"), _customer("B")), rows)
    assert f["T2"]["id_component_size"] == 2
    # A was on ipW at day 0: the link holds until day 30, B's until day 35
    assert f["T3"]["id_component_size"] == 1
    assert f["T4"]["id_component_size"] == 1
    # B back on ipW at day 36: A's link is 36 days old and does not join them again
    assert f["T5"]["id_component_size"] == 1


def test_growth_counts_members_reached_only_over_links_younger_than_seven_days():
    rows = [_txn("T1", 0, "A", device="d1"), _txn("T2", 1, "B", device="d1"), _txn("T3", 9, "B", ip="i1"),
            _txn("T4", 10, "C", ip="i1"), _txn("T5", 10.5, "A", device="d1")]
    f = _both_paths(_customers(_customer("A"), _customer("B"), _customer("C")), rows)
    # at day 10: A-B over d1 since day 0-1 (old), B-C over i1 since day 9-10 (new)
    assert f["T4"]["id_component_size"] == 3
    assert f["T4"]["id_component_growth"] == 2  # from C, A and B are reached only over i1, 1 day old
    assert f["T5"]["id_component_size"] == 3
    assert f["T5"]["id_component_growth"] == 1  # from A: B was linked 10 days ago, C joined over i1


def test_an_identifier_shared_by_more_than_the_cap_does_not_merge_customers():
    names = [f"K{i:02d}" for i in range(14)]
    customers = _customers(*[_customer(n) for n in names])
    # 13 customers on one NAT address (above the default cap of 12), two of them also share a device
    rows = [_txn(f"N{i:02d}", i * 0.1, n, ip="nat") for i, n in enumerate(names[:13])]
    rows += [_txn("D1", 2, "K00", device="dev"), _txn("D2", 2.1, "K01", device="dev"),
             _txn("X1", 3, "K13", ip="nat")]
    f = _both_paths(customers, rows)
    assert f["N11"]["id_component_size"] == 12  # 12 customers: not yet a hub
    assert f["N12"]["id_component_size"] == 1  # the 13th makes it a hub: nobody is joined over it
    assert f["D2"]["id_component_size"] == 2  # the device still joins its two
    assert f["X1"]["id_component_size"] == 1
    # with a higher cap the address is followed again
    params = load_feature_params().model_copy(
        update={"id_components": load_feature_params().id_components.model_copy(update={"hub_customers": 20})})
    g = _both_paths(customers, rows, params=params)
    assert g["X1"]["id_component_size"] == 14


def test_a_busy_agent_is_a_hub_and_a_small_agent_ring_is_not():
    ring = [_customer(f"R{i}", agent="AGsmall") for i in range(5)]
    busy = [_customer(f"B{i:02d}", agent="AGbusy") for i in range(20)]
    rows = [_txn("T1", 0, "R0"), _txn("T2", 0.5, "B00")]
    f = _both_paths(_customers(*ring, *busy), rows)
    assert f["T1"]["id_component_size"] == 5
    assert f["T1"]["id_component_growth"] == 0  # onboarded long before: links older than 7 days
    assert f["T2"]["id_component_size"] == 1


def test_the_search_stops_at_the_maximum_size():
    names = [f"M{i:03d}" for i in range(70)]
    # a chain: M(i-1) and M(i) share the address ip(i), each has a device of its own
    rows = []
    for i, n in enumerate(names):
        rows.append(_txn(f"T{i:03d}a", i * 0.01, n, device=f"dv{i}"))
        if i:
            rows.append(_txn(f"T{i:03d}b", i * 0.01 + 0.001, n, ip=f"ip{i}"))
            rows.append(_txn(f"T{i:03d}c", i * 0.01 + 0.002, names[i - 1], ip=f"ip{i}"))
    f = _both_paths(_customers(*[_customer(n) for n in names]), rows)
    assert f["T010c"]["id_component_size"] == 11
    assert f["T069c"]["id_component_size"] == 64  # 70 linked, the search stops at 64


def _reports(customer: str, date: str) -> pd.DataFrame:
    return pd.DataFrame({"report_id": ["R1"], "customer_id": [customer], "txn_id": [None], "report_date": [date],
                         "label": ["suspicious"], "typology": [None]})


def test_reported_members_count_from_their_report_date_on():
    # 2025-03-05 00:00 bank time is 2025-03-04T16:00Z, 1 day 14 hours after T0
    rows = [_txn("T1", 0, "A", device="d"), _txn("T2", 0.5, "B", device="d"), _txn("T3", 1.5, "B", device="d"),
            _txn("T4", 1.7, "B", device="d"), _txn("T5", 1.8, "A", device="d")]
    f = _both_paths(_customers(_customer("A"), _customer("B")), rows, reports=_reports("A", "2025-03-05"))
    assert f["T3"]["id_component_reported"] == 0  # A's report is dated the next day
    assert f["T4"]["id_component_reported"] == 1 and f["T4"]["id_component_reported_share"] == 1.0
    assert f["T5"]["id_component_reported"] == 0  # A's own report does not count for A
    assert f["T5"]["id_component_reported_share"] == 0.0


def test_later_transactions_and_reports_never_change_earlier_rows(small_bank):
    customers, txns = small_bank
    rng = np.random.default_rng(5)
    ids = customers["customer_id"].astype(str).to_numpy()
    cut = txns["timestamp"].iloc[len(txns) // 2]
    cut_day = (pd.Timestamp(cut).tz_convert("Asia/Shanghai") + pd.Timedelta(days=1)).strftime("%Y-%m-%d")
    early = txns[txns["timestamp"] <= cut].reset_index(drop=True)
    chosen = rng.choice(ids, size=len(ids) // 4, replace=False)
    past = pd.DataFrame({"report_id": [f"R{i}" for i in range(len(chosen))], "customer_id": chosen, "txn_id": None,
                         "report_date": "2024-01-01", "label": "suspicious", "typology": None})
    base = compute_feature_arrays(early, customers, reports=past)
    later = txns[txns["timestamp"] > cut].copy()
    # later rows move to other sessions: 4 customers per address, the devices overlapping them, so
    # every customer ends up in one chain
    code = later["customer_id"].astype(str).map({c: i for i, c in enumerate(ids)}).to_numpy()
    later["ip_address"] = pd.Series([f"L{c // 4}" for c in code], index=later.index, dtype="string")
    later["device_id"] = pd.Series([f"LD{(c + 2) // 4}" for c in code], index=later.index, dtype="string")
    full = pd.concat([early, later]).sort_values(["timestamp", "txn_id"], kind="stable").reset_index(drop=True)
    others = rng.choice(ids, size=len(ids) // 3, replace=False)  # reports filed after the cut
    future = pd.concat([past, pd.DataFrame({"report_id": [f"F{i}" for i in range(len(others))], "customer_id": others,
                                            "txn_id": None, "report_date": cut_day, "label": "suspicious",
                                            "typology": None})], ignore_index=True)
    after = compute_feature_arrays(full, customers, reports=future)
    pos = pd.Index(full["txn_id"].astype(str)).get_indexer(early["txn_id"].astype(str))
    a = np.column_stack([base[n].astype(np.float64) for n in ID_COMPONENT_FEATURES])
    b = np.column_stack([after[n].astype(np.float64) for n in ID_COMPONENT_FEATURES])[pos]
    assert_same_features(a, b, list(ID_COMPONENT_FEATURES))
    assert a[:, 0].max() > 1 and np.nanmax(a[:, 2]) > 0  # the history exercises components and reports
    # what changed after the cut does reach the later rows: the test would see a leak
    late_pos = pd.Index(full["txn_id"].astype(str)).get_indexer(later["txn_id"].astype(str))
    unchanged = compute_feature_arrays(txns, customers, reports=past)
    late_orig = pd.Index(txns["txn_id"].astype(str)).get_indexer(later["txn_id"].astype(str))
    for name in ("id_component_size", "id_component_reported"):
        assert (after[name][late_pos] != unchanged[name][late_orig]).any(), name


def test_online_parity_with_reports_and_forgotten_identifiers(monkeypatch):
    """Identifiers idle past the window (+90 days) are forgotten online and their numbers reused; no
    feature changes."""
    import amlscore.features.online as online_mod

    monkeypatch.setattr(online_mod, "_SWEEP_EVERY", 200)
    monkeypatch.setattr(online_mod, "_SWEEP_STEPS", 2)
    customers = make_customers(40, seed=5)
    txns = make_transactions(customers, 5000, seed=6, days=400)
    # addresses shared by 3 customers for one 50-day period each, then idle for good
    period = ((txns["timestamp"] - txns["timestamp"].min()).dt.days // 50).to_numpy()
    has_ip = txns["ip_address"].notna().to_numpy()
    code = txns["customer_id"].astype(str).map({c: i for i, c in enumerate(customers["customer_id"].astype(str))})
    ips = np.where(has_ip, [f"ip{p}-{c // 3}" for p, c in zip(period, code.to_numpy())], None)
    txns["ip_address"] = pd.Series(ips, dtype="string")
    reports = _reports(str(customers["customer_id"].iloc[0]), "2025-01-01")
    offline = compute_feature_arrays(txns, customers, reports=reports)
    expected = np.column_stack([offline[n].astype(np.float64) for n in FEATURE_NAMES])
    state = OnlineFeatureState(customers, reports=reports)
    got = replay(state, txns)
    assert_same_features(expected, got)
    assert offline["id_component_size"].max() > 2
    assert state._idcomp.free or state._idcomp.next_identifier < len(set(ips[has_ip]))  # numbers were reused


@pytest.mark.parametrize("bad, message", [
    ({"window_days": 0}, "window_days"),
    ({"growth_days": 30}, "growth_days"),
    ({"identifiers": ["ip_address", "mac_address"]}, "mac_address"),
    ({"hub_customers": 1}, "hub_customers"),
])
def test_the_component_parameters_are_checked_on_load(tmp_path, bad, message):
    text = (load_feature_params.__globals__["DEFAULT_PARAMS_PATH"]).read_text(encoding="utf-8")
    import yaml

    data = yaml.safe_load(text)
    data["id_components"].update(bad)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(FeatureParamsError, match=message):
        load_feature_params(path)


def test_only_the_configured_identifiers_link():
    params = load_feature_params()
    only_ip = params.model_copy(update={"id_components": params.id_components.model_copy(
        update={"identifiers": ("ip_address",)})})
    rows = [_txn("T1", 0, "A", device="dev1"), _txn("T2", 1, "B", device="dev1", ip="ip1"),
            _txn("T3", 2, "C", ip="ip1"), _txn("T4", 3, "D")]
    f = _both_paths(_ring_customers(), rows, params=only_ip)
    assert f["T2"]["id_component_size"] == 1  # the device is not followed
    assert f["T3"]["id_component_size"] == 2  # B and C over the IP
    assert f["T4"]["id_component_size"] == 1  # nor the emergency phone


def test_a_customer_change_links_from_the_next_transaction_on():
    """Table links follow the customers table online: B given A's phone as its emergency contact joins A's
    component from B's next transaction on (and a snapshot-free restart rebuilds the same from the log)."""
    customers = typed_customers_of(customer_records(_customers(_customer("A"), _customer("B"))))  # the loader's types
    state = OnlineFeatureState(customers)
    first = state.update(_txn("T1", 0, "B"))
    assert first["id_component_size"] == 1
    state.upsert_customers(typed_customers_of(customer_records(_customers(_customer("B", emergency="PA")))))
    after = state.update(_txn("T2", 1, "B"))
    assert after["id_component_size"] == 2
    assert after["id_component_growth"] == 0  # both onboarded long before: not a new link by the table's dates
