"""Large-value transaction reports: thresholds, same-day totals on the bank's clock, kept apart from suspicion."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.models.rules import large_value_reports, load_rules_config

CUSTOMERS = pd.DataFrame({"customer_id": ["I", "K"], "customer_type": ["individual", "corporate"]})


def txns(*rows: tuple) -> pd.DataFrame:
    """(txn_id, customer_id, timestamp, direction, txn_type, amount, counterparty_country) tuples."""
    frame = pd.DataFrame(list(rows), columns=["txn_id", "customer_id", "timestamp", "direction", "txn_type", "amount",
                                              "counterparty_country"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame["channel"] = "counter"
    return frame


def reported(frame: pd.DataFrame, cfg=None) -> dict[str, tuple[str, str]]:
    out = large_value_reports(frame, CUSTOMERS, cfg or load_rules_config())
    return {t: (c, b) for t, c, b in zip(out["txn_id"], out["category"], out["basis"])}


@pytest.mark.parametrize("amount, expected", [(50_000.0, True), (49_999.99, False), (120_000.0, True)])
def test_cash_threshold(amount, expected):
    got = reported(txns(("t", "I", "2025-03-03T02:00Z", "in", "cash_deposit", amount, None)))
    assert (got == {"t": ("cash", "single")}) is expected
    assert (bool(got) is expected)


@pytest.mark.parametrize("customer, txn_type, amount, country, category, expected", [
    ("K", "transfer", 2_000_000.0, "CN", "corporate_transfer", True),
    ("K", "transfer", 1_999_999.99, "CN", "corporate_transfer", False),
    ("K", "remittance", 1_000_000.0, "US", "corporate_transfer", False),
    ("I", "transfer", 500_000.0, "CN", "individual_domestic_transfer", True),
    ("I", "transfer", 499_999.0, "CN", "individual_domestic_transfer", False),
    ("I", "remittance", 200_000.0, "US", "individual_cross_border_transfer", True),
    ("I", "remittance", 199_999.0, "US", "individual_cross_border_transfer", False),
    ("I", "transfer", 300_000.0, None, "individual_cross_border_transfer", True),  # unknown country: the lower threshold
    ("I", "purchase", 900_000.0, "CN", "", False),  # not a transfer
])
def test_transfer_thresholds(customer, txn_type, amount, country, category, expected):
    got = reported(txns(("t", customer, "2025-03-03T02:00Z", "out", txn_type, amount, country)))
    assert got == ({"t": (category, "single")} if expected else {})


def test_unknown_country_can_be_taken_as_domestic():
    cfg = load_rules_config(overrides={"large_value": {"unknown_country_is_cross_border": False}})
    assert reported(txns(("t", "I", "2025-03-03T02:00Z", "out", "transfer", 300_000.0, None)), cfg) == {}


def test_same_day_total_on_the_bank_clock_and_per_direction():
    frame = txns(
        ("a", "I", "2025-03-03T01:00Z", "in", "cash_deposit", 30_000.0, None),   # 3 March, 09:00 bank time
        ("b", "I", "2025-03-03T15:59Z", "in", "cash_deposit", 20_000.0, None),   # 3 March, 23:59 bank time
        ("c", "I", "2025-03-03T16:01Z", "in", "cash_deposit", 40_000.0, None),   # 4 March, 00:01 bank time
        ("d", "I", "2025-03-04T02:00Z", "out", "cash_withdrawal", 20_000.0, None),  # 4 March, money out
    )
    got = reported(frame)
    assert got == {"a": ("cash", "daily_total"), "b": ("cash", "daily_total")}
    out = large_value_reports(frame, CUSTOMERS, load_rules_config())
    assert out["daily_total"].tolist() == [50_000.0, 50_000.0]
    assert [str(d.date()) for d in out["local_date"]] == ["2025-03-03", "2025-03-03"]


def test_daily_totals_are_exact_in_fen():
    frame = txns(*[(f"t{i}", "I", "2025-03-03T02:00Z", "in", "cash_deposit", 0.1, None) for i in range(10)],
                 ("big", "I", "2025-03-03T03:00Z", "in", "cash_deposit", 49_999.0, None))
    assert len(reported(frame)) == 11  # 10 x 0.10 + 49,999 = 50,000 exactly


def test_daily_aggregation_can_be_switched_off():
    cfg = load_rules_config(overrides={"large_value": {"aggregate_daily": False}})
    frame = txns(("a", "I", "2025-03-03T01:00Z", "in", "cash_deposit", 30_000.0, None),
                 ("b", "I", "2025-03-03T02:00Z", "in", "cash_deposit", 30_000.0, None))
    assert reported(frame, cfg) == {}


def test_unknown_customer_is_held_to_the_individual_thresholds():
    frame = txns(("t", "X", "2025-03-03T02:00Z", "out", "transfer", 600_000.0, "CN"))
    assert reported(frame) == {"t": ("individual_domestic_transfer", "single")}


def test_report_carries_thresholds_and_hash(cfg):
    out = large_value_reports(txns(("t", "K", "2025-03-03T02:00Z", "in", "transfer", 3_000_000.0, "CN")), CUSTOMERS, cfg)
    assert out["threshold"].iat[0] == 2_000_000.0 and out["config_hash"].iat[0] == cfg.hash
    assert out["customer_type"].iat[0] == "corporate"
