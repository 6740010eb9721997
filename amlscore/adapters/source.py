"""Reading a public format's CSV in blocks, with errors that name file, line and column.

The files are large (AMLworld HI-Small: 5 million rows), so they are read with pyarrow's streaming
CSV reader in blocks of text columns and parsed with vectorised compute functions. A value that
does not parse is found by its row in the block and reported with its line in the file (the
formats hold one record per line: no quoted line breaks).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from amlscore.adapters.errors import SourceFormatError

BLOCK_BYTES = 32 << 20
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


@dataclass(frozen=True)
class Block:
    """Rows of one block as text columns; ``first_line`` is the file line of its first row."""

    path: Path
    first_line: int
    columns: dict[str, pa.Array]
    labels: Mapping[str, str]  # internal name -> the column's name as the user sees it

    def __len__(self) -> int:
        return len(next(iter(self.columns.values())))

    def fail(self, row: int, name: str, what: str, expected: str, value: object) -> SourceFormatError:
        return SourceFormatError(self.path, what, line=self.first_line + row, column=self.labels.get(name, name),
                                 expected=expected, got=None if value is None else str(value))


def check_header(path: Path, expected: Sequence[str]) -> None:
    """The first line must be exactly ``expected`` (names and order)."""
    if not path.is_file():
        raise SourceFormatError(path, "no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if header is None:
        raise SourceFormatError(path, "the file is empty", line=1, expected="a header line")
    got = [h.strip() for h in header]
    if got != list(expected):
        at = next((i for i, (a, b) in enumerate(zip(got, expected)) if a != b), min(len(got), len(expected)))
        raise SourceFormatError(path, f"wrong header (column {at + 1} differs)", line=1,
                                expected=",".join(expected), got=",".join(got))


def header_of(path: Path) -> list[str]:
    """The names of the first line."""
    if not path.is_file():
        raise SourceFormatError(path, "no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return [h.strip() for h in next(csv.reader(handle), [])]


def blocks(path: Path, names: Sequence[str], labels: Mapping[str, str] | None = None,
           block_bytes: int = BLOCK_BYTES) -> Iterator[Block]:
    """The rows after the header, block by block, every column as text under ``names``."""
    read = pacsv.ReadOptions(column_names=list(names), skip_rows=1, block_size=block_bytes)
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False)
    parse = pacsv.ParseOptions(newlines_in_values=False)
    line = 2
    try:
        reader = pacsv.open_csv(str(path), read_options=read, convert_options=convert, parse_options=parse)
        for batch in reader:
            if batch.num_rows:
                yield Block(path, line, {n: batch.column(i) for i, n in enumerate(names)}, labels or {})
                line += batch.num_rows
    except pa.ArrowInvalid:
        raise _shape_error(path, len(names), line) from None


def _shape_error(path: Path, width: int, from_line: int) -> SourceFormatError:
    """The first line at or after ``from_line`` whose record does not have ``width`` fields."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        for number, record in enumerate(csv.reader(handle), start=1):
            if number >= from_line and len(record) != width:
                return SourceFormatError(path, "wrong number of fields", line=number, expected=f"{width} fields",
                                         got=f"{len(record)} fields")
    return SourceFormatError(path, f"not a CSV file of {width} columns after line {from_line}")


def numbers(block: Block, name: str) -> np.ndarray:
    """A column as float64; a cell that is no number is an error."""
    col = block.columns[name]
    try:
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        bad = np.flatnonzero(~pc.match_substring_regex(col, _NUMBER).to_numpy(zero_copy_only=False))
        row = int(bad[0]) if len(bad) else 0
        raise block.fail(row, name, "not a number", "a decimal number", col[row].as_py()) from None


def times(block: Block, name: str, fmt: str, shown: str) -> np.ndarray:
    """A column parsed with strptime ``fmt`` as datetime64[s] (naive); ``shown`` is the format for people."""
    col = block.columns[name]
    parsed = pc.strptime(col, format=fmt, unit="s", error_is_null=True)
    missing = parsed.is_null().to_numpy(zero_copy_only=False)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise block.fail(row, name, "unparsable time", shown, col[row].as_py())
    return parsed.to_numpy(zero_copy_only=False).astype("datetime64[s]")


def lookup(block: Block, name: str, table: Sequence[str], what: str) -> np.ndarray:
    """Position of each cell in ``table``; a value outside it is an error naming the allowed ones."""
    col = block.columns[name]
    idx = pc.index_in(col, value_set=pa.array(list(table), pa.string()))
    missing = idx.is_null().to_numpy(zero_copy_only=False)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise block.fail(row, name, f"unknown {what}", "one of " + ", ".join(table), col[row].as_py())
    return idx.to_numpy(zero_copy_only=False).astype(np.int64)


def flags(block: Block, name: str) -> np.ndarray:
    """A 0/1 column as bool."""
    code = lookup(block, name, ("0", "1"), "label")
    return code == 1


def pick(table: Sequence[str], codes: np.ndarray) -> pa.Array:
    """``table[codes]`` as a string array (nulls where the table holds None)."""
    dictionary = pa.array(list(table), pa.string())
    return dictionary.take(pa.array(codes))


def join(*parts: pa.Array | str, n: int) -> pa.Array:
    """Element-wise concatenation of string arrays and constants."""
    arrays = [pa.repeat(pa.scalar(p, pa.string()), n) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*arrays, "")
