"""Alert suppression: repeats of dismissed patterns for low-risk customers, state-organ counterparties."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.models.rules import load_rules_config, suppress_alerts

RATINGS = pd.DataFrame({"customer_id": ["LOW", "MID", "WATCH"], "level": ["low", "medium", "high"],
                        "highest_reasons": ["", "", "watchlist"]})
CUSTOMERS = pd.DataFrame({"customer_id": ["GOV1", "GOV2", "SHOP"],
                          "occupation_or_industry": ["state_organ", "state_organ", "cash_intensive_retail"]})
DISMISSED = pd.DataFrame({
    "customer_id": ["LOW", "MID"], "rules_fired": ["fan_in|large_cash", "fan_in|large_cash"],
    "counterparty_ids": ["X|Y", "X|Y"], "disposition": ["dismissed", "dismissed"],
    "decided_at": pd.to_datetime(["2025-03-01", "2025-03-01"], utc=True),
})


def alerts(*rows: tuple) -> pd.DataFrame:
    """(alert_id, customer_id, rules_fired, counterparty_ids, created_at) tuples."""
    return pd.DataFrame(list(rows), columns=["alert_id", "customer_id", "rules_fired", "counterparty_ids", "created_at"])


def decide(frame: pd.DataFrame, dispositions=DISMISSED, cfg=None, lang="en") -> dict[str, str]:
    out = suppress_alerts(frame, RATINGS, dispositions, cfg or load_rules_config(), customers=CUSTOMERS, lang=lang)
    assert set(out["status"]) <= {"open", "auto_closed"}
    assert ((out["status"] == "auto_closed") == (out["reason"] != "")).all()
    return dict(zip(out["alert_id"], out["reason"]))


def test_repeat_of_a_dismissed_pattern_for_a_low_risk_customer_is_closed():
    got = decide(alerts(("a", "LOW", "large_cash|fan_in", ["Y", "X"], "2025-04-01T00:00Z")))  # order does not matter
    assert got == {"a": "repeat_dismissed_low_risk"}
    out = suppress_alerts(alerts(("a", "LOW", "large_cash|fan_in", "X|Y", "2025-04-01T00:00Z")), RATINGS, DISMISSED,
                          customers=CUSTOMERS)
    assert out["matched_disposition_at"].iat[0] == pd.Timestamp("2025-03-01", tz="UTC")
    assert "dismissed" in out["reason_text"].iat[0]


@pytest.mark.parametrize("row", [
    ("b", "LOW", "large_cash|fan_in", "X|Z", "2025-04-01T00:00Z"),        # another counterparty
    ("c", "LOW", "large_cash", "X|Y", "2025-04-01T00:00Z"),               # other rules
    ("d", "MID", "large_cash|fan_in", "X|Y", "2025-04-01T00:00Z"),        # not low risk
    ("e", "LOW", "large_cash|fan_in", "X|Y", "2025-02-01T00:00Z"),        # raised before the dismissal
    ("f", "LOW", "large_cash|fan_in", "X|Y", "2026-04-01T00:00Z"),        # dismissal older than a year
    ("g", "NEW", "large_cash|fan_in", "X|Y", "2025-04-01T00:00Z"),        # not rated
])
def test_other_alerts_stay_open(row):
    assert decide(alerts(row)) == {row[0]: ""}


def test_a_later_report_of_the_pattern_stops_suppression():
    later = pd.concat([DISMISSED, pd.DataFrame({"customer_id": ["LOW"], "rules_fired": ["fan_in|large_cash"],
                                                "counterparty_ids": ["X|Y"], "disposition": ["reported"],
                                                "decided_at": pd.to_datetime(["2025-03-15"], utc=True)})])
    assert decide(alerts(("a", "LOW", "fan_in|large_cash", "X|Y", "2025-04-01T00:00Z")), later) == {"a": ""}


def test_expiry_can_be_switched_off():
    cfg = load_rules_config(overrides={"suppression": {"dismissal_valid_days": None}})
    assert decide(alerts(("f", "LOW", "large_cash|fan_in", "X|Y", "2027-04-01T00:00Z")), cfg=cfg) == {"f": "repeat_dismissed_low_risk"}


def test_state_organ_counterparties_are_screened_out_for_any_level():
    got = decide(alerts(("s1", "MID", "large_cash", "GOV1|GOV2", "2025-04-01T00:00Z"),
                        ("s2", "MID", "large_cash", "GOV1|SHOP", "2025-04-01T00:00Z"),
                        ("s3", "MID", "large_cash", "", "2025-04-01T00:00Z"),
                        ("s4", "WATCH", "large_cash", "GOV1", "2025-04-01T00:00Z")))
    assert got == {"s1": "state_counterparty", "s2": "", "s3": "", "s4": ""}


def test_armed_forces_accounts_listed_in_the_configuration():
    cfg = load_rules_config(overrides={"suppression": {"exempt_counterparty_ids": ["PLA-001"]}})
    assert decide(alerts(("m", "MID", "fan_in", "PLA-001|GOV1", "2025-04-01T00:00Z")), cfg=cfg) == {"m": "state_counterparty"}


def test_reason_in_chinese():
    out = suppress_alerts(alerts(("s1", "MID", "large_cash", "GOV1", "2025-04-01T00:00Z")), RATINGS, None,
                          customers=CUSTOMERS, lang="zh")
    assert out["reason_text"].iat[0] == "交易对手均为国家机关或军队"
