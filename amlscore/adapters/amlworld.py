"""IBM AMLworld (``*_Trans.csv``, optionally ``*_Patterns.txt``) into the contract.

AMLworld (Altman et al., NeurIPS 2023) records payments between accounts of many banks. With
``--bank ID`` the customers are the accounts of that bank: a payment out of it is an ``out`` row,
a payment into it an ``in`` row, and the other side an external counterparty known by
``counterparty_account``. With ``--bank all`` every account is a customer and every payment
appears twice. Bank ids are compared as numbers (the file writes ``00220`` and ``0220`` for the
same bank). A customer id is ``<bank>-<account>``. Times are read as bank-local times (UTC+08:00).
Mapping tables: :data:`PAYMENT_FORMATS` here, the currency rates in :mod:`amlscore.adapters.currency`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.adapters.currency import AMLWORLD_CURRENCIES, rates_for
from amlscore.adapters.errors import SourceFormatError
from amlscore.adapters.output import ContractWriter
from amlscore.adapters.source import Block, blocks, check_header, flags, join, lookup, numbers, pick, times
from amlscore.adapters.transfers import Transfers, null_strings

HEADER = ("Timestamp", "From Bank", "Account", "To Bank", "Account", "Amount Received", "Receiving Currency",
          "Amount Paid", "Payment Currency", "Payment Format", "Is Laundering")
NAMES = ("timestamp", "from_bank", "from_account", "to_bank", "to_account", "amount_received",
         "receiving_currency", "amount_paid", "payment_currency", "payment_format", "is_laundering")
LABELS = dict(zip(NAMES, HEADER)) | {"from_account": "Account (3rd column, payer)",
                                     "to_account": "Account (5th column, payee)"}
TIME_FORMAT, TIME_SHOWN = "%Y/%m/%d %H:%M", "YYYY/MM/DD HH:MM"

#: Payment Format -> (channel, txn_type of the payer's out row, txn_type of the payee's in row).
#: ACH and wires carry no online session (ip_address, device_id) in the source, and the contract
#: requires one on online banking's out rows, so their channel is ``other`` (not known).
#: Cheques are paid in at a counter. Card payments are POS purchases: the payee is a merchant, its
#: account stands in for the terminal, and its customer_type is corporate. Cash leaves the payer as
#: a withdrawal and reaches the payee as a deposit. Bitcoin and Reinvestment (a transfer to the
#: account itself) have no contract type: ``other``.
PAYMENT_FORMATS: dict[str, tuple[str, str, str]] = {
    "ACH": ("other", "transfer", "transfer"),
    "Wire": ("other", "remittance", "remittance"),
    "Cheque": ("counter", "transfer", "transfer"),
    "Credit Card": ("pos", "purchase", "purchase"),
    "Cash": ("counter", "cash_withdrawal", "cash_deposit"),
    "Bitcoin": ("other", "other", "other"),
    "Reinvestment": ("other", "other", "other"),
}
_BEGIN = re.compile(r"^BEGIN LAUNDERING ATTEMPT - ([A-Z-]+)(?::.*)?$")
_END = re.compile(r"^END LAUNDERING ATTEMPT - ([A-Z-]+)")


@dataclass(frozen=True)
class Patterns:
    """Laundering attempts of a ``*_Patterns.txt``: each pattern row (as its text) -> typology, attempt id."""

    by_row: dict[str, tuple[str, str]]
    attempts: int


def read_patterns(path: Path) -> Patterns:
    """Parse the BEGIN/END blocks; a row outside a block or an unclosed block is an error."""
    if not path.is_file():
        raise SourceFormatError(path, "no such file")
    by_row: dict[str, tuple[str, str]] = {}
    current: str | None = None
    attempts = 0
    with path.open(encoding="utf-8-sig") as handle:
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text:
                continue
            if m := _BEGIN.match(text):
                if current is not None:
                    raise SourceFormatError(path, "a laundering attempt begins before the last one ended", line=number,
                                            expected="END LAUNDERING ATTEMPT first")
                current, attempts = m.group(1), attempts + 1
            elif m := _END.match(text):
                if current is None:
                    raise SourceFormatError(path, "END without BEGIN", line=number)
                current = None
            elif current is None:
                raise SourceFormatError(path, "a row outside a laundering attempt", line=number,
                                        expected="BEGIN LAUNDERING ATTEMPT - <TYPE>", got=text[:60])
            else:
                cells = next(csv.reader([text]))
                if len(cells) != len(HEADER):
                    raise SourceFormatError(path, f"{len(cells)} fields", line=number,
                                            expected=f"{len(HEADER)} fields as in *_Trans.csv")
                typology = current.lower().replace("-", "_")
                by_row[_row_key(cells)] = (typology, f"AW{attempts:06d}")
    if current is not None:
        raise SourceFormatError(path, f"the last laundering attempt ({current}) has no END line")
    return Patterns(by_row, attempts)


def _row_key(cells: list[str]) -> str:
    """A payment's identity across the two files: time, both accounts (bank as a number), paid amount."""
    return "|".join((cells[0].strip(), _bank(cells[1]), cells[2].strip(), _bank(cells[3]), cells[4].strip(),
                     cells[7].strip(), cells[8].strip(), cells[9].strip()))


def _bank(text: str) -> str:
    stripped = text.strip().lstrip("0")
    return stripped or "0"


def convert(src: Path, writer: ContractWriter, *, bank: str = "all", patterns: Path | None = None,
            block_bytes: int | None = None) -> None:
    """Stream ``src`` into ``writer`` (see the module docstring for what becomes what)."""
    check_header(src, HEADER)
    known = read_patterns(patterns) if patterns is not None else None
    own = None if bank == "all" else _bank(bank)
    currency_names = list(AMLWORLD_CURRENCIES)
    rate = np.array([rates_for(AMLWORLD_CURRENCIES)[c] for c in currency_names])
    formats = list(PAYMENT_FORMATS)
    seen_bank = False
    kwargs = {"block_bytes": block_bytes} if block_bytes else {}
    for block in blocks(src, NAMES, LABELS, **kwargs):
        t = _transfers(block, own, currency_names, rate, formats, known)
        writer.source_rows += len(block)
        keep = t.paid > 0
        keep &= t.received > 0
        writer.skipped_rows += int((~keep).sum())
        t = t.take(keep & (t.payer_inside | t.payee_inside))
        if not len(t):
            continue
        seen_bank = True
        cards = np.asarray(t.channel.to_numpy(zero_copy_only=False) == "pos") & t.payee_inside
        writer.mark_corporate(t.payee.filter(pa.array(cards)))
        writer.add(t)
    if own is not None and not seen_bank:
        raise SourceFormatError(src, f"no payment from or to bank {bank}", column="From Bank / To Bank",
                                expected="a bank id that occurs in the file")
    if writer.skipped_rows:
        writer.notes.append(f"{writer.skipped_rows:,} payments of amount 0 were left out (the contract's amounts are > 0).")
    if known is not None:
        writer.notes.append(f"{known.attempts:,} laundering attempts read from {patterns}.")


def _transfers(block: Block, own: str | None, currency_names: list[str], rate: np.ndarray, formats: list[str],
               known: Patterns | None) -> Transfers:
    c = block.columns
    n = len(block)
    local = times(block, "timestamp", TIME_FORMAT, TIME_SHOWN)
    ts = (local - np.timedelta64(8, "h")).astype("datetime64[ns]")
    received, paid = numbers(block, "amount_received"), numbers(block, "amount_paid")
    for name, values in (("amount_received", received), ("amount_paid", paid)):
        negative = np.flatnonzero(values < 0)
        if len(negative):
            row = int(negative[0])
            raise block.fail(row, name, "negative amount", "an amount >= 0", c[name][row].as_py())
    rcur = lookup(block, "receiving_currency", currency_names, "currency")
    pcur = lookup(block, "payment_currency", currency_names, "currency")
    fmt = lookup(block, "payment_format", formats, "payment format")
    laundering = flags(block, "is_laundering")
    from_bank, to_bank = _banks(c["from_bank"]), _banks(c["to_bank"])
    payer = join(from_bank, "-", c["from_account"], n=n)
    payee = join(to_bank, "-", c["to_account"], n=n)
    if own is None:
        payer_inside = payee_inside = np.ones(n, dtype=bool)
    else:
        payer_inside = pc.equal(from_bank, own).to_numpy(zero_copy_only=False)
        payee_inside = pc.equal(to_bank, own).to_numpy(zero_copy_only=False)
    table = [PAYMENT_FORMATS[f] for f in formats]
    channel = pick([row[0] for row in table], fmt)
    pos = pc.equal(channel, "pos")
    typology, scenario = _typologies(block, laundering, known)
    return Transfers(
        line=block.first_line + np.arange(n, dtype=np.int64), ts=ts, payer=payer, payee=payee,
        payer_inside=payer_inside, payee_inside=payee_inside,
        paid=paid * rate[pcur], received=received * rate[rcur],
        paid_original=paid, paid_currency=c["payment_currency"],
        received_original=received, received_currency=c["receiving_currency"],
        channel=channel, type_out=pick([row[1] for row in table], fmt), type_in=pick([row[2] for row in table], fmt),
        payer_country=null_strings(n), payee_country=null_strings(n),
        terminal=pc.if_else(pos, join("T-", payee, n=n), null_strings(n)),
        laundering=laundering, typology=typology, scenario=scenario,
    )


def _banks(col: pa.Array) -> pa.Array:
    """Bank ids as numbers in text (leading zeros dropped; all zeros is 0)."""
    stripped = pc.utf8_ltrim(pc.utf8_trim_whitespace(col), characters="0")
    return pc.if_else(pc.equal(stripped, ""), "0", stripped)


def _typologies(block: Block, laundering: np.ndarray, known: Patterns | None) -> tuple[pa.Array, pa.Array]:
    """Typology and attempt of the laundering rows found in the patterns file (else null: unknown)."""
    n = len(block)
    rows = np.flatnonzero(laundering)
    if known is None or not len(rows):
        return null_strings(n), null_strings(n)
    typology = np.full(n, None, dtype=object)
    scenario = np.full(n, None, dtype=object)
    if len(rows):
        cells = [block.columns[name].take(pa.array(rows)).to_pylist() for name in NAMES]
        for k, row in enumerate(rows):
            hit = known.by_row.get(_row_key([col[k] for col in cells]))
            if hit is not None:
                typology[row], scenario[row] = hit
    return pa.array(typology, pa.string()), pa.array(scenario, pa.string())
