"""Every rule of the input data contract, checked column-wise with pandas and Arrow.

The validator reads raw tables (strings as read from CSV, or the native types Parquet or an
in-memory frame may carry), counts every problem, keeps a few of each kind for display, and
parses each column into its typed form on the way, so that a data set that passes is typed
without a second pass (:func:`to_typed`).

A problem is a :class:`Violation`: a file, a 1-based data row, a column, the offending value and
the rule it breaks, e.g.::

    The 'amount' column of transactions.csv must be a number > 0. Got '-5' instead at row 7 (line 8).

Problems are of two grades. An error breaks the contract: the data set is refused. A warning is
legal but suspect data (an unknown counterparty_id, an IP country without an IP address): it is
listed with the same detail and the data set is accepted, unless strict mode
(:meth:`ValidationReport.strict`) turns warnings into errors. Columns beyond the contract's are
kept and listed as notes.

No rule loops over rows in Python: each is a boolean mask over a whole column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.contract.countries import ISO_ALPHA2_CODES
from amlscore.contract.errors import AmlError
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
    "STRING_DTYPE",
    "ContractViolationError",
    "ProblemKind",
    "ValidationReport",
    "Violation",
    "empty_table",
    "to_typed",
    "typed_dtype",
    "validate_frames",
]

#: The dtype of every text and country column in a typed frame: Arrow-backed, missing = ``pd.NA``.
STRING_DTYPE = pd.StringDtype("pyarrow")
#: Calendar days (``date`` columns, and the day of a timestamp) are days in China Standard Time.
LOCAL_TIMEZONE = "Asia/Shanghai"
VALUE_CHARS = 60  # an offending value is shown up to this many characters

# datetime64[ns] spans 1677-09-21 to 2262-04-11; dates and timestamps must fit in it.
_NS_MIN = pd.Timestamp.min.ceil("D")
_NS_MAX = pd.Timestamp.max.floor("D")
_NS_RANGE = f"between {_NS_MIN:%Y-%m-%d} and {_NS_MAX:%Y-%m-%d}"

_DATE_RE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
# ISO 8601 date and time of day (seconds and fraction optional), 'T' or a space between them,
# then 'Z', an offset (+08:00, +0800, +08) or nothing (= UTC).
_TIMESTAMP_RE = _DATE_RE + r"[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?"
_INTEGER_RE = r"[+-]?[0-9]+"
_DECIMAL_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"


# --------------------------------------------------------------------------------------------
# Problems and the report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken rule at one place.

    Attributes
    ----------
    file : str
        The file, e.g. ``transactions.csv`` (the table name alone for in-memory frames).
    row : int or None
        1-based data row, in file order; ``None`` for a problem with the file or a whole column.
    column : str or None
        The column, or ``None`` for a problem with the file or a whole row.
    value : str or None
        The offending value as read (at most ~60 characters); ``None`` for an empty cell.
    rule : str
        The rule in words, as a predicate: ``must be one of in, out``.
    kind : str
        A stable code for the rule (``required``, ``invalid_value``, ``duplicate``...), for programs.
    note : str or None
        Context for this one problem, e.g. where the first copy of a duplicate is.
    severity : {"error", "warning"}
        An error breaks the contract; a warning is legal but suspect data.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    kind: str = "invalid_value"
    note: str | None = None
    severity: str = "error"

    @property
    def line(self) -> int | None:
        """The CSV line number (the header is line 1), or ``None`` when not a CSV row."""
        if self.row is None or not self.file.endswith(".csv"):
            return None
        return self.row + 1

    @property
    def location(self) -> str:
        """``row 7 (line 8)`` for CSV, ``row 7`` otherwise, ``''`` without a row."""
        if self.row is None:
            return ""
        return f"row {self.row}" + (f" (line {self.line})" if self.line is not None else "")

    @property
    def message(self) -> str:
        """The problem as one readable line."""
        if self.column is not None:
            text = f"The {self.column!r} column of {self.file} {self.rule}."
            if self.row is not None:
                got = "an empty cell" if self.value is None else repr(self.value)
                text += f" Got {got} instead at {self.location}."
        else:
            subject = self.location[0].upper() + self.location[1:] + " of " + self.file if self.row else self.file
            text = f"{subject} {self.rule}."
            if self.value is not None:
                text += f" Got {self.value!r} instead."
        return f"{text} {self.note}" if self.note else text

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class ProblemKind:
    """How many times one rule was broken in one column of one file."""

    file: str
    column: str | None
    rule: str
    kind: str
    count: int
    severity: str = "error"

    @property
    def label(self) -> str:
        where = f"{self.file} {self.column!r}" if self.column else self.file
        return f"{where}: {self.rule}"


@dataclass
class ValidationReport:
    """The outcome of validating a data set.

    Attributes
    ----------
    violations : list of Violation
        The errors kept for display, at most ``max_errors``, at least one of each kind when
        there is room, in file and row order.
    total : int
        How many errors were found in all (every one is counted, shown or not).
    kinds : list of ProblemKind
        Every kind of error found, with its count, in the order the rules were checked.
    warnings : list of Violation
        The warnings kept for display (legal but suspect data), picked like ``violations``.
    warning_total : int
        How many warnings were found in all.
    warning_kinds : list of ProblemKind
        Every kind of warning found, with its count.
    notes : list of str
        Remarks that are neither, e.g. columns beyond the contract's (kept, ignored by scoring).
    max_errors : int
        The display cap the report was made with (for errors and warnings each).
    """

    violations: list[Violation] = field(default_factory=list)
    total: int = 0
    kinds: list[ProblemKind] = field(default_factory=list)
    warnings: list[Violation] = field(default_factory=list)
    warning_total: int = 0
    warning_kinds: list[ProblemKind] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    max_errors: int = 50

    @property
    def ok(self) -> bool:
        """True when the data set meets the contract (warnings do not count)."""
        return self.total == 0

    @property
    def summary(self) -> str:
        """One line: how many errors, and how many are shown."""
        return _count_line(self.total, self.violations, self.kinds, "problem")

    @property
    def warning_summary(self) -> str:
        """One line: how many warnings, and how many are shown."""
        return _count_line(self.warning_total, self.warnings, self.warning_kinds, "warning")

    def lines(self) -> list[str]:
        """The shown errors, one message per line."""
        return [v.message for v in self.violations]

    def warning_lines(self) -> list[str]:
        """The shown warnings, one message per line."""
        return [v.message for v in self.warnings]

    def strict(self) -> ValidationReport:
        """This report with every warning counted as an error (strict mode)."""
        promoted = [replace(v, severity="error") for v in self.warnings]
        promoted_kinds = [replace(k, severity="error") for k in self.warning_kinds]
        groups: dict[tuple[str, str | None, str], list[Violation]] = {}
        for v in [*self.violations, *promoted]:
            groups.setdefault((v.file, v.column, v.rule), []).append(v)
        return ValidationReport(
            violations=_round_robin(list(groups.values()), self.max_errors),
            total=self.total + self.warning_total,
            kinds=[*self.kinds, *promoted_kinds],
            notes=list(self.notes),
            max_errors=self.max_errors,
        )

    def __str__(self) -> str:
        return "\n".join([*self.lines(), self.summary])


def _count_line(total: int, shown_items: list[Violation], kinds: list[ProblemKind], noun: str) -> str:
    if total == 0:
        return f"No {noun}s found."
    nouns = noun if total == 1 else f"{noun}s"
    shown = len(shown_items)
    if shown == total:
        return f"{total:,} {nouns} found."
    every_kind = len({(v.file, v.column, v.rule) for v in shown_items}) == len(kinds)
    kind_text = f"{len(kinds):,} kind" + ("s" if len(kinds) > 1 else "")
    tail = ", at least one of each kind" if every_kind and shown and len(kinds) > 1 else ""
    return f"{total:,} {nouns} of {kind_text} found; the first {shown:,} are shown{tail}."


class ContractViolationError(AmlError):
    """The data breaks the input data contract; ``report`` says where and how.

    Its message lists the shown problems and the count, so a command that loads data and does not
    catch it still tells the user everything. Exit code 1, like ``amlscore validate`` on bad data.
    """

    exit_code = 1

    def __init__(self, report: ValidationReport) -> None:
        self.report = report
        super().__init__("The data set breaks the data contract:\n" + str(report))


class _Grade:
    """Problems of one grade (errors or warnings): counted in full, the first of each kind kept."""

    def __init__(self) -> None:
        self.total = 0
        self.groups: list[list[Violation]] = []
        self.kinds: list[ProblemKind] = []

    def add_group(self, kept: list[Violation], count: int, max_errors: int) -> None:
        first = kept[0]
        self.total += count
        self.groups.append(kept[:max_errors])
        self.kinds.append(ProblemKind(first.file, first.column, first.rule, first.kind, count, first.severity))

    def pick(self, max_errors: int) -> list[Violation]:
        return _round_robin(self.groups, max_errors)


def _round_robin(groups: list[list[Violation]], max_errors: int) -> list[Violation]:
    """A round-robin pick over kinds (so each kind shows when there is room), then sorted by place."""
    picked: list[tuple[tuple[int, int, int], Violation]] = []
    depth = 0
    while len(picked) < max_errors and any(depth < len(g) for g in groups):
        for index, group in enumerate(groups):
            if depth < len(group) and len(picked) < max_errors:
                v = group[depth]
                picked.append(((_file_rank(v.file), v.row or 0, index), v))
        depth += 1
    picked.sort(key=lambda item: item[0])
    return [v for _, v in picked]


class ProblemCollector:
    """Counts every problem, keeps the first ``max_errors`` of each kind (rule x column x file),
    errors and warnings apart.

    Internal to :mod:`contract`: :mod:`amlscore.contract.load` feeds it file-level problems before the
    column rules run.
    """

    def __init__(self, max_errors: int) -> None:
        if not isinstance(max_errors, int) or isinstance(max_errors, bool) or max_errors < 0:
            raise ValueError(f"The 'max_errors' parameter must be an int >= 0. Got {max_errors!r} instead.")
        self.max_errors = max_errors
        self._errors = _Grade()
        self._warnings = _Grade()
        self.notes: list[str] = []

    @property
    def total(self) -> int:
        """Errors found so far."""
        return self._errors.total

    def add(
        self,
        file: str,
        column: str | None,
        where: np.ndarray,
        values: pd.Series,
        rule: str,
        kind: str,
        note: Callable[[int], str | None] | None = None,
        severity: str = "error",
    ) -> None:
        """Record one problem per True in ``where`` (positions in file order)."""
        positions = np.flatnonzero(where)
        if positions.size == 0:
            return
        kept = [
            Violation(file, int(p) + 1, column, display_value(values.iat[p]), rule, kind,
                      note(int(p)) if note else None, severity)
            for p in positions[: max(self.max_errors, 1)]  # one is always built: it names the kind
        ]
        self.add_group(kept, int(positions.size))

    def warn(
        self,
        file: str,
        column: str | None,
        where: np.ndarray,
        values: pd.Series,
        rule: str,
        kind: str,
        note: Callable[[int], str | None] | None = None,
    ) -> None:
        """Record one warning per True in ``where``."""
        self.add(file, column, where, values, rule, kind, note, severity="warning")

    def add_group(self, kept: list[Violation], count: int) -> None:
        """Record ``count`` problems of one kind; ``kept`` (at least one) are the first of them."""
        if count <= 0:
            return
        grade = self._warnings if kept[0].severity == "warning" else self._errors
        grade.add_group(kept, count, self.max_errors)

    def report(self) -> ValidationReport:
        """The report: errors and warnings each picked round-robin over kinds, sorted by place."""
        return ValidationReport(
            violations=self._errors.pick(self.max_errors),
            total=self._errors.total,
            kinds=list(self._errors.kinds),
            warnings=self._warnings.pick(self.max_errors),
            warning_total=self._warnings.total,
            warning_kinds=list(self._warnings.kinds),
            notes=list(self.notes),
            max_errors=self.max_errors,
        )


def _file_rank(file: str) -> int:
    stem = file.split(".", 1)[0]
    names = [t.name for t in TABLES]
    return names.index(stem) if stem in names else len(names)


def display_value(value: object) -> str | None:
    """A cell as shown in a message: text, cut to ~60 characters; None when empty."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    text = (value if isinstance(value, str) else str(value)).strip()  # as the rules saw it
    if not text:
        return None
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


# --------------------------------------------------------------------------------------------
# Column parsers: raw series in, typed series and empty-cell mask out, problems recorded
# --------------------------------------------------------------------------------------------


def _mask(values: pd.Series | np.ndarray) -> np.ndarray:
    """A plain numpy bool mask; NA counts as False."""
    if isinstance(values, np.ndarray):
        return values.astype(bool, copy=False)
    return values.to_numpy(dtype=bool, na_value=False)


def _np(flags: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """An Arrow boolean array as a numpy mask; null counts as False."""
    return np.asarray(pc.fill_null(flags, False).to_numpy(zero_copy_only=False), dtype=bool)


def _arrow_text(s: pd.Series) -> pa.ChunkedArray:
    """Any column as Arrow text, stripped, with empty cells as null.

    Whitespace around a value is never meaningful in this contract (identifiers, codes, dates),
    and a cell of only spaces is as empty as an empty one.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if not isinstance(s.array, pd.arrays.ArrowStringArray):
        s = s.astype(STRING_DTYPE)  # str() of non-strings; None/NaN -> NA
    text = pc.utf8_trim_whitespace(s.array.__arrow_array__())
    blank = pc.equal(pc.binary_length(text), 0)
    if not pc.any(blank).as_py():
        return text
    return pc.if_else(blank, pa.scalar(None, text.type), text)


def _series(text: pa.ChunkedArray) -> pd.Series:
    """Arrow text -> a pandas string column (Arrow-backed, missing = NA), without a copy."""
    return pd.Series(pd.arrays.ArrowStringArray(text.cast(pa.large_string()) if text.type != pa.large_string() else text))


def as_text(s: pd.Series) -> pd.Series:
    """Any column as pandas text (``STRING_DTYPE``), stripped, with empty cells as NA."""
    return _series(_arrow_text(s))


def _matches(text: pa.ChunkedArray, pattern: str) -> np.ndarray:
    """Whole-cell regex match (null -> False)."""
    return _np(pc.match_substring_regex(text, pattern=f"^(?:{pattern})$"))


@dataclass
class _ColumnCheck:
    """One column being checked: where its problems go and the raw values they quote."""

    file: str
    column: Column
    raw: pd.Series
    out: ProblemCollector

    def flag(
        self, where: np.ndarray, rule: str, kind: str = "invalid_value", note: Callable[[int], str | None] | None = None
    ) -> None:
        self.out.add(self.file, self.column.name, where, self.raw, rule, kind, note)


Parsed = tuple[pd.Series, np.ndarray]  # (typed values, NA where empty or invalid; empty-cell mask)


def _parse_text(check: _ColumnCheck) -> Parsed:
    text = _arrow_text(check.raw)
    return _series(text), _np(text.is_null())


def _codes(check: _ColumnCheck, allowed: tuple[str, ...], rule: str) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray]:
    """(text, position of each value in ``allowed`` or -1, empty mask); flags values not allowed."""
    text = _arrow_text(check.raw)
    codes = pc.fill_null(pc.index_in(text, value_set=pa.array(allowed, pa.large_string())), -1).to_numpy()
    empty = _np(text.is_null())
    check.flag(~empty & (codes < 0), rule)
    return text, np.asarray(codes), empty


def _parse_category(check: _ColumnCheck) -> Parsed:
    values = tuple(check.column.values or ())
    _, codes, empty = _codes(check, values, f"must be {check.column.value_rule()}")
    # Categories in contract order, so .cat.codes follow the contract; bad values become NaN.
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(values))), empty


def _parse_country(check: _ColumnCheck) -> Parsed:
    text, codes, empty = _codes(check, ISO_ALPHA2_CODES, "must be an ISO 3166-1 alpha-2 country code (two capitals, e.g. CN)")
    return _series(text).mask(~empty & (codes < 0)), empty


def _parse_bool(check: _ColumnCheck) -> Parsed:
    native = _native_bool(check.raw)
    if native is not None:
        return native, _mask(native.isna())
    _, codes, empty = _codes(check, ("false", "true"), "must be true or false (in lower case)")
    return pd.Series(pd.array(codes == 1, dtype="boolean")).mask(codes < 0), empty


def _native_bool(s: pd.Series) -> pd.Series | None:
    """A bool column from Parquet or an in-memory frame (numpy, nullable or Python bools), else None."""
    if s.dtype == bool or isinstance(s.dtype, pd.BooleanDtype):
        return s.astype("boolean")
    if isinstance(s.dtype, pd.ArrowDtype) and pa.types.is_boolean(s.dtype.pyarrow_dtype):
        return s.astype("boolean")
    if s.dtype == object:
        try:  # Python True/False with None: fine; anything else (e.g. "true" strings) goes the text way
            return pd.Series(pd.array(s, dtype="boolean"))
        except (TypeError, ValueError):
            return None
    return None


def _parse_number(check: _ColumnCheck) -> Parsed:
    """decimal -> float64 (NaN where empty); integer -> Int64. Bounds come from the schema."""
    col, s = check.column, check.raw
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        empty = _mask(s.isna())
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        ok = ~empty & np.isfinite(values)
    else:
        text = _arrow_text(s)
        empty = _np(text.is_null())
        ok = _matches(text, _INTEGER_RE if col.kind == "integer" else _DECIMAL_RE)
        values = _to_float(pc.if_else(pa.array(ok), text, pa.scalar(None, text.type)))
        ok &= np.isfinite(values)  # e.g. 1e999
    if col.kind == "integer":
        with np.errstate(invalid="ignore"):
            ok &= (np.floor(values) == values) & (np.abs(values) < 2**53)
        check.flag(~empty & ~ok, "must be a whole number")
    else:
        check.flag(~empty & ~ok, "must be a finite number")
    if col.min_value is not None:
        with np.errstate(invalid="ignore"):
            low = values < col.min_value if col.min_inclusive else values <= col.min_value
        check.flag(ok & low, f"must be {col.value_rule()}", kind="out_of_range")
        ok &= ~low
    if col.kind == "integer":
        whole = pd.array(np.where(ok, values, 0).astype("int64"), dtype="Int64")
        return pd.Series(whole).mask(~ok), empty
    return pd.Series(np.where(ok, values, np.nan)), empty


def _to_float(text: pa.ChunkedArray) -> np.ndarray:
    """Well-formed numbers (null elsewhere) as float64 with NaN for null."""
    try:
        numbers = pc.cast(text, pa.float64())
    except pa.ArrowInvalid:  # Arrow's parser refusing what the regex let through: let pandas decide
        return pd.to_numeric(_series(text), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    return np.asarray(pc.fill_null(numbers, np.nan).to_numpy(zero_copy_only=False), dtype="float64")


def _parse_date(check: _ColumnCheck) -> Parsed:
    """Naive calendar dates as datetime64[ns]."""
    s = check.raw
    if pd.api.types.is_datetime64_dtype(s.dtype):  # naive datetimes from Parquet or memory
        empty = _mask(s.isna())
        with_time = ~empty & _mask(s != s.dt.normalize())
        check.flag(with_time, "must be a date without a time of day")
        parsed = s.where(~with_time)
    else:
        text = _arrow_text(s)
        empty = _np(text.is_null())
        well_formed = _series(text).where(_matches(text, _DATE_RE))
        parsed = pd.to_datetime(well_formed, format="%Y-%m-%d", errors="coerce")
        check.flag(~empty & _mask(parsed.isna()), "must be a real date written YYYY-MM-DD")
    return _fit_ns(check, parsed, "a date"), empty


def _parse_timestamp(check: _ColumnCheck) -> Parsed:
    """Instants as datetime64[ns, UTC]; a timestamp without an offset is UTC."""
    s = check.raw
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        parsed, empty = s.dt.tz_convert("UTC"), _mask(s.isna())
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        parsed, empty = s.dt.tz_localize("UTC"), _mask(s.isna())
    else:
        text = _arrow_text(s)
        empty = _np(text.is_null())
        well_formed = pc.if_else(pa.array(_matches(text, _TIMESTAMP_RE)), text, pa.scalar(None, text.type))
        parsed = _instants(well_formed)
        check.flag(
            ~empty & _mask(parsed.isna()),
            "must be an ISO 8601 timestamp such as 2024-03-01T09:30:00+08:00 (no offset means UTC)",
        )
    return _fit_ns(check, parsed, "a timestamp"), empty


def _instants(text: pa.ChunkedArray) -> pd.Series:
    """Well-formed ISO 8601 text (null elsewhere) as UTC instants, NaT where not a real instant."""
    try:  # fast path: every timestamp carries Z or an offset, and Arrow accepts them all
        return pc.cast(text, pa.timestamp("ns", tz="UTC")).to_pandas()
    except pa.ArrowInvalid:  # some lack an offset, or are not real: pandas parses each on its own
        return pd.to_datetime(_series(text), format="ISO8601", utc=True, errors="coerce")


def _fit_ns(check: _ColumnCheck, parsed: pd.Series, what: str) -> pd.Series:
    """Flag instants outside the datetime64[ns] range (e.g. 0001-01-01), then convert to ns."""
    tz = getattr(parsed.dtype, "tz", None)
    low, high = (_NS_MIN.tz_localize(tz), _NS_MAX.tz_localize(tz)) if tz else (_NS_MIN, _NS_MAX)
    outside = _mask(parsed < low) | _mask(parsed > high)
    check.flag(outside, f"must be {what} {_NS_RANGE}", kind="out_of_range")
    return parsed.where(~outside).astype("datetime64[ns, UTC]" if tz else "datetime64[ns]")


_PARSERS: dict[str, Callable[[_ColumnCheck], Parsed]] = {
    "text": _parse_text,
    "category": _parse_category,
    "country": _parse_country,
    "bool": _parse_bool,
    "decimal": _parse_number,
    "integer": _parse_number,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}


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
        check = _ColumnCheck(table.file, col, table.raw[col.name], out)
        typed, empty = _PARSERS[col.kind](check)
        if not col.nullable:
            check.flag(empty, "must not be empty", kind="required")
        if col.unique:
            _check_unique(check, typed)
        table.typed[col.name] = typed.rename(col.name)
        table.empty[col.name] = empty


def _check_unique(check: _ColumnCheck, values: pd.Series) -> None:
    if not _has_repeats(_arrow(values)):
        return  # the usual case, settled by one Arrow sort
    repeat = _mask(values.notna()) & _mask(values.duplicated(keep="first"))
    firsts = ~_mask(values.duplicated(keep="first")) & _mask(values.duplicated(keep=False))
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
    return _np(pc.is_in(_arrow(text), value_set=value_set))


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
    known = _mask(channel.notna())
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
    unknown = _mask(ids.notna()) & ~_is_in(ids, known)
    rule = (f"should name a customer in {customers.file} when given "
            "(one that names no customer is treated as a counterparty outside the bank)")
    out.warn(tx.file, "counterparty_id", unknown, tx.raw["counterparty_id"], rule, "unknown_counterparty")


def _check_customer_link(table: CheckedTable, customers: CheckedTable, out: ProblemCollector) -> None:
    """Every customer_id names a customer of customers."""
    ids, known = table.typed.get("customer_id"), customers.typed.get("customer_id")
    if ids is None or known is None:
        return
    unknown = _mask(ids.notna()) & ~_is_in(ids, known)
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
        reversed_ = _mask(start > end)  # NaT compares False
        out.add(rep.file, "period_start", reversed_, rep.raw["period_start"], "must be on or before period_end",
                "period_order", note=lambda p: f"period_end is {end.iat[p]:%Y-%m-%d}.")
    if end is not None:
        activity = activity.mask(~has_txn, end)
        source = source.mask(~has_txn, "its period_end")

    report_date = rep.typed.get("report_date")
    if report_date is not None:
        early = _mask(report_date < activity)
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
    other = linked & _mask(owner.notna()) & _mask(customer.notna()) & _mask(owner != customer)
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


def typed_dtype(column: Column) -> object:
    """The dtype a typed frame gives ``column`` (see docs/data-contract.md)."""
    return {
        "text": STRING_DTYPE,
        "country": STRING_DTYPE,
        "category": pd.CategoricalDtype(categories=list(column.values or ())),
        "bool": pd.BooleanDtype() if column.nullable else np.dtype(bool),
        "date": np.dtype("datetime64[ns]"),
        "timestamp": pd.DatetimeTZDtype("ns", "UTC"),
        "decimal": np.dtype("float64"),
        "integer": pd.Int64Dtype(),
    }[column.kind]


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
