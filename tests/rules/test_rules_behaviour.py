"""customer_behaviour: the window on the bank's clock and each aggregate, computed by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from amlscore.contract.errors import AmlError
from amlscore.models.rules import customer_behaviour
from amlscore.models.rules.behaviour import window_bounds
from rules_builders import feature_frame

AS_OF = "2025-06-30"


def test_window_is_the_lookback_on_the_bank_clock(cfg):
    start, end = window_bounds(AS_OF, cfg)
    assert end == pd.Timestamp("2025-06-30T16:00Z")  # 1 July 00:00 in UTC+8
    assert start == end - pd.Timedelta(days=90)


def test_aggregates_by_hand(cfg):
    rows = [
        dict(customer_id="A", timestamp="2025-06-01T02:00Z", amount=1000.0, is_cash=1, channel_code=5, peer_cash_ratio_30d=2.0),
        dict(customer_id="A", timestamp="2025-06-02T02:00Z", amount=3000.0, is_cash=0, channel_code=1, peer_cash_ratio_30d=4.5,
             is_cross_border=1, is_high_risk_country=1, peer_txn_freq_ratio_30d=1.5),
        dict(customer_id="A", timestamp="2025-06-03T02:00Z", amount=4000.0, is_cash=0, channel_code=0, is_operated_by_other=1,
             operator_customers_30d=3, is_ip_abroad=1, is_high_risk_country=1),
        dict(customer_id="A", timestamp="2025-03-01T02:00Z", amount=99_999.0, is_cash=1, peer_cash_ratio_30d=80.0),  # too old
        dict(customer_id="A", timestamp="2025-06-30T16:00Z", amount=99_999.0, is_cash=1, peer_cash_ratio_30d=80.0),  # 1 July, local
        dict(customer_id="B", timestamp="2025-06-10T02:00Z", amount=500.0, channel_code=5),
    ]
    txns = pd.DataFrame({"customer_id": ["A", "A", "B", "B"], "counterparty_country": ["KP", "VG", "VN", None],
                         "timestamp": pd.to_datetime(["2025-06-01T02:00Z", "2025-06-02T02:00Z", "2025-06-10T02:00Z",
                                                      "2025-07-02T02:00Z"], utc=True)})
    b = customer_behaviour(feature_frame(rows), AS_OF, cfg, transactions=txns)
    a = b.loc["A"]
    assert a["n_txn"] == 3
    assert a["cash_share"] == pytest.approx(1000 / 8000)
    assert a["peer_cash_ratio"] == 4.5 and a["peer_txn_freq_ratio"] == 1.5
    assert a["non_face_to_face_share"] == pytest.approx(2 / 3)  # mobile and online; the counter is face to face
    assert a["cross_border_share"] == pytest.approx(1 / 3)
    assert a["high_risk_txn_count"] == 2
    assert a["operated_by_other_share"] == pytest.approx(1 / 3) and a["operator_customers"] == 3
    assert a["unusual_txn_count"] == 2  # high-risk country: 50 >= 40; ip abroad + high-risk: 62.5
    assert (a["sanctioned_cp_count"], a["fatf_black_cp_count"], a["offshore_cp_count"]) == (1, 1, 1)
    assert b.loc["B", "fatf_grey_cp_count"] == 1  # the July one is after the rating date
    assert b.loc["B", "non_face_to_face_share"] == 0.0
    assert a["last_txn_at"] == pd.Timestamp("2025-06-03T02:00Z")
    assert b.attrs["as_of"] == AS_OF and b.attrs["config_hash"] == cfg.hash


def test_zero_amount_share_is_unknown(cfg):
    b = customer_behaviour(feature_frame([dict(customer_id="A", amount=0.0, timestamp="2025-06-01T00:00Z")]), AS_OF, cfg)
    assert pd.isna(b.loc["A", "cash_share"])
    assert "sanctioned_cp_count" not in b.columns  # no transactions given: counterparty countries unknown


def test_missing_columns_are_named(cfg):
    with pytest.raises(AmlError, match="peer_cash_ratio_30d"):
        customer_behaviour(feature_frame([{}]).drop(columns=["peer_cash_ratio_30d"]), AS_OF, cfg)
