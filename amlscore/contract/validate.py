"""Every rule of the input data contract, checked column-wise with pandas and Arrow.

The validator reads raw tables (strings as read from CSV, or the native types Parquet or an
in-memory frame may carry), counts every problem, keeps a few of each kind for display, and
parses each column into its typed form on the way, so that a data set that passes is typed
without a second pass (:func:`to_typed`). The column rules and parsers are in
:mod:`amlscore.contract.columns`; this module holds the table rules (header, uniqueness, the
channel's fields, links between tables, reports) and the public functions.

A problem is a :class:`~amlscore.contract.problems.Violation`: a file, a 1-based data row, a column, the offending value and
the rule it breaks, e.g.::

    The 'amount' column of transactions.csv must be a number > 0. Got '-5' instead at row 7 (line 8).

Problems are of two grades. An error breaks the contract: the data set is refused. A warning is
legal but suspect data (an unknown counterparty_id, an IP country without an IP address): it is
listed with the same detail and the data set is accepted, unless strict mode
(:meth:`~amlscore.contract.problems.ValidationReport.strict`) turns warnings into errors. Columns beyond the contract's are
kept and listed as notes.

No rule loops over rows in Python: each is a boolean mask over a whole column.
"""


from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.contract.columns import (
    LOCAL_TIMEZONE,
    PARSERS,
    STRING_DTYPE,
    ColumnCheck,
    arrow_mask,
    as_mask,
    as_text,
    typed_dtype,
)
from amlscore.contract.problems import ContractViolationError, ProblemCollector, ValidationReport, Violation
from amlscore.contract.schema import (
    IP_CHANNELS,
    TABLES,
    TABLES_BY_NAME,
    TERMINAL_CHANNELS,
    TRANSACTIONS,
    Column,
    TableSchema,
)

__all__ = [
    "CheckedTable",
    "check_frames",
    "check_tables",
    "empty_table",
    "extra_columns",
    "to_typed",
    "typed_tables",
    "validate_frames",
]


# --------------------------------------------------------------------------------------------
# Table rules
# --------------------------------------------------------------------------------------------


@dataclass
class CheckedTable:
    """A table after the column rules: raw frame, parsed columns and empty-cell masks (present columns only)."""

    schema: TableSchema
    file: str
    raw: pd.DataFrame
    typed: dict[str, pd.Series] = field(default_factory=dict)
    empty: dict[str, np.ndarray] = field(default_factory=dict)


def _check_header(schema: TableSchema, frame: pd.DataFrame, file: str, out: ProblemCollector) -> pd.DataFrame:
    """Duplicate, missing and unknown columns; returns the frame keeping the first of each name."""
    names = [str(c) for c in frame.columns]
    for name, n in Counter(names).items():
        if n > 1:
            rule = f"must appear once in the header, not {n} times (the first one is used)"
            out.add_group([Violation(file, None, name, None, rule, "duplicate_column")], 1)
    frame = frame.loc[:, ~pd.Index(names).duplicated()].reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    for col in schema.columns:
        if col.name not in frame.columns and not col.optional:
            near = [n for n in frame.columns if n.strip().lower() == col.name.lower()]
            hint = f"A column named {near[0]!r} was found; column names are exact." if near else None
            rule = "is required by the contract but missing"
            out.add_group([Violation(file, None, col.name, None, rule, "missing_column", hint)], 1)
    unknown = extra_columns(schema, frame)
    if unknown:
        out.notes.append(
            f"{file} has columns beyond the contract's; they are kept and ignored by scoring: {', '.join(map(repr, unknown))}."
        )
    return frame


def extra_columns(schema: TableSchema, frame: pd.DataFrame) -> list[str]:
    """The columns of ``frame`` that ``schema`` does not name, in frame order."""
    return [str(n) for n in frame.columns if n not in schema.column_names]


def _check_columns(table: CheckedTable, out: ProblemCollector) -> None:
    """Empty cells, value sets, formats, bounds and uniqueness, column by column."""
    for col in table.schema.columns:
        if col.name not in table.raw.columns:
            if col.optional:  # an absent optional column reads as all empty
                n = len(table.raw)
                table.typed[col.name] = pd.Series(pd.array([pd.NA] * n, dtype=typed_dtype(col)), name=col.name)
                table.empty[col.name] = np.ones(n, dtype=bool)
            continue
        check = ColumnCheck(table.file, col, table.raw[col.name], out)
        typed, empty = PARSERS[col.kind](check)
        if not col.nullable:
            check.flag(empty, "must not be empty", kind="required")
        if col.unique:
            _check_unique(check, typed)
        table.typed[col.name] = typed.rename(col.name)
        table.empty[col.name] = empty


def _check_unique(check: ColumnCheck, values: pd.Series) -> None:
    if not _has_repeats(_arrow(values)):
        return  # the usual case, settled by one Arrow sort
    repeat = as_mask(values.notna()) & as_mask(values.duplicated(keep="first"))
    firsts = ~as_mask(values.duplicated(keep="first")) & as_mask(values.duplicated(keep=False))
    first_row = pd.Series(np.flatnonzero(firsts) + 1, index=pd.Index(values[firsts].array))

    def note(p: int) -> str:
        return f"Row {int(first_row[values.iat[p]])} has the same value."

    check.flag(repeat, "must be unique", kind="duplicate", note=note)


def _has_repeats(text: pa.ChunkedArray) -> bool:
    """Whether a non-empty value occurs twice. Sorting and comparing neighbours is several times
    faster in Arrow than hashing millions of distinct strings."""
    present = text.drop_null()
    if len(present) < 2:
        return False
    ordered = present.take(pc.sort_indices(present)).combine_chunks()
    return bool(pc.any(pc.equal(ordered.slice(1), ordered.slice(0, len(ordered) - 1))).as_py())


def _arrow(text: pd.Series) -> pa.ChunkedArray:
    """The Arrow data behind a typed text column."""
    return text.array.__arrow_array__()


def _is_in(text: pd.Series, known: pd.Series) -> np.ndarray:
    """Which cells of ``text`` are among the non-empty cells of ``known`` (Arrow hash lookup)."""
    value_set = _arrow(known).combine_chunks().drop_null()
    return arrow_mask(pc.is_in(_arrow(text), value_set=value_set))


def _in_categories(values: pd.Series, wanted: tuple[str, ...]) -> np.ndarray:
    """``values.isin(wanted)`` for a categorical column, on its integer codes."""
    positions = [values.cat.categories.get_loc(w) for w in wanted]
    return np.isin(values.cat.codes.to_numpy(), positions)


def _check_channel_fields(tx: CheckedTable, out: ProblemCollector) -> None:
    """The session (ip_address, device_id) on online and mobile banking only, required on their out rows;
    terminal_id exactly on POS and ATM; ip_country and ip_region without an ip_address are a warning."""
    channel = tx.typed.get("channel")
    if channel is None:
        return
    known = as_mask(channel.notna())
    direction = tx.typed.get("direction")
    # Without a readable direction a row is held to the stricter rule of an out row.
    incoming = _in_categories(direction, ("in",)) if direction is not None else np.zeros(len(channel), dtype=bool)

    def note(p: int) -> str:
        return f"Its channel is {channel.iat[p]}."

    def out_note(p: int) -> str:
        return f"Its channel is {channel.iat[p]} and its direction is out."

    ip_where = " or ".join(IP_CHANNELS)
    for name in ("ip_address", "device_id"):
        if name not in tx.typed:
            continue
        on = _in_categories(channel, IP_CHANNELS)
        empty, raw = tx.empty[name], tx.raw[name]
        out.add(tx.file, name, on & ~incoming & empty, raw,
                f"must not be empty on an out row when channel is {ip_where} (the customer's own session)",
                "channel_field_missing", out_note)
        out.add(tx.file, name, known & ~on & ~empty, raw, f"must be empty unless channel is {ip_where}",
                "channel_field_forbidden", note)
    if "terminal_id" in tx.typed:
        on = _in_categories(channel, TERMINAL_CHANNELS)
        empty, raw = tx.empty["terminal_id"], tx.raw["terminal_id"]
        where = " or ".join(TERMINAL_CHANNELS)
        out.add(tx.file, "terminal_id", on & empty, raw, f"must not be empty when channel is {where}", "channel_field_missing", note)
        out.add(tx.file, "terminal_id", known & ~on & ~empty, raw, f"must be empty unless channel is {where}",
                "channel_field_forbidden", note)
    if "ip_address" in tx.typed:
        no_ip = tx.empty["ip_address"]
        for name in ("ip_country", "ip_region"):
            if name in tx.typed:
                out.warn(tx.file, name, no_ip & ~tx.empty[name], tx.raw[name],
                         "describes ip_address and should be empty when ip_address is empty", "ip_detail_without_ip")


def _check_counterparty_link(tx: CheckedTable, customers: CheckedTable, out: ProblemCollector) -> None:
    """A counterparty_id that names no customer is a warning: the counterparty is then outside the bank."""
    ids, known = tx.typed.get("counterparty_id"), customers.typed.get("customer_id")
    if ids is None or known is None:
        return
    unknown = as_mask(ids.notna()) & ~_is_in(ids, known)
    rule = (f"should name a customer in {customers.file} when given "
            "(one that names no customer is treated as a counterparty outside the bank)")
    out.warn(tx.file, "counterparty_id", unknown, tx.raw["counterparty_id"], rule, "unknown_counterparty")


def _check_customer_link(table: CheckedTable, customers: CheckedTable, out: ProblemCollector) -> None:
    """Every customer_id names a customer of customers."""
    ids, known = table.typed.get("customer_id"), customers.typed.get("customer_id")
    if ids is None or known is None:
        return
    unknown = as_mask(ids.notna()) & ~_is_in(ids, known)
    rule = f"must name a customer in {customers.file}"
    out.add(table.file, "customer_id", unknown, table.raw["customer_id"], rule, "unknown_customer")


def _check_reports(rep: CheckedTable, tx: CheckedTable | None, out: ProblemCollector) -> None:
    """Reported transactions exist and are the customer's own; periods; report_date after the activity."""
    n = len(rep.raw)
    txn_id = rep.typed.get("txn_id")
    if txn_id is None:
        return  # without txn_id (reported missing) no report can be told a transaction or a period one
    has_txn = ~rep.empty["txn_id"]
    activity = pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns]")
    source = pd.Series("", index=range(n), dtype=object)

    if tx is not None and "txn_id" in tx.typed:
        found = _lookup_transactions(txn_id, tx)
        exists = found["exists"].to_numpy()
        rule = f"must name a transaction in {tx.file} when given"
        out.add(rep.file, "txn_id", has_txn & ~exists, rep.raw["txn_id"], rule, "unknown_transaction")
        _check_report_owner(rep, found, has_txn & exists, out)
        activity = activity.mask(has_txn, found["day"])
        source = source.mask(has_txn, "the China Standard Time date of its transaction")

    start, end = rep.typed.get("period_start"), rep.typed.get("period_end")
    for name in ("period_start", "period_end"):
        if name in rep.typed:
            rule = "must not be empty when txn_id is empty (the report then covers a period)"
            out.add(rep.file, name, ~has_txn & rep.empty[name], rep.raw[name], rule, "period_required")
    if start is not None and end is not None:
        reversed_ = as_mask(start > end)  # NaT compares False
        out.add(rep.file, "period_start", reversed_, rep.raw["period_start"], "must be on or before period_end",
                "period_order", note=lambda p: f"period_end is {end.iat[p]:%Y-%m-%d}.")
    if end is not None:
        activity = activity.mask(~has_txn, end)
        source = source.mask(~has_txn, "its period_end")

    report_date = rep.typed.get("report_date")
    if report_date is not None:
        early = as_mask(report_date < activity)
        out.add(rep.file, "report_date", early, rep.raw["report_date"], "must be on or after the reported activity",
                "report_before_activity", note=lambda p: f"The activity is on {activity.iat[p]:%Y-%m-%d} ({source.iat[p]}).")


def local_day(instants: pd.Series) -> pd.Series:
    """The China Standard Time calendar day of UTC instants, as naive midnight datetimes."""
    return instants.dt.tz_convert(LOCAL_TIMEZONE).dt.tz_localize(None).dt.floor("D")


def _check_report_owner(rep: CheckedTable, found: pd.DataFrame, linked: np.ndarray, out: ProblemCollector) -> None:
    customer = rep.typed.get("customer_id")
    if customer is None:
        return
    owner = found["customer_id"]
    other = linked & as_mask(owner.notna()) & as_mask(customer.notna()) & as_mask(owner != customer)
    out.add(
        rep.file, "txn_id", other, rep.raw["txn_id"], "must name a transaction of the report's own customer",
        "transaction_of_other_customer",
        note=lambda p: f"The report is about {customer.iat[p]}; the transaction belongs to {owner.iat[p]}.",
    )


def _lookup_transactions(txn_id: pd.Series, tx: CheckedTable) -> pd.DataFrame:
    """Per report: does its txn_id exist, whose is it, on which China Standard Time date (the first copy wins)."""
    ids = tx.typed["txn_id"]
    wanted = _is_in(ids, txn_id)  # the few reported transactions out of millions
    index = pd.Index(ids[wanted].array)
    first = ~index.duplicated()
    owner, ts = tx.typed.get("customer_id"), tx.typed.get("timestamp")
    n = int(first.sum())
    table = pd.DataFrame(
        {
            "exists": np.ones(n, dtype=bool),
            "customer_id": owner[wanted][first].array if owner is not None else pd.array([pd.NA] * n, dtype=STRING_DTYPE),
            "day": local_day(ts[wanted][first]).array if ts is not None else pd.NaT,
        },
        index=index[first],
    )
    found = table.reindex(pd.Index(txn_id.array)).reset_index(drop=True)
    found["exists"] = found["exists"].fillna(False).astype(bool)
    found["day"] = found["day"].astype("datetime64[ns]")
    return found


# --------------------------------------------------------------------------------------------
# The engine and the public API
# --------------------------------------------------------------------------------------------


def check_tables(
    frames: Mapping[str, pd.DataFrame | None], files: Mapping[str, str], out: ProblemCollector
) -> dict[str, CheckedTable]:
    """Run every rule over the readable tables; return them checked and parsed.

    ``frames`` maps a table name to its raw frame, or to None when its file could not be read
    (that problem is already in ``out``); ``files`` maps a table name to the name used in messages.
    A rule that needs an unreadable table or a missing column is skipped: its cause is reported.
    """
    tables: dict[str, CheckedTable] = {}
    for schema in TABLES:
        frame = frames.get(schema.name)
        if frame is None:
            continue
        file = files[schema.name]
        table = CheckedTable(schema, file, _check_header(schema, frame, file, out))
        _check_columns(table, out)
        tables[schema.name] = table

    tx, customers, reports = tables.get("transactions"), tables.get("customers"), tables.get("reports")
    if tx is not None:
        _check_channel_fields(tx, out)
    if customers is not None:
        for table in (tx, reports):
            if table is not None:
                _check_customer_link(table, customers, out)
        if tx is not None:
            _check_counterparty_link(tx, customers, out)
    if reports is not None:
        _check_reports(reports, tx, out)
    return tables


def typed_tables(report: ValidationReport, tables: Mapping[str, CheckedTable]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The typed frames of a checked data set, or :class:`ContractViolationError` if it broke a rule.

    Contract column order, the documented dtypes, a fresh RangeIndex, transactions sorted by
    (timestamp, txn_id). A table absent from ``tables`` (reports not required) comes back empty.
    """
    if not report.ok:
        raise ContractViolationError(report)
    frames = []
    for schema in TABLES:
        table = tables.get(schema.name)
        if table is None:
            frames.append(empty_table(schema.name))
            continue
        columns = {c.name: _final(c, table.typed[c.name]) for c in schema.columns}
        columns.update({name: as_text(table.raw[name]) for name in extra_columns(schema, table.raw)})
        frame = pd.DataFrame(columns)
        if schema is TRANSACTIONS and len(frame):
            frame = frame.take(_time_order(frame)).reset_index(drop=True)
        frames.append(frame)
    return frames[0], frames[1], frames[2]


def _final(column: Column, values: pd.Series) -> pd.Series:
    """bool columns are nullable while checking; a required one is numpy bool once valid, a column
    that may be empty stays ``boolean`` so that unknown stays missing."""
    return values.astype(typed_dtype(column)) if column.kind == "bool" else values


def _time_order(tx: pd.DataFrame) -> np.ndarray:
    """Row order by (timestamp, txn_id); Arrow sorts millions of rows in well under a second."""
    instants = tx["timestamp"].to_numpy(dtype="datetime64[ns]").view("int64")
    keys = pa.table({"t": instants, "k": pa.array(tx["txn_id"].array)})
    return pc.sort_indices(keys, sort_keys=[("t", "ascending"), ("k", "ascending")]).to_numpy()




def empty_table(name: str) -> pd.DataFrame:
    """A typed table with no rows, e.g. the reports of a data set that has no labels."""
    schema = TABLES_BY_NAME[name]
    return pd.DataFrame({c.name: pd.Series([], dtype=typed_dtype(c)) for c in schema.columns})


def check_frames(
    customers: pd.DataFrame, transactions: pd.DataFrame, reports: pd.DataFrame | None, max_errors: int
) -> tuple[ValidationReport, dict[str, CheckedTable]]:
    """Check in-memory tables (named by table name in messages); the engine behind the public API."""
    out = ProblemCollector(max_errors)
    reports = reports if reports is not None else empty_table("reports")
    frames = {"customers": customers, "transactions": transactions, "reports": reports}
    tables = check_tables(frames, {t.name: t.name for t in TABLES}, out)
    return out.report(), tables


def validate_frames(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    reports: pd.DataFrame | None,
    *,
    max_errors: int = 50,
) -> ValidationReport:
    """Check in-memory tables against every rule of the contract.

    Parameters
    ----------
    customers, transactions, reports : DataFrame
        The tables as read: strings (an empty string or NA is an empty cell), or native types
        where a column's kind allows (bool, datetime, float, int). ``reports=None``: no reports.
    max_errors : int, default=50
        How many problems to keep for display; all of them are counted.

    Returns
    -------
    ValidationReport
        ``report.ok`` is True when every rule holds. Messages name the table (``transactions``)
        and the 1-based row in the frame's order.
    """
    return check_frames(customers, transactions, reports, max_errors)[0]


def to_typed(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    reports: pd.DataFrame | None,
    *,
    max_errors: int = 50,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Validate raw tables and return them typed, as ``(customers, transactions, reports)``.

    Parameters
    ----------
    customers, transactions, reports : DataFrame
        As for :func:`validate_frames`.
    max_errors : int, default=50
        Display cap of the report carried by the error.

    Returns
    -------
    tuple of DataFrame
        Contract column order, the documented dtypes, a fresh RangeIndex; transactions sorted by
        (timestamp, txn_id).

    Raises
    ------
    ContractViolationError
        If any rule is broken; ``exc.report`` has the details.
    """
    return typed_tables(*check_frames(customers, transactions, reports, max_errors))
