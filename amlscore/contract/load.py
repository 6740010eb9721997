"""Reading and writing contract data sets: a folder with customers, transactions and reports.

Each table is ``<table>.parquet`` or ``<table>.csv`` (not both). :func:`load_dataset` reads the
files, checks every rule (:mod:`amlscore.contract.validate`) and returns a :class:`Dataset` of typed
frames, or raises :class:`~amlscore.contract.problems.ContractViolationError` listing the problems.
:func:`write_dataset` writes a data set atomically, in a form :func:`load_dataset` reads back
unchanged.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from amlscore.contract.columns import STRING_DTYPE
from amlscore.contract.errors import AmlError
from amlscore.contract.problems import ProblemCollector, ValidationReport, Violation, display_value
from amlscore.contract.schema import (
    CONTRACT_VERSION,
    CUSTOMERS,
    FILE_SUFFIXES,
    GROUND_TRUTH_FILE,
    REPORTS,
    TABLES,
    Column,
    TableSchema,
)
from amlscore.contract.validate import CheckedTable, check_frames, check_tables, extra_columns, typed_tables

__all__ = [
    "DataFolderError",
    "Dataset",
    "MARKER_FILE",
    "dataset_from_frames",
    "find_table_files",
    "fingerprint_files",
    "fingerprint_frames",
    "load_dataset",
    "validate_folder",
    "write_customers",
    "write_dataset",
]

#: Written by :func:`write_dataset` into every folder it creates; lets it overwrite its own output.
MARKER_FILE = ".amlscore-dataset.json"
_CHUNK = 1 << 20
_STRING_TYPES = {pa.string(): STRING_DTYPE, pa.large_string(): STRING_DTYPE, pa.string_view(): STRING_DTYPE}


class DataFolderError(AmlError):
    """The data folder or one of its table files is missing, doubled or cannot be replaced (exit 2)."""


@dataclass(frozen=True, eq=False)  # eq=False: frames have no truth value; a Dataset is equal to itself
class Dataset:
    """A data set that meets the contract, as typed frames.

    Attributes
    ----------
    customers, transactions, reports : DataFrame
        Typed frames (dtypes in docs/data-contract.md): contract column order, RangeIndex,
        transactions sorted by (timestamp, txn_id). ``reports`` may have no rows.
    source : Path or None
        The folder it was read from; None for in-memory data.
    fingerprint : str
        sha256 hex identifying the data (see :func:`fingerprint_files`). For in-memory data it is
        computed on first use (serialising millions of rows only to hash them is slow, and writing
        the data set does not need it).
    warnings : tuple of str
        The validation's warnings (legal but suspect data) and notes (columns beyond the
        contract's), one message each, as shown.
    report : ValidationReport or None
        The full validation report (counts of every warning kind); None when not validated here.
    """

    customers: pd.DataFrame
    transactions: pd.DataFrame
    reports: pd.DataFrame
    source: Path | None
    known_fingerprint: str | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()
    report: ValidationReport | None = field(default=None, repr=False)

    @property
    def fingerprint(self) -> str:
        if self.known_fingerprint is None:
            object.__setattr__(self, "known_fingerprint",
                               fingerprint_frames(self.customers, self.transactions, self.reports))
        return self.known_fingerprint  # type: ignore[return-value]

    def tables(self) -> dict[str, pd.DataFrame]:
        """The three frames by table name."""
        return {"customers": self.customers, "transactions": self.transactions, "reports": self.reports}


# --------------------------------------------------------------------------------------------
# Finding and reading files
# --------------------------------------------------------------------------------------------


def find_table_files(folder: str | Path, *, require_reports: bool = True) -> dict[str, Path | None]:
    """Locate each table's file in ``folder``.

    Returns
    -------
    dict
        Table name -> path; reports -> None when absent and ``require_reports`` is False.

    Raises
    ------
    DataFolderError
        If the folder is missing, a table has no file, or has both a .csv and a .parquet file.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataFolderError(f"The data folder {folder} does not exist.")
    if not folder.is_dir():
        raise DataFolderError(f"The data folder {folder} is not a folder.")
    found: dict[str, Path | None] = {}
    missing: list[str] = []
    for schema in TABLES:
        paths = [folder / f"{schema.name}{suffix}" for suffix in FILE_SUFFIXES if (folder / f"{schema.name}{suffix}").is_file()]
        if len(paths) > 1:
            raise DataFolderError(
                f"The data folder {folder} has both {paths[0].name} and {paths[1].name}; keep exactly one file per table."
            )
        if paths:
            found[schema.name] = paths[0]
        elif schema is REPORTS and not require_reports:
            found[schema.name] = None
        else:
            missing.append(" or ".join(f"{schema.name}{s}" for s in FILE_SUFFIXES))
    if missing:
        raise DataFolderError(f"The data folder {folder} has no {'; no '.join(missing)}.")
    return found


def _file_problem(out: ProblemCollector, path: Path, rule: str, note: str) -> None:
    """Record that a whole file cannot be read (its table is then skipped)."""
    out.add_group([Violation(path.name, None, None, None, rule, "unreadable_file", note)], 1)


def _read_table(path: Path, out: ProblemCollector) -> pd.DataFrame | None:
    """The raw frame of one table file, or None (with the problem recorded) when unreadable."""
    if path.suffix == ".csv":
        return _read_csv(path, out)
    try:
        table = pq.read_table(path)
        # date32 -> datetime64 (not Python date objects); strings -> Arrow-backed NA strings.
        return table.to_pandas(date_as_object=False, types_mapper=_STRING_TYPES.get)
    except (pa.ArrowException, OSError, ValueError) as exc:
        _file_problem(out, path, "must be a readable Parquet file", f"Reading it failed: {exc}")
        return None


def _read_csv(path: Path, out: ProblemCollector) -> pd.DataFrame | None:
    """Every cell as text: an empty cell is '' (later NA), and a literal 'NA' stays the text 'NA'."""
    try:
        header = _csv_header(path)
    except (UnicodeDecodeError, csv.Error, OSError) as exc:
        _file_problem(out, path, "must be a readable UTF-8 CSV file with a header line", f"Reading its header failed: {exc}")
        return None
    if header is None:
        _file_problem(out, path, "must start with a header line naming its columns", "The file is empty.")
        return None
    try:
        table = pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.large_string() for name in header},  # what pandas keeps: no cast
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        _report_bad_csv(path, len(header), exc, out)
        return None
    return table.to_pandas(types_mapper=_STRING_TYPES.get)


def _csv_header(path: Path) -> list[str] | None:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), None)


def _report_bad_csv(path: Path, width: int, exc: Exception, out: ProblemCollector) -> None:
    """Arrow could not parse the file: find the rows with the wrong number of cells, if that is why.

    A Python scan, run only for a file that is already broken, to name its bad rows.
    """
    kept: list[Violation] = []
    count = 0
    rule = f"must have as many cells as the header ({width})"
    try:
        for row, cells in _csv_records(path):
            if len(cells) != width:
                count += 1
                if len(kept) < max(out.max_errors, 1):
                    text = display_value(",".join(cells))
                    kept.append(Violation(path.name, row, None, text, rule, "malformed_row", f"That row has {len(cells)}."))
    except (UnicodeDecodeError, csv.Error):
        count = 0
    if count:
        out.add_group(kept, count)
    else:
        _file_problem(out, path, "must be a readable UTF-8 CSV file", f"Reading it failed: {exc}")


def _csv_records(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based row, cells) of each data record."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        yield from enumerate(reader, start=1)


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------


def fingerprint_files(files: Mapping[str, Path | None]) -> str:
    """sha256 hex identifying a data set's contract files.

    It is the sha256 of one line ``<file name> <sha256 hex of its bytes>\\n`` per table file,
    in table-name order (customers, reports, transactions); an absent reports file has no line.
    So it changes when any byte changes, and ``sha256sum`` can recompute each part.
    """
    lines = []
    for name in sorted(files):
        path = files[name]
        if path is not None:
            with path.open("rb") as handle:
                lines.append(f"{path.name} {_sha256_stream(handle)}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def _sha256_stream(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


class _HashingSink(io.RawIOBase):
    """A write-only stream that only hashes what it is given (so nothing big sits in memory)."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self.digest.update(data)
        return len(data)


def fingerprint_frames(customers: pd.DataFrame, transactions: pd.DataFrame, reports: pd.DataFrame) -> str:
    """The fingerprint of typed frames: that of the CSV files :func:`write_dataset` would write.

    So ``dataset_from_frames(...).fingerprint`` equals the fingerprint of the same data written
    with ``fmt="csv"`` and loaded again.
    """
    lines = []
    for schema, frame in sorted(zip(TABLES, (customers, transactions, reports)), key=lambda pair: pair[0].name):
        sink = _HashingSink()
        pacsv.write_csv(_csv_table(schema, frame), pa.PythonFile(sink, mode="w"))
        lines.append(f"{schema.name}.csv {sink.digest.hexdigest()}\n")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Loading and validating
# --------------------------------------------------------------------------------------------


def _check_folder(
    folder: str | Path, require_reports: bool, max_errors: int
) -> tuple[ValidationReport, dict[str, CheckedTable], dict[str, Path | None]]:
    """Find, read and check the files; the engine behind validate_folder and load_dataset."""
    files = find_table_files(folder, require_reports=require_reports)
    out = ProblemCollector(max_errors)
    frames = {name: (_read_table(path, out) if path is not None else None) for name, path in files.items()}
    names = {name: (path.name if path is not None else f"{name}.csv") for name, path in files.items()}
    tables = check_tables(frames, names, out)
    return out.report(), tables, files


def validate_folder(folder: str | Path, *, require_reports: bool = True, max_errors: int = 50) -> ValidationReport:
    """Check a data folder against every rule of the contract, without raising for bad data.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``customers``, ``transactions`` and ``reports`` as .csv or .parquet.
    require_reports : bool, default=True
        If False, a folder without a reports file is accepted (data to score, without labels).
    max_errors : int, default=50
        How many problems to keep for display; all of them are counted.

    Returns
    -------
    ValidationReport

    Raises
    ------
    DataFolderError
        If the folder or a required file is missing, or a table has both a .csv and a .parquet file.
    """
    return _check_folder(folder, require_reports, max_errors)[0]


def _remarks(report: ValidationReport) -> tuple[str, ...]:
    return (*report.warning_lines(), *report.notes)


def load_dataset(
    folder: str | Path, *, require_reports: bool = True, max_errors: int = 50, strict: bool = False
) -> Dataset:
    """Read, check and type a data folder.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``customers``, ``transactions`` and ``reports`` as .csv or .parquet.
    require_reports : bool, default=True
        If False, a missing reports file means an empty reports table.
    max_errors : int, default=50
        How many problems the error keeps for display; all of them are counted.
    strict : bool, default=False
        Count warnings (legal but suspect data) as errors.

    Returns
    -------
    Dataset
        Typed frames, the folder, the fingerprint of the files' bytes, and the warnings.

    Raises
    ------
    DataFolderError
        If the folder or a required file is missing, or a table has both a .csv and a .parquet file.
    ContractViolationError
        If the data breaks any rule (or, when ``strict``, raises a warning); ``exc.report`` lists where and how.
    """
    report, tables, files = _check_folder(folder, require_reports, max_errors)
    if strict:
        report = report.strict()
    customers, transactions, reports = typed_tables(report, tables)
    return Dataset(customers, transactions, reports, Path(folder), fingerprint_files(files), _remarks(report), report)


def dataset_from_frames(
    customers: pd.DataFrame,
    transactions: pd.DataFrame,
    reports: pd.DataFrame | None = None,
    *,
    max_errors: int = 50,
) -> Dataset:
    """Check and type in-memory tables (strings as read, or native types), e.g. a synthetic bank.

    Parameters
    ----------
    customers, transactions, reports : DataFrame
        The three tables; ``reports=None`` means no reports.
    max_errors : int, default=50
        How many problems the error keeps for display.

    Returns
    -------
    Dataset
        ``source`` is None; ``fingerprint`` is that of the canonical CSV serialisation
        (:func:`fingerprint_frames`).

    Raises
    ------
    ContractViolationError
        If the data breaks any rule.
    """
    report, tables = check_frames(customers, transactions, reports, max_errors)
    typed = typed_tables(report, tables)
    return Dataset(*typed, source=None, warnings=_remarks(report), report=report)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

Frames = Dataset | Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame]


def write_dataset(
    dataset_or_frames: Frames,
    folder: str | Path,
    *,
    fmt: Literal["parquet", "csv"] = "parquet",
    extra_files: Mapping[str, pd.DataFrame] | None = None,
) -> Path:
    """Write a data set to ``folder`` atomically, in a form :func:`load_dataset` reads back unchanged.

    Everything is written into a temporary sibling folder which then takes the target's place, so
    ``folder`` is never left half written.

    Parameters
    ----------
    dataset_or_frames : Dataset, mapping or sequence of DataFrame
        A :class:`Dataset`, or the three tables (``{"customers": ..., ...}`` or
        ``(customers, transactions, reports)``), which are checked first: nothing that breaks
        the contract is written.
    folder : str or Path
        The target. It may be absent, empty, or a data set written before (it is replaced).
    fmt : {"parquet", "csv"}, default="parquet"
    extra_files : mapping of str to DataFrame, optional
        Other files to write beside the tables, by file name (e.g. ``ground_truth.csv``); the
        suffix .csv or .parquet chooses the format (none: ``fmt``).

    Returns
    -------
    Path
        The folder written.

    Raises
    ------
    DataFolderError
        If ``folder`` is a file, or a non-empty folder that is not an amlscore data set.
    ContractViolationError
        If frames are given and break the contract.
    """
    if fmt not in ("parquet", "csv"):
        raise ValueError(f"The 'fmt' parameter of write_dataset must be 'parquet' or 'csv'. Got {fmt!r} instead.")
    target = Path(folder)
    extras = _extra_file_names(extra_files or {}, fmt)
    _ensure_replaceable(target)
    if isinstance(dataset_or_frames, Dataset):
        dataset = dataset_or_frames
    else:
        dataset = dataset_from_frames(*_three_frames(dataset_or_frames))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.writing-", dir=target.parent))
    try:
        written = {}
        for schema, frame in zip(TABLES, (dataset.customers, dataset.transactions, dataset.reports)):
            path = staging / f"{schema.name}.{fmt}"
            _write_table(schema, frame, path)
            written[schema.name] = path
        for name, frame in extras.items():
            _write_extra(frame, staging / name)
        _write_marker(staging, fmt, fingerprint_files(written), sorted(extras))
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def write_customers(folder: str | Path, customers: pd.DataFrame) -> Path:
    """Replace the customers file of a data folder (its format kept) by a typed customers frame, atomically.

    What ``amlscore customers upsert`` and the service's customers route write after adding or changing
    customers; the transactions and reports files are not touched. The folder's marker records the
    fingerprint of its files as written, so it is written again too.
    """
    folder = Path(folder)
    files = find_table_files(folder, require_reports=False)
    path = files["customers"]
    assert path is not None  # find_table_files raises when it is missing
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        _write_table(CUSTOMERS, customers, tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    marker = folder / MARKER_FILE
    if marker.exists():
        doc = json.loads(marker.read_text(encoding="utf-8"))
        doc["fingerprint"] = fingerprint_files(find_table_files(folder, require_reports=False))
        marker.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return path


def _three_frames(
    frames: Mapping[str, pd.DataFrame] | Sequence[pd.DataFrame],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    if isinstance(frames, Mapping):
        unknown = set(frames) - {t.name for t in TABLES}
        if unknown or "customers" not in frames or "transactions" not in frames:
            raise ValueError(
                "The 'dataset_or_frames' parameter of write_dataset must map customers, transactions and optionally "
                f"reports to frames. Got keys {sorted(frames)!r} instead."
            )
        return frames["customers"], frames["transactions"], frames.get("reports")
    if len(frames) != 3:
        raise ValueError(f"The 'dataset_or_frames' parameter of write_dataset must hold 3 frames. Got {len(frames)} instead.")
    return frames[0], frames[1], frames[2]


def _extra_file_names(extra_files: Mapping[str, pd.DataFrame], fmt: str) -> dict[str, pd.DataFrame]:
    """Extra files by final file name; names are plain, not hidden and not a contract table's."""
    tables = {t.name for t in TABLES}
    named: dict[str, pd.DataFrame] = {}
    for name, frame in extra_files.items():
        final = name if Path(name).suffix in FILE_SUFFIXES else f"{name}.{fmt}"
        if Path(final).name != final or final.startswith(".") or Path(final).stem in tables:
            raise ValueError(
                "The 'extra_files' parameter of write_dataset must name plain files beside the tables "
                f"(not customers, transactions or reports). Got {name!r} instead."
            )
        named[final] = frame
    return named


def _looks_like_dataset(folder: Path) -> bool:
    """A folder this module wrote (it has the marker), or one holding only table and ground-truth files."""
    entries = [p.name for p in folder.iterdir()]
    if MARKER_FILE in entries:
        return True
    allowed = {f"{t.name}{s}" for t in TABLES for s in FILE_SUFFIXES} | {GROUND_TRUTH_FILE}
    return bool(entries) and all(name in allowed for name in entries)


def _ensure_replaceable(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise DataFolderError(f"Cannot write a data set to {target}: it is a file, not a folder.")
    if target.is_dir() and any(target.iterdir()) and not _looks_like_dataset(target):
        raise DataFolderError(
            f"Cannot write a data set to {target}: the folder is not empty and is not an amlscore data set. "
            "Choose another folder or empty this one."
        )


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename the finished folder onto the target; an old data set is renamed away first, then removed."""
    _ensure_replaceable(target)  # again: something may have appeared while writing
    if target.is_dir() and any(target.iterdir()):
        old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            os.rename(old, target)
            raise
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, target)  # POSIX rename onto an absent or empty folder is atomic


def _write_marker(folder: Path, fmt: str, fingerprint: str, extras: list[str]) -> None:
    marker = {"contract_version": CONTRACT_VERSION, "format": fmt, "fingerprint": fingerprint, "extra_files": extras}
    (folder / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")


def _write_table(schema: TableSchema, frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        pacsv.write_csv(_csv_table(schema, frame), str(path))
    else:
        pq.write_table(_arrow_table(schema, frame), str(path), compression="zstd")


def _write_extra(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def _arrow_table(schema: TableSchema, frame: pd.DataFrame) -> pa.Table:
    """Typed frame -> Arrow with plain, tool-neutral types (no pandas metadata, no dictionaries).

    Columns beyond the contract's are kept, as text, after the contract's."""
    columns = {c.name: _arrow_column(c, frame[c.name]) for c in schema.columns}
    columns.update({name: _extra_column(frame[name]) for name in extra_columns(schema, frame)})
    return pa.table(columns)


def _extra_column(values: pd.Series) -> pa.Array:
    return pa.array(values.astype(STRING_DTYPE).array, type=pa.string())


def _arrow_column(column: Column, values: pd.Series) -> pa.Array:
    kind = column.kind
    if kind in ("text", "country", "category"):
        return pa.array(values.astype(STRING_DTYPE).array, type=pa.string())
    if kind == "bool":  # nullable: an unknown flag is written as an empty cell
        return pa.array(pd.array(values, dtype="boolean"), type=pa.bool_())
    if kind == "date":
        return pa.array(values.to_numpy(dtype="datetime64[ns]")).cast(pa.date32())
    if kind == "timestamp":
        return pa.array(values.to_numpy(dtype="datetime64[ns]"), type=pa.timestamp("ns")).cast(pa.timestamp("ns", tz="UTC"))
    if kind == "decimal":
        return pa.array(values.to_numpy(dtype="float64"), type=pa.float64(), from_pandas=True)
    return pa.array(values.array, type=pa.int64(), from_pandas=True)  # integer (Int64)


def _csv_table(schema: TableSchema, frame: pd.DataFrame) -> pa.Table:
    """The canonical CSV form: Arrow's writer formats bools true/false, dates YYYY-MM-DD, floats
    in shortest round-trip form; timestamps are written as UTC ISO 8601 with a 'Z'."""
    columns = {}
    for column in schema.columns:
        array = _arrow_column(column, frame[column.name])
        if column.kind == "timestamp":
            array = _iso_utc(array)
        columns[column.name] = array
    columns.update({name: _extra_column(frame[name]) for name in extra_columns(schema, frame)})
    return pa.table(columns)


def _iso_utc(instants: pa.Array) -> pa.Array:
    """2024-03-01T09:30:00Z, or with nanoseconds (…00.123456789Z) when any instant has a fraction."""
    nanos = np.asarray(instants.cast(pa.int64()).to_numpy(zero_copy_only=False))
    whole_seconds = bool(np.all(nanos % 1_000_000_000 == 0))
    unit = instants.cast(pa.timestamp("s", tz="UTC")) if whole_seconds else instants
    return pc.strftime(unit, format="%Y-%m-%dT%H:%M:%SZ")
