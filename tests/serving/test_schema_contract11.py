"""The scoring request follows contract 1.1: in rows of e-banking may come without a session, out rows
may not; channel other and counterparty_account are accepted."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from amlscore.serving.schemas import Transaction

BASE = dict(txn_id="T1", timestamp="2025-03-01T02:00:00Z", customer_id="C1", account_id="A1", amount=100.0,
            txn_type="transfer", counterparty_type="unknown")


def _txn(**fields: object) -> Transaction:
    """As the service parses a request body (JSON, strict)."""
    return Transaction.model_validate_json(json.dumps({**BASE, **fields}))


def test_in_row_of_online_banking_without_a_session_is_accepted() -> None:
    t = _txn(direction="in", channel="online_banking", counterparty_account="6222000011112222")
    assert t.ip_address is None and t.to_record()["counterparty_account"] == "6222000011112222"


def test_out_row_of_online_banking_needs_its_session() -> None:
    with pytest.raises(ValidationError, match="ip_address must not be empty when channel is online_banking or "
                                              "mobile_banking and direction is out"):
        _txn(direction="out", channel="online_banking", device_id="D1")


def test_channel_other_takes_no_session() -> None:
    assert _txn(direction="out", channel="other").channel == "other"
    with pytest.raises(ValidationError, match="ip_address must be empty unless channel"):
        _txn(direction="in", channel="other", ip_address="1.1.1.1")
