"""Contract checks on one transaction of the online path, and the errors it raises when one fails.

:func:`check_record` turns a transaction mapping into the clean record the online state counts (or
raises :class:`BadTransactionError` naming the field); :class:`LateTransactionError` is raised by the
state for a transaction older than its customer's latest. :func:`encode_record` and
:func:`payload_digest` give the compact JSON a record is logged as, and a short digest of it.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any, Mapping

from amlscore.contract.errors import AmlError
from amlscore.contract.schema import CHANNELS, COUNTERPARTY_TYPES, DIRECTIONS, TXN_TYPES
from amlscore.features.events import timestamp_ns

REQUIRED_FIELDS = ("txn_id", "timestamp", "customer_id", "account_id", "direction", "amount", "channel", "txn_type",
                   "counterparty_type")
_VALUE_SETS = {"direction": DIRECTIONS, "channel": CHANNELS, "txn_type": TXN_TYPES,
               "counterparty_type": COUNTERPARTY_TYPES}


class BadTransactionError(AmlError):
    """A transaction field is missing or has a value outside the contract."""


class LateTransactionError(AmlError):
    """A transaction is older than the latest one already processed for its customer."""


# the shared log's and the events table's encoding of a record (compact; timestamps and the like as str)
encode_record = json.JSONEncoder(separators=(",", ":"), default=str).encode


def payload_digest(payload: Mapping[str, Any]) -> str:
    """A short digest of a logged payload (names a customers event in the events table)."""
    return hashlib.sha256(encode_record(payload).encode()).hexdigest()[:16]


def check_record(txn: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Contract checks on one transaction; returns a clean copy (empty text as None) and its UTC time in ns."""
    if not isinstance(txn, Mapping):
        raise BadTransactionError(f"a transaction must be a mapping of contract fields; got {type(txn).__name__}")
    record = {k: (None if (v is None or (isinstance(v, str) and v.strip() == "")) else v) for k, v in txn.items()}
    missing = [f for f in REQUIRED_FIELDS if record.get(f) is None]
    if missing:
        raise BadTransactionError(f"transaction {record.get('txn_id')!r} is missing required field(s): {', '.join(missing)}")
    for field, allowed in _VALUE_SETS.items():
        if record[field] not in allowed:
            raise BadTransactionError(
                f"The '{field}' field of transaction {record['txn_id']!r} must be one of {', '.join(allowed)}. "
                f"Got {record[field]!r} instead."
            )
    try:
        amount = float(record["amount"])
    except (TypeError, ValueError):
        amount = math.nan  # not a number: refused as one <= 0 is, with the same message
    if not math.isfinite(amount) or amount <= 0:
        raise BadTransactionError(
            f"The 'amount' field of transaction {record['txn_id']!r} must be a number > 0. Got {record['amount']!r} instead."
        )
    try:
        t_ns = timestamp_ns(record["timestamp"])
    except (TypeError, ValueError):
        raise BadTransactionError(
            f"The 'timestamp' field of transaction {record['txn_id']!r} must be an ISO 8601 timestamp. "
            f"Got {record['timestamp']!r} instead."
        ) from None
    for f in ("txn_id", "customer_id", "account_id"):
        record[f] = str(record[f])
    return record, t_ns
