"""The ledger in columns: transactions as numpy arrays of small integers.

Every behaviour (normal or laundering) returns a :class:`TxnBlock`; blocks are concatenated once
and turned into contract strings at the very end (:mod:`amlscore.synth.bank`). Keeping codes instead of
strings is what lets the generator reach millions of transactions quickly and in little memory.

A transfer between two customers of the bank is generated once, as its ``out`` leg, and
:func:`with_in_legs` adds the matching ``in`` leg on the payee: same timestamp and amount,
opposite direction, each leg with its own txn_id later.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from amlscore.contract.schema import CHANNELS, COUNTERPARTY_TYPES, DIRECTIONS, TXN_TYPES

CH = {c: i for i, c in enumerate(CHANNELS)}
TT = {t: i for i, t in enumerate(TXN_TYPES)}
DIR = {d: i for i, d in enumerate(DIRECTIONS)}
CPT = {t: i for i, t in enumerate(COUNTERPARTY_TYPES)}
IP_CHANNEL_CODES = np.array([CH["online_banking"], CH["mobile_banking"]], dtype=np.int8)
TERMINAL_CHANNEL_CODES = np.array([CH["pos"], CH["atm"]], dtype=np.int8)
# Tags of unusual but innocent activity: analysts review some of it and close it as not suspicious.
TAG_BIG_PURCHASE, TAG_TRAVEL, TAG_CASH_BUSINESS, TAG_REACTIVATION, TAG_RISKY_TRADE = 1, 2, 3, 4, 5
CREDIT_CHANNEL = CH["counter"]  # how a credit from outside the bank is booked
FEN = 100  # amounts are kept in integer fen (0.01 CNY) so sums and output are exact

_DTYPES: dict[str, type] = {
    "customer": np.int32,  # customer index
    "account": np.int8,  # slot among the customer's accounts
    "ts": np.int64,  # UTC epoch seconds
    "direction": np.int8,
    "amount": np.int64,  # fen
    "channel": np.int8,
    "txn_type": np.int8,
    "cp": np.int32,  # counterparty customer index, -1 = not a customer of the bank
    "cp_slot": np.int8,  # account slot of an internal counterparty (the other leg's account), -1 = none
    "cp_type": np.int8,
    "cp_country": np.int16,  # country index, -1 = empty
    "ip": np.int64,  # IPv4 as integer, -1 = empty
    "ip_country": np.int16,
    "ip_region": np.int16,  # region index, -1 = empty
    "device": np.int32,  # device index, -1 = empty
    "terminal": np.int32,  # terminal index, -1 = empty
    "terminal_region": np.int16,
    "operator": np.int32,  # operator index, -1 = empty
    "scenario": np.int32,  # laundering scenario, -1 = legitimate
    "tag": np.int8,  # why a legitimate transaction looks unusual (TAG_*), 0 = nothing special
}
_EMPTY_DEFAULT = {"cp", "cp_slot", "cp_country", "ip", "ip_country", "ip_region", "device", "terminal", "terminal_region",
                  "operator", "scenario"}


@dataclass
class TxnBlock:
    """Columns of a batch of transactions (see ``_DTYPES`` for the codes)."""

    customer: np.ndarray
    account: np.ndarray
    ts: np.ndarray
    direction: np.ndarray
    amount: np.ndarray
    channel: np.ndarray
    txn_type: np.ndarray
    cp: np.ndarray
    cp_slot: np.ndarray
    cp_type: np.ndarray
    cp_country: np.ndarray
    ip: np.ndarray
    ip_country: np.ndarray
    ip_region: np.ndarray
    device: np.ndarray
    terminal: np.ndarray
    terminal_region: np.ndarray
    operator: np.ndarray
    scenario: np.ndarray
    tag: np.ndarray

    def __len__(self) -> int:
        return len(self.customer)

    def take(self, idx: np.ndarray) -> TxnBlock:
        """Rows by position or boolean mask."""
        return TxnBlock(**{f.name: getattr(self, f.name)[idx] for f in fields(self)})


def block(n: int, **cols: object) -> TxnBlock:
    """A block of ``n`` rows; columns not given are empty (-1) or zero (account slot).

    Scalars are broadcast, arrays are cast to the column's dtype.
    """
    unknown = set(cols) - set(_DTYPES)
    if unknown:
        raise TypeError(f"unknown ledger columns: {sorted(unknown)}")
    out: dict[str, np.ndarray] = {}
    for name, dtype in _DTYPES.items():
        if name in cols:
            v = np.asarray(cols[name])
            out[name] = np.broadcast_to(v, (n,)).astype(dtype) if v.ndim == 0 else v.astype(dtype, copy=False)
            if len(out[name]) != n:
                raise ValueError(f"column {name} has {len(out[name])} rows, expected {n}")
        else:
            out[name] = np.full(n, -1 if name in _EMPTY_DEFAULT else 0, dtype=dtype)
    return TxnBlock(**out)


def concat(blocks: list[TxnBlock]) -> TxnBlock:
    """One block from many (in the given order)."""
    blocks = [b for b in blocks if len(b)]
    if not blocks:
        return block(0)
    return TxnBlock(**{name: np.concatenate([getattr(b, name) for b in blocks]) for name in _DTYPES})


def with_in_legs(out: TxnBlock, cust_type: np.ndarray, primary_account: np.ndarray | None = None,
                 active: tuple[np.ndarray, np.ndarray, int] | None = None) -> TxnBlock:
    """Add the payee's ``in`` leg for every internal transfer in ``out``.

    Parameters
    ----------
    out:
        Out legs (direction ``out``); rows with ``cp >= 0`` are internal and get an in leg.
    cust_type:
        Customer type per customer index (0 individual, 1 corporate), for the payer's type.
    primary_account:
        Account slot the payee receives on (defaults to slot 0).
    active:
        ``(active_from, active_to, epoch0)`` per customer: a legitimate payment to a customer of
        the bank who is not active that day (not yet onboarded, dormant, closed) is sent to an
        account at another bank instead, so activity windows and dormancy stay intact.

    Returns
    -------
    TxnBlock
        ``out`` followed by the in legs. An in leg keeps the timestamp, amount, channel (the one
        the money arrived through), type, terminal and scenario; the client session (IP, device,
        operator) was the payer's, so the payee's leg carries none of it. Each leg's ``cp_slot``
        names the other leg's account, so both sides get a ``counterparty_account``.
    """
    if active is not None:
        start, end, epoch0 = active
        payee = np.maximum(out.cp, 0)
        day = (out.ts - epoch0) // 86_400
        idle = (out.cp >= 0) & (out.scenario < 0) & ((day < start[payee]) | (day >= end[payee]))
        out.cp[idle] = -1
    internal = np.flatnonzero(out.cp >= 0)
    if len(internal) == 0:
        return out
    o = out.take(internal)
    payer = o.customer
    payee = o.cp
    payee_slot = np.zeros(len(o), dtype=np.int8) if primary_account is None else primary_account[payee]
    out.cp_slot[internal] = payee_slot
    in_leg = block(
        len(o),
        customer=payee,
        account=payee_slot,
        ts=o.ts,
        direction=DIR["in"],
        amount=o.amount,
        channel=o.channel,  # the channel the money arrived through: the payer's
        txn_type=o.txn_type,
        cp=payer,
        cp_slot=o.account,
        cp_type=np.where(cust_type[payer] == 1, CPT["corporate"], CPT["individual"]),
        cp_country=o.cp_country,
        terminal=o.terminal,
        terminal_region=o.terminal_region,
        scenario=o.scenario,
        tag=o.tag,
    )
    return concat([out, in_leg])


def credit_channel(n: int) -> np.ndarray:
    """Channel of ``n`` credits sent from outside the bank (salaries, transfers, remittances in).

    The sending bank's channel is not known here, so the credit is booked bank-side at the
    ``counter``, for legitimate and laundering credits alike.
    """
    return np.full(n, CREDIT_CHANNEL, dtype=np.int8)
