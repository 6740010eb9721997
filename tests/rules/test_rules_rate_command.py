"""The ``rate`` command: what it writes, in both languages, with and without earlier ratings."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import amlscore.cli.rate as rate_cmd
from rules_builders import corporate, customer, customers_frame, feature_frame, reports_frame

FILES = ("ratings.csv", "rating_breakdown.csv", "review_schedule.csv", "overdue_reviews.csv",
         "unrated_new_customers.csv", "large_value_reports.csv", "rating_run.json")


@pytest.fixture
def tiny(monkeypatch):
    customers = customers_frame(customer(), customer(customer_id="C2", is_pep=True), corporate(onboarded_at="2025-06-02"))
    rows = [dict(customer_id="C1", txn_id="T1", timestamp="2025-06-20T02:00Z", amount=60_000.0, is_cash=1, channel_code=5),
            dict(customer_id="K1", txn_id="T2", timestamp="2025-06-29T02:00Z", amount=2_500_000.0, channel_code=0)]
    features = feature_frame(rows)
    transactions = pd.DataFrame({
        "txn_id": ["T1", "T2"], "timestamp": features["timestamp"], "customer_id": ["C1", "K1"], "direction": ["in", "out"],
        "amount": [60_000.0, 2_500_000.0], "channel": ["counter", "online_banking"], "txn_type": ["cash_deposit", "transfer"],
        "counterparty_country": [None, "CN"],
    })
    dataset = SimpleNamespace(customers=customers, transactions=transactions,
                              reports=reports_frame(("C2", "2025-01-01", "suspicious")), fingerprint="fp-tiny")
    monkeypatch.setattr(rate_cmd, "_load_dataset", lambda folder: dataset)
    monkeypatch.setattr(rate_cmd, "_build_features", lambda ds, progress: features)
    return dataset


def test_writes_every_output(tiny, tmp_path: Path, cfg):
    out = tmp_path / "out"
    summary = rate_cmd.run_rating(tmp_path, out, lang="en")
    for name in FILES:
        assert (out / name).is_file(), name
    ratings = pd.read_csv(out / "ratings.csv")
    assert ratings["customer_id"].tolist() == ["C1", "C2", "K1"]
    assert set(ratings["config_hash"]) == {cfg.hash}
    assert ratings.set_index("customer_id").loc["C2", "level"] == "high"
    assert summary["as_of"] == "2025-06-29"  # day of the latest transaction, bank clock
    run = json.loads((out / "rating_run.json").read_text(encoding="utf-8"))
    assert run["config_hash"] == cfg.hash and run["data_fingerprint"] == "fp-tiny" and run["customers_rated"] == 3
    breakdown = pd.read_csv(out / "rating_breakdown.csv")
    assert {"customer_id", "sub_item", "score", "weight", "contribution", "explanation"} <= set(breakdown.columns)
    lvr = pd.read_csv(out / "large_value_reports.csv")
    assert sorted(lvr["txn_id"]) == ["T1", "T2"]
    unrated = pd.read_csv(out / "unrated_new_customers.csv")
    assert unrated["customer_id"].tolist() == ["K1"]  # onboarded 2 June, first rated 29 June


def test_chinese_explanations_and_earlier_ratings(tiny, tmp_path: Path):
    rate_cmd.run_rating(tmp_path, tmp_path / "first", as_of=pd.Timestamp("2025-06-29").date(), lang="zh")
    breakdown = pd.read_csv(tmp_path / "first" / "rating_breakdown.csv")
    assert breakdown["explanation"].str.contains("得分").all()
    summary = rate_cmd.run_rating(tmp_path, tmp_path / "second", as_of=pd.Timestamp("2026-03-01").date(),
                                  previous=tmp_path / "first" / "ratings.csv")
    overdue = pd.read_csv(tmp_path / "second" / "overdue_reviews.csv")
    assert overdue["customer_id"].tolist() == ["C2"]  # high: due 2025-12-29
    assert summary["overdue_reviews"] == 1
    ratings = pd.read_csv(tmp_path / "second" / "ratings.csv")
    assert not ratings["is_first_rating"].any()


def test_cli_entry(tiny, tmp_path: Path):
    app = typer.Typer()
    app.command("rate")(rate_cmd.rate)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["rate", str(tmp_path), "--out", str(tmp_path / "o"), "--as-of", "2025-06-29", "--lang", "zh"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "ratings.csv").is_file()
    bad = CliRunner().invoke(app, ["rate", str(tmp_path), "--out", str(tmp_path / "o"), "--lang", "fr"])
    assert bad.exit_code != 0


@pytest.mark.slow
def test_end_to_end_on_a_generated_bank(tmp_path: Path):
    """The real loader and feature builder on a small synthetic bank."""
    from amlscore.synth.bank import generate_bank, write_bank
    from amlscore.synth.config import SynthConfig

    bank = generate_bank(SynthConfig(customers=200, days=30, seed=7))
    write_bank(bank, tmp_path / "bank")
    summary = rate_cmd.run_rating(tmp_path / "bank", tmp_path / "out")
    assert summary["customers_rated"] == len(bank.customers) and summary["behaviour"]
    ratings = pd.read_csv(tmp_path / "out" / "ratings.csv")
    assert ratings["score"].between(0, 100).all()
