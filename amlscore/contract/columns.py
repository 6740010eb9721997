"""Column parsers of the data contract: a raw column in, its typed values and empty-cell mask out.

Each parser reads text (as from CSV) or the native types Parquet or an in-memory frame may carry,
records a problem for every cell that breaks its column's rule, and returns the typed column, so a
data set that passes is typed without a second pass. No parser loops over rows in Python: each
rule is a boolean mask over the whole column, computed with Arrow where it is faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from amlscore.contract.countries import ISO_ALPHA2_CODES
from amlscore.contract.problems import ProblemCollector
from amlscore.contract.schema import Column

__all__ = ["LOCAL_TIMEZONE", "PARSERS", "STRING_DTYPE", "ColumnCheck", "Parsed", "arrow_mask", "as_mask", "as_text",
           "typed_dtype"]

#: The dtype of every text and country column in a typed frame: Arrow-backed, missing = ``pd.NA``.
STRING_DTYPE = pd.StringDtype("pyarrow")
#: Calendar days (``date`` columns, and the day of a timestamp) are days in China Standard Time.
LOCAL_TIMEZONE = "Asia/Shanghai"

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


def as_mask(values: pd.Series | np.ndarray) -> np.ndarray:
    """A plain numpy bool mask; NA counts as False."""
    if isinstance(values, np.ndarray):
        return values.astype(bool, copy=False)
    return values.to_numpy(dtype=bool, na_value=False)


def arrow_mask(flags: pa.ChunkedArray | pa.Array) -> np.ndarray:
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
    return arrow_mask(pc.match_substring_regex(text, pattern=f"^(?:{pattern})$"))


@dataclass
class ColumnCheck:
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


def _parse_text(check: ColumnCheck) -> Parsed:
    text = _arrow_text(check.raw)
    return _series(text), arrow_mask(text.is_null())


def _codes(check: ColumnCheck, allowed: tuple[str, ...], rule: str) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray]:
    """(text, position of each value in ``allowed`` or -1, empty mask); flags values not allowed."""
    text = _arrow_text(check.raw)
    codes = pc.fill_null(pc.index_in(text, value_set=pa.array(allowed, pa.large_string())), -1).to_numpy()
    empty = arrow_mask(text.is_null())
    check.flag(~empty & (codes < 0), rule)
    return text, np.asarray(codes), empty


def _parse_category(check: ColumnCheck) -> Parsed:
    values = tuple(check.column.values or ())
    _, codes, empty = _codes(check, values, f"must be {check.column.value_rule()}")
    # Categories in contract order, so .cat.codes follow the contract; bad values become NaN.
    return pd.Series(pd.Categorical.from_codes(codes, categories=list(values))), empty


def _parse_country(check: ColumnCheck) -> Parsed:
    text, codes, empty = _codes(check, ISO_ALPHA2_CODES, "must be an ISO 3166-1 alpha-2 country code (two capitals, e.g. CN)")
    return _series(text).mask(~empty & (codes < 0)), empty


def _parse_bool(check: ColumnCheck) -> Parsed:
    native = _native_bool(check.raw)
    if native is not None:
        return native, as_mask(native.isna())
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


def _parse_number(check: ColumnCheck) -> Parsed:
    """decimal -> float64 (NaN where empty); integer -> Int64. Bounds come from the schema."""
    col, s = check.column, check.raw
    if pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype):
        empty = as_mask(s.isna())
        values = s.to_numpy(dtype="float64", na_value=np.nan)
        ok = ~empty & np.isfinite(values)
    else:
        text = _arrow_text(s)
        empty = arrow_mask(text.is_null())
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


def _parse_date(check: ColumnCheck) -> Parsed:
    """Naive calendar dates as datetime64[ns]."""
    s = check.raw
    if pd.api.types.is_datetime64_dtype(s.dtype):  # naive datetimes from Parquet or memory
        empty = as_mask(s.isna())
        with_time = ~empty & as_mask(s != s.dt.normalize())
        check.flag(with_time, "must be a date without a time of day")
        parsed = s.where(~with_time)
    else:
        text = _arrow_text(s)
        empty = arrow_mask(text.is_null())
        well_formed = _series(text).where(_matches(text, _DATE_RE))
        parsed = pd.to_datetime(well_formed, format="%Y-%m-%d", errors="coerce")
        check.flag(~empty & as_mask(parsed.isna()), "must be a real date written YYYY-MM-DD")
    return _fit_ns(check, parsed, "a date"), empty


def _parse_timestamp(check: ColumnCheck) -> Parsed:
    """Instants as datetime64[ns, UTC]; a timestamp without an offset is UTC."""
    s = check.raw
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        parsed, empty = s.dt.tz_convert("UTC"), as_mask(s.isna())
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        parsed, empty = s.dt.tz_localize("UTC"), as_mask(s.isna())
    else:
        text = _arrow_text(s)
        empty = arrow_mask(text.is_null())
        well_formed = pc.if_else(pa.array(_matches(text, _TIMESTAMP_RE)), text, pa.scalar(None, text.type))
        parsed = _instants(well_formed)
        check.flag(
            ~empty & as_mask(parsed.isna()),
            "must be an ISO 8601 timestamp such as 2024-03-01T09:30:00+08:00 (no offset means UTC)",
        )
    return _fit_ns(check, parsed, "a timestamp"), empty


def _instants(text: pa.ChunkedArray) -> pd.Series:
    """Well-formed ISO 8601 text (null elsewhere) as UTC instants, NaT where not a real instant."""
    try:  # fast path: every timestamp carries Z or an offset, and Arrow accepts them all
        return pc.cast(text, pa.timestamp("ns", tz="UTC")).to_pandas()
    except pa.ArrowInvalid:  # some lack an offset, or are not real: pandas parses each on its own
        return pd.to_datetime(_series(text), format="ISO8601", utc=True, errors="coerce")


def _fit_ns(check: ColumnCheck, parsed: pd.Series, what: str) -> pd.Series:
    """Flag instants outside the datetime64[ns] range (e.g. 0001-01-01), then convert to ns."""
    tz = getattr(parsed.dtype, "tz", None)
    low, high = (_NS_MIN.tz_localize(tz), _NS_MAX.tz_localize(tz)) if tz else (_NS_MIN, _NS_MAX)
    outside = as_mask(parsed < low) | as_mask(parsed > high)
    check.flag(outside, f"must be {what} {_NS_RANGE}", kind="out_of_range")
    return parsed.where(~outside).astype("datetime64[ns, UTC]" if tz else "datetime64[ns]")


PARSERS: dict[str, Callable[[ColumnCheck], Parsed]] = {
    "text": _parse_text,
    "category": _parse_category,
    "country": _parse_country,
    "bool": _parse_bool,
    "decimal": _parse_number,
    "integer": _parse_number,
    "date": _parse_date,
    "timestamp": _parse_timestamp,
}


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
