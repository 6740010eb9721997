"""SAML-D (Oztas et al., 2023; Kaggle "berkanoztas/synthetic-transaction-monitoring-dataset-aml") into
the contract.

SAML-D is one UK bank's view: 12 columns (Time, Date, Sender_account, Receiver_account, Amount,
Payment_currency, Received_currency, Sender_bank_location, Receiver_bank_location, Payment_type,
Is_laundering, Laundering_type). The customers are the accounts whose bank is in the UK; a side
abroad is an external counterparty, with its country in ``counterparty_country``. The amount is in
the payment currency; the received amount is the same value converted (fixed rates,
:mod:`amlscore.adapters.currency`). ``Laundering_type`` is the typology of laundering rows (its
``Normal_*`` values describe innocent rows and are not written). Times are read as bank-local
times, like the other formats.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.adapters.currency import SAMLD_CURRENCIES, rates_for
from amlscore.adapters.output import ContractWriter
from amlscore.adapters.source import Block, blocks, check_header, flags, join, lookup, numbers, pick, times
from amlscore.adapters.transfers import Transfers

HEADER = ("Time", "Date", "Sender_account", "Receiver_account", "Amount", "Payment_currency", "Received_currency",
          "Sender_bank_location", "Receiver_bank_location", "Payment_type", "Is_laundering", "Laundering_type")
HOME = "UK"

#: Bank location -> ISO 3166-1 alpha-2.
LOCATIONS: dict[str, str] = {
    "UK": "GB", "UAE": "AE", "Albania": "AL", "Austria": "AT", "France": "FR", "Germany": "DE", "India": "IN",
    "Italy": "IT", "Japan": "JP", "Mexico": "MX", "Morocco": "MA", "Netherlands": "NL", "Nigeria": "NG",
    "Pakistan": "PK", "Spain": "ES", "Switzerland": "CH", "Turkey": "TR", "USA": "US",
}

#: Payment_type -> (channel, txn_type of the sender's out row, txn_type of the receiver's in row).
#: Card payments are POS purchases (the receiver's account stands in for the terminal); a cash
#: deposit is cash only on the receiving side and a withdrawal only on the sending side; ACH and
#: cross-border payments carry no session (channel ``other``).
PAYMENT_TYPES: dict[str, tuple[str, str, str]] = {
    "Cash Deposit": ("counter", "other", "cash_deposit"),
    "Cash Withdrawal": ("counter", "cash_withdrawal", "other"),
    "Cross-border": ("other", "remittance", "remittance"),
    "Credit card": ("pos", "purchase", "purchase"),
    "Debit card": ("pos", "purchase", "purchase"),
    "ACH": ("other", "transfer", "transfer"),
    "Cheque": ("counter", "transfer", "transfer"),
}


def convert(src: Path, writer: ContractWriter, *, block_bytes: int | None = None) -> None:
    """Stream the SAML-D CSV ``src`` into ``writer``."""
    check_header(src, HEADER)
    names = [h.lower() for h in HEADER]
    currencies = list(SAMLD_CURRENCIES)
    rate = np.array([rates_for(SAMLD_CURRENCIES)[c] for c in currencies])
    locations, types = list(LOCATIONS), list(PAYMENT_TYPES)
    kwargs = {"block_bytes": block_bytes} if block_bytes else {}
    for block in blocks(src, names, dict(zip(names, HEADER)), **kwargs):
        t = _transfers(block, currencies, rate, locations, types)
        writer.source_rows += len(block)
        t = t.take(t.payer_inside | t.payee_inside)
        if len(t):
            cards = np.asarray(t.channel.to_numpy(zero_copy_only=False) == "pos") & t.payee_inside
            writer.mark_corporate(t.payee.filter(pa.array(cards)))
            writer.add(t)


def _transfers(block: Block, currencies: list[str], rate: np.ndarray, locations: list[str],
               types: list[str]) -> Transfers:
    c = block.columns
    n = len(block)
    stamp = join(c["date"], " ", c["time"], n=n)
    local = times(Block(block.path, block.first_line, {"date": stamp}, {"date": "Date and Time"}), "date",
                  "%Y-%m-%d %H:%M:%S", "Date YYYY-MM-DD and Time HH:MM:SS")
    amount = numbers(block, "amount")
    bad = np.flatnonzero(amount <= 0)
    if len(bad):
        row = int(bad[0])
        raise block.fail(row, "amount", "amount not positive", "an amount > 0", c["amount"][row].as_py())
    pay_cur = lookup(block, "payment_currency", currencies, "currency")
    rec_cur = lookup(block, "received_currency", currencies, "currency")
    s_loc = lookup(block, "sender_bank_location", locations, "bank location")
    r_loc = lookup(block, "receiver_bank_location", locations, "bank location")
    ptype = lookup(block, "payment_type", types, "payment type")
    laundering = flags(block, "is_laundering")
    home = locations.index(HOME)
    countries = [LOCATIONS[k] for k in locations]
    table = [PAYMENT_TYPES[k] for k in types]
    paid_cny = amount * rate[pay_cur]
    payer, payee = join("S", c["sender_account"], n=n), join("S", c["receiver_account"], n=n)
    channel = pick([r[0] for r in table], ptype)
    lau = pa.array(laundering, pa.bool_())
    return Transfers(
        line=block.first_line + np.arange(n, dtype=np.int64), ts=(local - np.timedelta64(8, "h")).astype("datetime64[ns]"),
        payer=payer, payee=payee, payer_inside=s_loc == home, payee_inside=r_loc == home,
        paid=paid_cny, received=paid_cny, paid_original=amount, paid_currency=c["payment_currency"],
        received_original=paid_cny / rate[rec_cur], received_currency=c["received_currency"],
        channel=channel, type_out=pick([r[1] for r in table], ptype), type_in=pick([r[2] for r in table], ptype),
        payer_country=pick(countries, s_loc), payee_country=pick(countries, r_loc),
        terminal=pc.if_else(pc.equal(channel, "pos"), join("T-", payee, n=n), pa.nulls(n, pa.string())),
        laundering=laundering,
        typology=pc.if_else(lau, pc.utf8_lower(pc.replace_substring_regex(c["laundering_type"], r"[- ]", "_")),
                            pa.nulls(n, pa.string())),
        scenario=pa.nulls(n, pa.string()),
    )
