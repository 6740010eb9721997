"""The facts of a case, checked against the data they come from (tiny generated bank, no model or a fake one)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from amlscore.contract.errors import AmlError
from amlscore.reports.case import gather_case
from amlscore.reports.case_types import CaseError


def _period(store, customer_id):
    """A 30-day period ending on the customer's last active day."""
    t = store.transactions(customer_id)
    last = store.local(t["timestamp"]).max().normalize()
    return (last - pd.Timedelta(days=29)).date(), last.date()


@pytest.fixture(scope="module")
def period_case(store, busy_customer, fake_model):
    start, end = _period(store, busy_customer)
    return gather_case(store, customer_id=busy_customer, start=start, end=end, model=fake_model, lang="en")


def test_profile_is_the_customers_row(period_case, store, busy_customer):
    c = store.customer(busy_customer)
    p = period_case.profile
    assert p.customer_id == busy_customer
    assert p.customer_type == str(c["customer_type"]) and p.occupation == str(c["occupation_or_industry"])
    assert p.peer_group == f"{c['customer_type']}|{c['occupation_or_industry']}"
    assert p.is_pep == bool(c["is_pep"]) and p.on_watchlist == bool(c["on_watchlist"])
    assert set(p.accounts) == set(store.transactions(busy_customer)["account_id"].astype(str))


def test_period_totals_match_the_transactions(period_case, store, busy_customer):
    t = store.transactions(busy_customer)
    day = store.local(t["timestamp"]).dt.normalize()
    sel = (day >= pd.Timestamp(period_case.start)) & (day <= pd.Timestamp(period_case.end))
    period = period_case.in_period
    assert len(period) == int(sel.sum())
    assert set(period["txn_id"]) == set(t.loc[sel, "txn_id"].astype(str))
    assert period["amount"].sum() == pytest.approx(t.loc[sel, "amount"].sum())
    assert (period["time"].diff().dropna() >= pd.Timedelta(0)).all()  # time order


def test_explained_transaction_is_the_highest_scored_of_the_period(period_case):
    s = period_case.score
    assert s.txn.txn_id in set(period_case.in_period["txn_id"])
    assert s.suspicion_score == pytest.approx(period_case.in_period["suspicion_score"].max())
    assert s.alert == (s.suspicion_score >= s.threshold)
    assert s.source == "recomputed"
    assert s.base_value == pytest.approx(-2.5)
    # attributions sorted by size; what is not listed is summed in "other"
    sizes = [abs(a.contribution) for a in s.attributions]
    assert sizes == sorted(sizes, reverse=True) and len(s.attributions) <= 10
    assert all(a.label != a.feature for a in s.attributions)
    assert dict(s.fusion_terms) == {"rule_score": 1.2, "lgbm_probability": 2.1, "anomaly_score": 0.3}
    assert s.fusion_intercept == pytest.approx(-4.0)
    # base + listed + other = the LightGBM log-odds of the transaction's probability
    p = s.lgbm_probability
    total = s.base_value + sum(a.contribution for a in s.attributions) + s.other_contribution
    assert total == pytest.approx(np.log(p / (1 - p)))
    assert [a.feature for a in s.anomaly_attributions] == ["log_amount", "fan_in_7d"]


def test_alerted_are_the_alerts_of_the_period(period_case):
    alerted = {t.txn_id for t in period_case.alerted}
    p = period_case.in_period
    assert alerted == set(p.loc[p["alert"], "txn_id"])
    assert period_case.alert_count == len(alerted)


def test_rules_fired_are_those_of_the_transaction(period_case, store, busy_customer):
    from amlscore.models.rules import load_rules_config, score_transaction_rules

    f = store.features(busy_customer)
    row = f[f["txn_id"].astype(str) == period_case.score.txn.txn_id].iloc[0]
    expected = score_transaction_rules(row, load_rules_config())
    assert {r.rule_id for r in period_case.score.rules} == set(expected.rule_ids)
    for r in period_case.score.rules:
        assert r.name and all(c.label for c in r.conditions)


def test_rating_is_the_packaged_rating_at_the_case_date(period_case, store, busy_customer):
    from amlscore.models.rules import customer_behaviour, load_rules_config, rate_customers

    cfg = load_rules_config()
    feats = store.table("features")
    txns = store.table("transactions")
    beh = customer_behaviour(feats, period_case.as_of, cfg, transactions=txns)
    c = store.customers
    c = c[pd.to_datetime(c["onboarded_at"]) <= pd.Timestamp(period_case.as_of)].reset_index(drop=True)
    full = rate_customers(c, store.reports, beh, cfg, period_case.as_of).ratings
    row = full[full["customer_id"].astype(str) == busy_customer].iloc[0]
    r = period_case.rating
    assert r.level == row["level"] and r.score == pytest.approx(row["score"])
    assert sum(i.contribution for i in r.items) == pytest.approx(r.score, abs=0.06)
    assert all(i.detail and " → " not in i.detail for i in r.items)


def test_peer_comparison_is_recomputed_from_raw_transactions(period_case, store, busy_customer):
    peers = period_case.peers
    assert peers is not None and peers.n_peers >= 1
    c = store.customers
    group = c["customer_type"].astype(str) + "|" + c["occupation_or_industry"].astype(str)
    members = set(c.loc[(group == peers.group) & (pd.to_datetime(c["onboarded_at"]) <= pd.Timestamp(peers.end)), "customer_id"].astype(str))
    members.discard(busy_customer)
    assert peers.n_peers == len(members)
    t = store.table("transactions")
    day = store.local(t["timestamp"]).dt.normalize()
    win = t[((day >= pd.Timestamp(peers.start)) & (day <= pd.Timestamp(peers.end))).to_numpy()]
    money_in = win[win["direction"].astype(str) == "in"]
    own = money_in.loc[money_in["customer_id"].astype(str) == busy_customer, "amount"].sum()
    mean = money_in.loc[money_in["customer_id"].astype(str).isin(members), "amount"].sum() / len(members)
    m = {x.key: x for x in peers.metrics}["in_sum"]
    assert m.customer_value == pytest.approx(own) and m.peer_mean == pytest.approx(mean)
    assert m.ratio == pytest.approx(own / mean) if mean else math.isinf(m.ratio) or math.isnan(m.ratio)
    assert (peers.end - peers.start).days == 29


def test_shared_identifiers_are_really_shared(period_case, store, busy_customer):
    links = store.links
    for s in period_case.shared:
        holders = set(links[(links["kind"] == s.kind) & (links["value"] == s.value)]["customer_id"])
        assert busy_customer in holders
        assert s.n_others == len(holders) - 1
        assert {o.customer_id for o in s.others} <= holders - {busy_customer}


def test_counterparties_add_up_to_the_period(period_case):
    p = period_case.in_period
    total = sum(c.sum_in + c.sum_out for c in period_case.counterparties)
    assert total <= p["amount"].sum() + 1e-6
    if len(period_case.counterparties) < 12:
        assert total == pytest.approx(p["amount"].sum())


def test_versions_name_the_data_and_configurations(period_case, store):
    v = period_case.versions
    assert v.data_fingerprint == store.fingerprint
    assert v.rules_config_hash and v.feature_params_hash
    assert v.model_version == "3" and v.model_alias == "champion" and v.model_trained_on == "fake-training-data"


def test_without_a_model_the_rule_score_stands_alone(store, busy_customer):
    start, end = _period(store, busy_customer)
    f = gather_case(store, customer_id=busy_customer, start=start, end=end, model=None, lang="zh")
    assert f.score.source == "rules only" and not f.score.attributions
    assert (f.in_period["suspicion_score"] == f.in_period["rule_score"]).all()
    assert f.rating is not None and any("\u4e00" <= ch <= "\u9fff" for ch in f.rating.level_name)


def test_alert_case_uses_the_decision_as_recorded(store, audit, fake_model):
    recs = list(audit.iter_records())
    rec = recs[0]
    f = gather_case(store, record=rec, model=fake_model, lang="en")
    assert f.mode == "alert" and f.case_id == rec.request_id and f.customer_id == rec.customer_id
    assert f.score.txn.txn_id == rec.txn_id
    assert f.score.suspicion_score == pytest.approx(rec.suspicion_score)
    assert f.score.source == "audit log"
    assert f.versions.request_id == rec.request_id and f.versions.chain_hash == rec.chain_hash
    t = f.transactions
    assert t["time"].min() >= pd.Timestamp(f.as_of) - pd.Timedelta(days=90)
    assert rec.txn_id in set(t["txn_id"])


def test_alert_without_recorded_explanation_is_explained_again(store, audit, fake_model):
    rec = list(audit.iter_records())[1]
    assert rec.decision["explanation"] is None
    f = gather_case(store, record=rec, model=fake_model, lang="zh")
    assert f.score.source == "recomputed" and f.score.attributions


@pytest.mark.parametrize("kwargs, message", [
    ({"customer_id": "NOPE", "start": "2025-01-01", "end": "2025-01-31"}, "NOPE"),
    ({"customer_id": None, "start": "2025-01-01", "end": "2025-01-31"}, "customer"),
    ({"start": "2025-02-01", "end": "2025-01-01"}, "must be on or after"),
    ({"start": "2030-01-01", "end": "2030-01-31"}, "no transaction between"),
    ({"start": "not a date", "end": "2030-01-31"}, "must be a date"),
])
def test_bad_cases_are_refused_with_a_reason(store, busy_customer, kwargs, message):
    kwargs = {"customer_id": busy_customer, **kwargs}
    with pytest.raises((CaseError, AmlError), match=message):
        gather_case(store, **kwargs)


def test_alert_scored_live_after_the_data_export_is_shown_from_the_record(store, audit, fake_model):
    import dataclasses

    rec = next(audit.iter_records())
    later = (pd.Timestamp(store.last_day) + pd.Timedelta(days=2, hours=3)).tz_localize("Asia/Shanghai").tz_convert("UTC")
    live = dataclasses.replace(rec, txn_id="LIVE-1", input={**rec.input, "txn_id": "LIVE-1", "timestamp": later.isoformat()})
    f = gather_case(store, record=live, model=fake_model, lang="en")
    assert "txn_not_in_data" in f.notes
    assert f.score.txn.txn_id == "LIVE-1" and f.score.txn.amount == pytest.approx(float(rec.input["amount"]))
    assert "LIVE-1" in set(f.transactions["txn_id"])
    assert f.as_of == (pd.Timestamp(store.last_day) + pd.Timedelta(days=2)).date()


def test_list_alerts_from_the_audit_log_and_from_batch_scores(store, audit, fake_model):
    from amlscore.reports.alerts import list_alerts, open_alert

    logged = list_alerts(store, audit=audit)
    assert len(logged) == sum(r.alert for r in audit.iter_records())
    assert logged["request_id"].notna().all()
    batch = list_alerts(store, model=fake_model, limit=5)
    assert len(batch) == 5 and batch["request_id"].isna().all()
    assert batch["suspicion_score"].is_monotonic_decreasing
    f = open_alert(store, batch.iloc[0], model=fake_model)
    assert f.score.txn.txn_id == batch["txn_id"].iat[0] and f.score.alert
    if len(logged):
        g = open_alert(store, logged.iloc[0], model=fake_model, audit=audit)
        assert g.case_id == logged["request_id"].iat[0]
