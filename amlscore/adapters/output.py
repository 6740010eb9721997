"""Writing a converted data set: contract tables, ground_truth.csv, all or nothing.

:class:`ContractWriter` takes payments block by block (:class:`~amlscore.adapters.transfers.Transfers`)
and streams their contract rows to ``transactions`` in a staging folder beside the target. What it
keeps in memory is bounded by the accounts and the labels, not by the rows: the set of customer
ids, the laundering rows and a sample of rows for not-suspicious dispositions. :meth:`finish`
writes customers, reports and the ground truth and renames the staging folder onto the target;
on any error the staging folder is removed and the target is left as it was.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from amlscore.contract.errors import AmlError
from amlscore.contract.load import _ensure_replaceable, _move_into_place, _write_marker, fingerprint_files
from amlscore.contract.schema import CUSTOMERS, GROUND_TRUTH_FILE, REPORTS, Column, TableSchema
from amlscore.adapters.labels import ReportPolicy, bank_reports, uniform
from amlscore.adapters.transfers import Transfers, side

OUTPUT_FORMATS = ("parquet", "csv")
_COMPACT_AT = 2_000_000
_PENDING = 2
#: Min/max statistics where a reader can use them to skip row groups (on every text column they cost time).
_STATISTICS = ["timestamp", "amount", "customer_id"]
#: Columns with few distinct values: dictionary-encoded in Parquet (ids are not: it would cost time, not space).
_DICTIONARY = ["direction", "channel", "txn_type", "counterparty_type", "counterparty_country", "original_currency"]  # customer ids held before the per-block unique sets are merged


@dataclass
class CustomerHints:
    """What a format can tell about its accounts: which are known to be corporate."""

    corporate: list[pa.Array] = field(default_factory=list)


@dataclass
class ImportSummary:
    """Counts of a finished conversion, for people."""

    out: Path
    source_rows: int
    skipped_rows: int
    customers: int
    transactions: int
    laundering_transactions: int
    reports: int
    suspicious_reports: int
    not_suspicious_reports: int
    period_reports: int
    notes: list[str]


class ContractWriter:
    """Stream converted payments into a contract folder (use as a context manager).

    Parameters
    ----------
    out : Path
        Target folder: absent, empty, or a data set written before (it is replaced at the end).
    fmt : {"parquet", "csv"}
    prefix : str
        Start of every txn_id (``AW`` for AMLworld...).
    seed : int
        Seed of the report policy.
    policy : ReportPolicy
    """

    def __init__(self, out: Path, *, fmt: str, prefix: str, seed: int, policy: ReportPolicy) -> None:
        if fmt not in OUTPUT_FORMATS:
            raise AmlError(f"--format must be one of {', '.join(OUTPUT_FORMATS)}. Got {fmt!r} instead.")
        self.out, self.fmt, self.prefix, self.seed, self.policy = Path(out), fmt, prefix, seed, policy
        _ensure_replaceable(self.out)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.staging = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.importing-", dir=self.out.parent))
        self._writer: pq.ParquetWriter | pacsv.CSVWriter | None = None
        # Encoding and compressing a block (Arrow releases the GIL) overlaps with parsing the next one;
        # at most _PENDING blocks wait, so memory stays bounded.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="amlscore-import-writer")
        self._pending: deque[Future[None]] = deque()
        self._ids: list[pa.Array] = []
        self._id_count = 0
        self._corporate: list[pa.Array] = []
        self._laundering: list[pa.Table] = []
        self._cleared: list[pa.Table] = []
        self.source_rows = 0
        self.skipped_rows = 0
        self.transactions = 0
        self.notes: list[str] = []

    # ------------------------------------------------------------------ context

    def __enter__(self) -> ContractWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is not None:
            self.abort()

    def abort(self) -> None:
        """Remove everything written so far (the target is untouched)."""
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()
        if self._writer is not None:
            try:
                self._writer.close()
            except Exception:  # noqa: BLE001 - the staging folder goes anyway
                pass
            self._writer = None
        shutil.rmtree(self.staging, ignore_errors=True)

    # ------------------------------------------------------------------ rows

    def add(self, t: Transfers) -> None:
        """Write the contract rows of one block and remember its customers and labels."""
        ids = []
        for out in (True, False):
            src = t.take(t.payer_inside if out else t.payee_inside)
            if not len(src):
                continue
            table = side(src, self.prefix, out=out)
            self._write(table)
            self._remember(table, src, out=out)
            ids.extend(table["customer_id"].chunks)
        if ids:
            self._add_ids(pc.unique(pa.chunked_array(ids)))

    def mark_corporate(self, ids: pa.Array) -> None:
        """Accounts the source shows to be businesses (e.g. card merchants): customer_type corporate."""
        if len(ids):
            self._corporate.append(pc.unique(ids))
            if sum(len(a) for a in self._corporate) > _COMPACT_AT:
                self._corporate = [pc.unique(pa.concat_arrays(self._corporate))]

    def _remember(self, table: pa.Table, src: Transfers, *, out: bool) -> None:
        lau = src.laundering
        keep = ["txn_id", "customer_id", "timestamp"]
        if lau.any():
            idx = pa.array(np.flatnonzero(lau))
            self._laundering.append(table.select(keep).take(idx).append_column("typology", src.typology.take(idx))
                                    .append_column("scenario_id", src.scenario.take(idx)))
        keys = (src.line.astype(np.uint64) << np.uint64(1)) | np.uint64(0 if out else 1)
        pick = (uniform(keys, self.seed, 6) < self.policy.cleared_rate) & ~lau
        if pick.any():
            self._cleared.append(table.select(keep).take(pa.array(np.flatnonzero(pick))))

    def _add_ids(self, ids: pa.Array) -> None:
        self._ids.append(ids)
        self._id_count += len(ids)
        if self._id_count > _COMPACT_AT:
            merged = pc.unique(pa.concat_arrays(self._ids))
            self._ids, self._id_count = [merged], len(merged)

    def _write(self, table: pa.Table) -> None:
        self.transactions += table.num_rows
        if self.fmt == "csv":
            table = _csv_ready(table)
        if self._writer is None:
            path = self.staging / f"transactions.{self.fmt}"
            self._writer = (pacsv.CSVWriter(str(path), table.schema) if self.fmt == "csv"
                            else pq.ParquetWriter(str(path), table.schema, compression="zstd", use_dictionary=_DICTIONARY,
                                               write_statistics=_STATISTICS))
        while len(self._pending) >= _PENDING:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._writer.write_table, table))

    def _drain(self) -> None:
        while self._pending:
            self._pending.popleft().result()
        self._pool.shutdown(wait=True)

    # ------------------------------------------------------------------ the end

    def finish(self) -> ImportSummary:
        """Write customers, reports and the ground truth; put the folder in place."""
        if self._writer is None:
            raise AmlError("The source holds no payment of a customer of the chosen bank: nothing to write.")
        self._drain()
        self._writer.close()
        self._writer = None
        ids = pc.unique(pa.concat_arrays(self._ids)) if self._ids else pa.array([], pa.string())
        customers = _customers(pc.sort_indices(ids), ids, self._corporate)
        reports, truth = bank_reports(_frame(self._laundering), _frame(self._cleared), self.policy, self.seed)
        files = {"transactions": self.staging / f"transactions.{self.fmt}"}
        for schema, table in ((CUSTOMERS, customers), (REPORTS, _arrow(REPORTS, reports))):
            path = self.staging / f"{schema.name}.{self.fmt}"
            _write_table(table, path)
            files[schema.name] = path
        truth.to_csv(self.staging / GROUND_TRUTH_FILE, index=False)
        _write_marker(self.staging, self.fmt, fingerprint_files(files), [GROUND_TRUTH_FILE])
        _move_into_place(self.staging, self.out)
        labels = reports["label"].astype(str)
        return ImportSummary(self.out, self.source_rows, self.skipped_rows, customers.num_rows, self.transactions,
                             len(truth), len(reports), int((labels == "suspicious").sum()),
                             int((labels == "not_suspicious").sum()), int(reports["txn_id"].isna().sum()),
                             self.notes)


def _frame(tables: list[pa.Table]) -> pd.DataFrame:
    columns = ["txn_id", "customer_id", "timestamp", "typology", "scenario_id"]
    if not tables:
        return pd.DataFrame({c: pd.Series([], dtype="datetime64[ns, UTC]" if c == "timestamp" else object)
                             for c in columns})
    frame = pa.concat_tables(tables, promote_options="default").to_pandas()
    for c in columns:
        if c not in frame:
            frame[c] = None
    return frame[columns]


def _customers(order: pa.Array, ids: pa.Array, corporate: list[pa.Array]) -> pa.Table:
    """Customers with unknown KYC (contract 1.1): type from the source's hints, industry ``other``."""
    ids = ids.take(order)
    corp = pc.is_in(ids, value_set=pc.unique(pa.concat_arrays(corporate))) if corporate else None
    n = len(ids)
    values: dict[str, pa.Array] = {"customer_id": ids,
                                   "customer_type": pc.if_else(corp, "corporate", "individual") if corp is not None
                                   else pa.array(np.full(n, "individual", dtype=object), pa.string()),
                                   "occupation_or_industry": pa.array(np.full(n, "other", dtype=object), pa.string())}
    return pa.table({c.name: values.get(c.name, pa.nulls(n, _arrow_type(c))) for c in CUSTOMERS.columns})


def _arrow_type(column: Column) -> pa.DataType:
    return {"bool": pa.bool_(), "date": pa.date32(), "timestamp": pa.timestamp("ns", tz="UTC"),
            "decimal": pa.float64(), "integer": pa.int64()}.get(column.kind, pa.string())


def _arrow(schema: TableSchema, frame: pd.DataFrame) -> pa.Table:
    columns = {}
    for c in schema.columns:
        values = frame[c.name]
        if c.kind == "date":
            columns[c.name] = pa.array(pd.to_datetime(values).to_numpy(dtype="datetime64[ns]")).cast(pa.date32())
        else:
            columns[c.name] = pa.array(values.astype(object).where(values.notna(), None).tolist(), _arrow_type(c))
    return pa.table(columns)


def _csv_ready(table: pa.Table) -> pa.Table:
    """Timestamps as ISO 8601 UTC with a 'Z' (the project's CSV form)."""
    for i, f in enumerate(table.schema):
        if pa.types.is_timestamp(f.type):
            text = pc.strftime(table.column(i).cast(pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ")
            table = table.set_column(i, f.name, text)
    return table


def _write_table(table: pa.Table, path: Path) -> None:
    if path.suffix == ".csv":
        pacsv.write_csv(_csv_ready(table), str(path))
    else:
        pq.write_table(table, str(path), compression="zstd")
