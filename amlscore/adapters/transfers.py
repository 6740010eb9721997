"""A block of source payments in one shape for every format, and the contract legs it becomes.

Each public format is read into :class:`Transfers` (one row per payment: payer, payee, amounts,
channel, label); :func:`legs` turns a block into contract transaction rows. A payment whose payer
banks here becomes an ``out`` row on the payer, one whose payee banks here an ``in`` row on the
payee, and a payment between two customers both, with the same timestamp and distinct txn_ids
(``<prefix><line>.o`` and ``<prefix><line>.i``, the source line so that a row can be traced back).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.contract.schema import TRANSACTIONS

#: Extra columns every adapter writes beside the contract's (kept and ignored by scoring, contract 1.1).
EXTRA_TRANSACTION_COLUMNS = ("original_amount", "original_currency")
#: Contract 1.1's optional column, written by every adapter.
COUNTERPARTY_ACCOUNT = "counterparty_account"


def transaction_columns() -> tuple[str, ...]:
    """Column order of the written transactions table: the contract's, counterparty_account, the extras."""
    names = list(TRANSACTIONS.column_names)
    if COUNTERPARTY_ACCOUNT not in names:
        names.append(COUNTERPARTY_ACCOUNT)
    return (*names, *EXTRA_TRANSACTION_COLUMNS)


@dataclass
class Transfers:
    """One block of payments, column-aligned; ``*_inside`` say which side banks here.

    Attributes
    ----------
    line : int64 array
        Source line of each payment (txn_ids and error messages name it).
    ts : datetime64[ns] array
        Instant of the payment, UTC.
    payer, payee : string arrays
        Account ids (an account is a customer: the public formats know no owners).
    payer_inside, payee_inside : bool arrays
    paid, received : float64 arrays
        Amounts in CNY on the payer's and the payee's side.
    paid_original, received_original : float64 arrays; paid_currency, received_currency : string arrays
        The amounts as the source gave them.
    channel, type_out, type_in : string arrays
        Contract channel and the txn_type of the out and the in row.
    payer_country, payee_country : string arrays (may hold nulls)
        ISO country of each side's bank, when the source says.
    terminal : string array (nulls off pos/atm)
    laundering : bool array
    typology, scenario : string arrays (nulls when unknown)
    """

    line: np.ndarray
    ts: np.ndarray
    payer: pa.Array
    payee: pa.Array
    payer_inside: np.ndarray
    payee_inside: np.ndarray
    paid: np.ndarray
    received: np.ndarray
    paid_original: np.ndarray
    paid_currency: pa.Array
    received_original: np.ndarray
    received_currency: pa.Array
    channel: pa.Array
    type_out: pa.Array
    type_in: pa.Array
    payer_country: pa.Array
    payee_country: pa.Array
    terminal: pa.Array
    laundering: np.ndarray
    typology: pa.Array
    scenario: pa.Array

    def __len__(self) -> int:
        return len(self.line)

    def take(self, mask: np.ndarray) -> Transfers:
        """The payments where ``mask`` is true."""
        if mask.all():
            return self
        idx = pa.array(np.flatnonzero(mask))
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = v[mask] if isinstance(v, np.ndarray) else v.take(idx)
        return Transfers(**out)


def null_strings(n: int) -> pa.Array:
    """``n`` empty (null) text cells."""
    return pa.nulls(n, pa.string())


def constant(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as a string array (dictionary-free, cheap)."""
    return pa.repeat(pa.scalar(value, pa.string()), n)


def legs(t: Transfers, prefix: str) -> tuple[pa.Table, pa.Table]:
    """The out rows (payer inside) and the in rows (payee inside) of a block, as contract tables."""
    return side(t.take(t.payer_inside), prefix, out=True), side(t.take(t.payee_inside), prefix, out=False)


def side(t: Transfers, prefix: str, *, out: bool) -> pa.Table:
    """Contract rows of the payments of ``t`` seen from the payer (``out``) or the payee; every payment
    of ``t`` must have that side inside the bank."""
    n = len(t)
    me, other = (t.payer, t.payee) if out else (t.payee, t.payer)
    other_inside = t.payee_inside if out else t.payer_inside
    line_text = pc.cast(pa.array(t.line), pa.string())
    txn_id = pc.binary_join_element_wise(constant(prefix, n), line_text, constant(".o" if out else ".i", n), "")
    counterparty_id = pc.if_else(pa.array(other_inside, pa.bool_()), other, null_strings(n))
    empty = null_strings(n)
    columns = {
        "txn_id": txn_id,
        "timestamp": pa.array(t.ts.astype("datetime64[ns]"), pa.timestamp("ns")).cast(pa.timestamp("ns", tz="UTC")),
        "customer_id": me,
        "account_id": me,
        "direction": constant("out" if out else "in", n),
        "amount": pa.array(t.paid if out else t.received, pa.float64()),
        "channel": t.channel,
        "txn_type": t.type_out if out else t.type_in,
        "counterparty_id": counterparty_id,
        "counterparty_type": constant("unknown", n),
        "counterparty_country": t.payee_country if out else t.payer_country,
        "ip_address": empty, "ip_country": empty, "ip_region": empty, "device_id": empty,
        "terminal_id": t.terminal,
        "terminal_region": empty,
        "operator_id": empty,
        COUNTERPARTY_ACCOUNT: other,
        "original_amount": pa.array(t.paid_original if out else t.received_original, pa.float64()),
        "original_currency": t.paid_currency if out else t.received_currency,
    }
    return pa.table({name: columns[name] for name in transaction_columns()})
