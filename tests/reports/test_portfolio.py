"""The portfolio report: counts that add up, from the rules, a model set or the audit log."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.reports.html import render_portfolio
from amlscore.reports.portfolio import gather_portfolio


@pytest.fixture(scope="module")
def rules_only(store):
    return gather_portfolio(store, lang="en")


def test_alert_counts_add_up(rules_only, store):
    p = rules_only
    assert p.source == "rules" and p.n_scored == store.meta["transactions"]
    assert int(p.per_day["alerts"].sum()) == p.n_alerts
    assert sum(r.count for r in p.per_channel) == p.n_alerts
    assert sum(r.total for r in p.per_channel) == p.n_scored
    assert sum(r.count for r in p.per_typology) == p.n_alerts
    assert p.n_alerts > 0


def test_rules_only_alerts_are_unusual_rule_scores(rules_only, store):
    from amlscore.models.rules import load_rules_config

    r = store.table("rules")
    assert rules_only.n_alerts == int((r["rule_score"] >= load_rules_config().behaviour.unusual_rule_score).sum())


def test_typology_of_ground_truth_is_added_on_synthetic_data(rules_only):
    assert rules_only.per_truth  # generated data carries ground_truth.csv
    assert sum(r.count for r in rules_only.per_truth) == rules_only.n_alerts


def test_risk_levels_cover_every_rated_customer(rules_only):
    assert sum(r.count for r in rules_only.levels) == rules_only.n_customers_rated > 0
    assert [r.rank for r in rules_only.levels] == list(range(len(rules_only.levels)))


def test_overdue_reviews_come_from_the_history(store):
    from amlscore.models.rules import load_rules_config

    c = store.customers
    history = pd.DataFrame({"customer_id": c["customer_id"].astype(str).to_numpy()[:30],
                            "rated_at": pd.Timestamp(store.first_day) - pd.DateOffset(years=3),
                            "level": [load_rules_config().levels[0].id] * 30})
    p = gather_portfolio(store, history=history, lang="zh")
    assert p.has_history and p.n_overdue == 30
    assert (p.overdue["days_overdue"] > 0).all()
    html = render_portfolio(p)
    assert '<html lang="zh-CN">' in html and "逾期未复评" in html and 'id="overdue"' in html


def test_model_batch_scores_are_cached_per_model(store, fake_model):
    p = gather_portfolio(store, model=fake_model, lang="en")
    assert p.source == "batch" and p.threshold == fake_model.model_set.alert_threshold
    key = f"{fake_model.name}-v{fake_model.version}"
    assert store.scores_path(key).is_file()
    scores = pd.read_parquet(store.scores_path(key))
    assert p.n_alerts == int(scores["alert"].sum())


def test_alerts_from_the_audit_log(store, audit):
    p = gather_portfolio(store, audit=audit, lang="en")
    assert p.source == "audit" and p.n_scored == audit.count()
    assert p.n_alerts == sum(r.alert for r in audit.iter_records())


def test_portfolio_page_is_self_contained_with_its_charts(rules_only):
    html = render_portfolio(rules_only)
    assert '<html lang="en">' in html
    for name in ("alerts-per-day", "alerts-per-channel", "alerts-per-typology", "risk-levels"):
        assert f'class="chart chart-{name}"' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "").replace(
        'xmlns:xlink="http://www.w3.org/1999/xlink"', "")
