"""``amlscore report case|portfolio|prepare`` through typer (rules only: no registry needed)."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from amlscore.cli.report import report_app

runner = CliRunner()


def _run(*args: str):
    result = runner.invoke(report_app, list(args), catch_exceptions=True)
    return result


def test_case_for_a_customer_and_period(tmp_path, bank_dir, store, busy_customer):
    end = store.local(store.transactions(busy_customer)["timestamp"]).max()
    start = end - pd.Timedelta(days=20)
    out, text = tmp_path / "case.html", tmp_path / "case.txt"
    r = _run("case", "--customer", busy_customer, "--start", f"{start:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}",
             "--data", str(bank_dir), "--lang", "zh", "--no-model", "--out", str(out), "--narrative-out", str(text))
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in html and busy_customer in html
    assert text.read_text(encoding="utf-8").startswith(f"客户{busy_customer}")


def test_case_for_an_alert_of_the_audit_log(tmp_path, bank_dir, audit, store):
    rec = next(audit.iter_records())
    out = tmp_path / "alert.html"
    r = _run("case", "--alert", rec.request_id, "--audit", str(audit.path), "--data", str(bank_dir), "--no-model",
             "--out", str(out))
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert rec.request_id in html and rec.txn_id in html and 'class="chart chart-waterfall"' in html


def test_unknown_alert_and_bad_options_are_refused(tmp_path, bank_dir, audit, store):
    r = _run("case", "--alert", "NO-SUCH-ID", "--audit", str(audit.path), "--data", str(bank_dir), "--no-model",
             "--out", str(tmp_path / "x.html"))
    assert r.exit_code != 0 and "NO-SUCH-ID" in str(r.exception)
    r = _run("case", "--customer", "C1", "--data", str(bank_dir), "--out", str(tmp_path / "x.html"))
    assert r.exit_code != 0 and "--start and --end" in str(r.exception)
    r = _run("case", "--customer", "C1", "--start", "2025-01-01", "--end", "2025-01-02", "--lang", "fr",
             "--data", str(bank_dir), "--out", str(tmp_path / "x.html"))
    assert r.exit_code != 0 and "en, zh" in str(r.exception)
    assert not (tmp_path / "x.html").exists()


def test_missing_registry_falls_back_to_the_rules_with_a_warning(tmp_path, bank_dir, store, busy_customer):
    end = store.local(store.transactions(busy_customer)["timestamp"]).max()
    r = _run("case", "--customer", busy_customer, "--start", f"{end - pd.Timedelta(days=5):%Y-%m-%d}",
             "--end", f"{end:%Y-%m-%d}", "--data", str(bank_dir), "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}",
             "--out", str(tmp_path / "c.html"))
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "none.db").exists()  # nothing created in someone's MLflow location


def test_portfolio(tmp_path, bank_dir, store):
    out = tmp_path / "portfolio.html"
    r = _run("portfolio", "--data", str(bank_dir), "--no-model", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert 'class="chart chart-alerts-per-day"' in out.read_text(encoding="utf-8")


def test_prepare_builds_the_store_once(bank_dir, store):
    r = _run("prepare", "--data", str(bank_dir))
    assert r.exit_code == 0, r.output
    assert str(store.root) in r.output.replace("\n", "")


def test_case_for_a_transaction_of_the_data_set(tmp_path, bank_dir, store, fake_model):
    from amlscore.reports.alerts import list_alerts

    alerts = list_alerts(store, model=fake_model, limit=3)
    assert len(alerts) and alerts["suspicion_score"].is_monotonic_decreasing
    txn = alerts["txn_id"].iat[0]
    out = tmp_path / "txn.html"
    r = _run("case", "--txn", txn, "--data", str(bank_dir), "--no-model", "--out", str(out))
    assert r.exit_code == 0, r.output
    assert txn in out.read_text(encoding="utf-8")
    r = _run("case", "--txn", txn, "--customer", "C1", "--data", str(bank_dir), "--out", str(out))
    assert r.exit_code != 0 and "one of" in str(r.exception)
