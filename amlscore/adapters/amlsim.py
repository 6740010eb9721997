"""IBM AMLSim output into the contract, in both published layouts.

* **Sample runs** (``sample/*.tgz`` of IBM/AMLSim): ``nodes.csv`` (nodeid, isFraud, init_balance,
  fraudStep) and ``transactions.csv`` (sourceNodeId, targetNodeId, value, time). Labels are on
  accounts: a transaction between two fraud accounts is laundering (the usual stand-in, as the
  data's PROVENANCE.md says); the typology is not in the files (``unknown``).
* **Bank export** (``scripts/convert_logs.py`` with ``paramFiles/schema.json``): ``accounts.csv``
  (acct_id, ..., is_sar or prior_sar_count), ``transactions.csv`` or ``tx.csv`` (tran_id, orig_acct,
  bene_acct, tx_type, base_amt, tran_timestamp, is_sar or is_fraud, alert_id) and optionally
  ``alert_transactions.csv`` (alert_id, alert_type, is_sar, tran_id, ...): the transaction's own
  SAR flag is the label and the alert's type its typology. Upper-case names of older exports
  (TX_ID, SENDER_ACCOUNT_ID, RECEIVER_ACCOUNT_ID, TX_AMOUNT, TIMESTAMP, IS_SAR, ALERT_ID, ...) are
  read as well.

AMLSim has one bank: every account is a customer and every transaction appears twice. Time is in
simulation steps (or a timestamp in the export): step ``s`` is ``--start`` + ``s`` days (``--step
day``, at 12:00 bank-local time: the simulator has no time of day) or + ``s`` hours (``--step hour``).
Amounts are AMLSim's unit-free values, taken as CNY (the original is kept).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from amlscore.adapters.errors import SourceFormatError
from amlscore.adapters.output import ContractWriter
from amlscore.adapters.source import Block, check_header, flags, header_of, join, lookup, numbers, pick
from amlscore.adapters.transfers import Transfers, constant, null_strings

#: AMLSim's base date (conf.json ``general.base_date``): step 0 when --start is not given.
DEFAULT_START = dt.date(2017, 1, 1)
STEPS = ("day", "hour")
SAMPLE_NODES = ("nodeid", "isFraud", "init_balance", "fraudStep")
SAMPLE_TRANSACTIONS = ("sourceNodeId", "targetNodeId", "value", "time")

#: tx_type -> (channel, txn_type of the out row, txn_type of the in row). The simulator's transfers
#: carry no session, so their channel is ``other``; cash is handled at a counter.
TX_TYPES: dict[str, tuple[str, str, str]] = {
    "TRANSFER": ("other", "transfer", "transfer"),
    "WIRE": ("other", "remittance", "remittance"),
    "CHECK": ("counter", "transfer", "transfer"),
    "CREDIT": ("other", "transfer", "transfer"),
    "PAYMENT": ("other", "bill_payment", "bill_payment"),
    "DEPOSIT": ("counter", "cash_deposit", "cash_deposit"),
    "CASH-IN": ("counter", "cash_deposit", "cash_deposit"),
    "CASH-OUT": ("counter", "cash_withdrawal", "cash_withdrawal"),
}

#: Export column -> the names it has in the published schemas (lower-case schema.json first).
EXPORT_TX = {"id": ("tran_id", "TX_ID"), "payer": ("orig_acct", "SENDER_ACCOUNT_ID"),
             "payee": ("bene_acct", "RECEIVER_ACCOUNT_ID"), "type": ("tx_type", "TX_TYPE"),
             "amount": ("base_amt", "TX_AMOUNT"), "time": ("tran_timestamp", "TIMESTAMP"),
             "label": ("is_sar", "is_fraud", "IS_SAR", "IS_FRAUD"), "alert": ("alert_id", "ALERT_ID")}
EXPORT_ACCOUNTS = {"id": ("acct_id", "ACCOUNT_ID"), "label": ("is_sar", "prior_sar_count", "IS_SAR", "IS_FRAUD")}
EXPORT_ALERTS = {"id": ("tran_id", "TX_ID"), "alert": ("alert_id", "ALERT_ID"), "type": ("alert_type", "ALERT_TYPE")}
_TRUE = ("1", "true", "True", "TRUE")
_FALSE = ("0", "false", "False", "FALSE")


def convert(src: Path, writer: ContractWriter, *, start: dt.date | None = None, step: str = "day") -> None:
    """Read the run in ``src`` (either layout) into ``writer``."""
    if step not in STEPS:
        raise SourceFormatError(src, "unknown --step", expected=" or ".join(STEPS), got=step)
    if not src.is_dir():
        raise SourceFormatError(src, "not a folder", expected="an AMLSim output folder (nodes.csv + transactions.csv, "
                                "or accounts.csv + transactions.csv / tx.csv)")
    origin = np.datetime64(start or DEFAULT_START, "s")
    if (src / "nodes.csv").is_file():
        t = _sample_run(src, origin, step)
    elif (src / "accounts.csv").is_file():
        t = _bank_export(src, origin, step)
    else:
        raise SourceFormatError(src, "neither nodes.csv nor accounts.csv found",
                                expected="an AMLSim sample run or bank export")
    writer.source_rows += len(t)
    writer.add(t)


def _read(path: Path, names: tuple[str, ...] | list[str]) -> Block:
    table = pacsv.read_csv(str(path), read_options=pacsv.ReadOptions(column_names=list(names), skip_rows=1),
                           convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                                                strings_can_be_null=False))
    return Block(path, 2, {n: table.column(n).combine_chunks() for n in names}, {})


def _steps(block: Block, name: str, origin: np.datetime64, step: str) -> np.ndarray:
    values = numbers(block, name)
    bad = np.flatnonzero((values < 0) | (values != np.floor(values)))
    if len(bad):
        row = int(bad[0])
        raise block.fail(row, name, "not a simulation step", "a whole number >= 0", block.columns[name][row].as_py())
    unit = np.timedelta64(1, "D") if step == "day" else np.timedelta64(1, "h")
    noon = np.timedelta64(12, "h") if step == "day" else np.timedelta64(0, "h")
    return _utc(origin + values.astype(np.int64) * unit + noon)


def _utc(local: np.ndarray) -> np.ndarray:
    """Bank-local (UTC+08:00) naive times -> UTC instants."""
    return (local.astype("datetime64[s]") - np.timedelta64(8, "h")).astype("datetime64[ns]")


def _sample_run(src: Path, origin: np.datetime64, step: str) -> Transfers:
    nodes_path, tx_path = src / "nodes.csv", src / "transactions.csv"
    check_header(nodes_path, SAMPLE_NODES)
    check_header(tx_path, SAMPLE_TRANSACTIONS)
    nodes = _read(nodes_path, SAMPLE_NODES)
    fraud_nodes = nodes.columns["nodeid"].filter(pa.array(flags(nodes, "isFraud")))
    tx = _read(tx_path, SAMPLE_TRANSACTIONS)
    n = len(tx)
    payer, payee = tx.columns["sourceNodeId"], tx.columns["targetNodeId"]
    _known(tx, "sourceNodeId", nodes.columns["nodeid"], nodes_path)
    _known(tx, "targetNodeId", nodes.columns["nodeid"], nodes_path)
    laundering = (pc.is_in(payer, value_set=fraud_nodes).to_numpy(zero_copy_only=False)
                  & pc.is_in(payee, value_set=fraud_nodes).to_numpy(zero_copy_only=False))
    return _transfers(tx, "value", _steps(tx, "time", origin, step), join("A", payer, n=n), join("A", payee, n=n),
                      np.zeros(n, dtype=np.int64), laundering, null_strings(n), null_strings(n))


def _known(block: Block, name: str, ids: pa.Array, where: Path) -> None:
    missing = ~pc.is_in(block.columns[name], value_set=ids).to_numpy(zero_copy_only=False)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise block.fail(row, name, "unknown account", f"an id of {where.name}", block.columns[name][row].as_py())


def _column(path: Path, header: list[str], aliases: tuple[str, ...], *, required: bool = True) -> str | None:
    found = next((a for a in aliases if a in header), None)
    if found is None and required:
        raise SourceFormatError(path, "a required column is missing", line=1, expected=" or ".join(aliases),
                                got=",".join(header))
    return found


def _bank_export(src: Path, origin: np.datetime64, step: str) -> Transfers:
    tx_path = next((src / f for f in ("transactions.csv", "tx.csv") if (src / f).is_file()), None)
    if tx_path is None:
        raise SourceFormatError(src, "no transactions.csv or tx.csv beside accounts.csv")
    acc_path = src / "accounts.csv"
    acc_header, tx_header = header_of(acc_path), header_of(tx_path)
    acc_cols = {k: _column(acc_path, acc_header, v, required=k == "id") for k, v in EXPORT_ACCOUNTS.items()}
    tx_cols = {k: _column(tx_path, tx_header, v, required=k not in ("label", "alert")) for k, v in EXPORT_TX.items()}
    accounts = _read(acc_path, acc_header)
    tx = _read(tx_path, tx_header)
    n = len(tx)
    _known(tx, tx_cols["payer"], accounts.columns[acc_cols["id"]], acc_path)
    _known(tx, tx_cols["payee"], accounts.columns[acc_cols["id"]], acc_path)
    if tx_cols["label"] is not None:
        laundering = _bool(tx, tx_cols["label"])
    elif acc_cols["label"] is not None:
        sar = accounts.columns[acc_cols["id"]].filter(pa.array(_bool(accounts, acc_cols["label"])))
        laundering = (pc.is_in(tx.columns[tx_cols["payer"]], value_set=sar).to_numpy(zero_copy_only=False)
                      & pc.is_in(tx.columns[tx_cols["payee"]], value_set=sar).to_numpy(zero_copy_only=False))
    else:
        raise SourceFormatError(tx_path, "no label: neither the transactions nor accounts.csv have a SAR column",
                                line=1, expected=" or ".join(EXPORT_TX["label"]))
    typology, scenario = _alerts(src, tx, tx_cols, laundering)
    return _transfers(tx, tx_cols["amount"], _export_times(tx, tx_cols["time"], origin, step),
                      join("A", tx.columns[tx_cols["payer"]], n=n), join("A", tx.columns[tx_cols["payee"]], n=n),
                      lookup(tx, tx_cols["type"], list(TX_TYPES), "tx_type"), laundering, typology, scenario,
                      types=True)


def _bool(block: Block, name: str) -> np.ndarray:
    """true/false/1/0, or a count (prior_sar_count): more than zero is true."""
    col = block.columns[name]
    if pc.all(pc.is_in(col, value_set=pa.array(_TRUE + _FALSE))).as_py():
        return pc.is_in(col, value_set=pa.array(_TRUE)).to_numpy(zero_copy_only=False)
    return numbers(block, name) > 0


def _export_times(block: Block, name: str, origin: np.datetime64, step: str) -> np.ndarray:
    col = block.columns[name]
    if pc.all(pc.match_substring_regex(col, r"^\d+$")).as_py():
        return _steps(block, name, origin, step)
    text = pc.replace_substring_regex(col, r"(Z|[+-]00:?00)$", "")
    parsed = pc.strptime(pc.replace_substring(text, "T", " "), format="%Y-%m-%d %H:%M:%S", unit="s",
                         error_is_null=True)
    missing = parsed.is_null().to_numpy(zero_copy_only=False)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise block.fail(row, name, "unparsable time", "a simulation step or YYYY-MM-DD[T]HH:MM:SS[Z]",
                         col[row].as_py())
    return _utc(parsed.to_numpy(zero_copy_only=False))


def _alerts(src: Path, tx: Block, tx_cols: dict[str, str | None], laundering: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """Typology (alert_type) and scenario (alert_id) of laundering transactions from alert_transactions.csv."""
    n = len(tx)
    path = src / "alert_transactions.csv"
    if not path.is_file():
        return null_strings(n), null_strings(n)
    header = header_of(path)
    cols = {k: _column(path, header, v) for k, v in EXPORT_ALERTS.items()}
    alerts = _read(path, header)
    pos = pc.index_in(tx.columns[tx_cols["id"]], value_set=alerts.columns[cols["id"]])
    mask = pa.array(laundering, pa.bool_())
    typ = pc.if_else(mask, alerts.columns[cols["type"]].take(pos), null_strings(n))
    scen = pc.if_else(mask, join("alert-", alerts.columns[cols["alert"]].take(pos), n=n), null_strings(n))
    return pc.utf8_lower(typ), scen


def _transfers(tx: Block, amount_col: str, ts: np.ndarray, payer: pa.Array, payee: pa.Array, type_codes: np.ndarray,
               laundering: np.ndarray, typology: pa.Array, scenario: pa.Array, *, types: bool = False) -> Transfers:
    n = len(tx)
    amount = numbers(tx, amount_col)
    bad = np.flatnonzero(amount <= 0)
    if len(bad):
        row = int(bad[0])
        raise tx.fail(row, amount_col, "amount not positive", "an amount > 0", tx.columns[amount_col][row].as_py())
    table = [TX_TYPES[k] for k in TX_TYPES] if types else [TX_TYPES["TRANSFER"]]
    inside = np.ones(n, dtype=bool)
    return Transfers(
        line=tx.first_line + np.arange(n, dtype=np.int64), ts=ts, payer=payer, payee=payee,
        payer_inside=inside, payee_inside=inside, paid=amount, received=amount,
        paid_original=amount, paid_currency=constant("AMLSim", n),
        received_original=amount, received_currency=constant("AMLSim", n),
        channel=pick([r[0] for r in table], type_codes), type_out=pick([r[1] for r in table], type_codes),
        type_in=pick([r[2] for r in table], type_codes),
        payer_country=null_strings(n), payee_country=null_strings(n), terminal=null_strings(n),
        laundering=laundering, typology=typology, scenario=scenario,
    )
