"""Reading files (CSV, Parquet, broken ones), typed frames, fingerprints and atomic writing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import amlscore.contract.load as load_module
from amlscore.contract.load import (
    MARKER_FILE,
    DataFolderError,
    Dataset,
    dataset_from_frames,
    fingerprint_files,
    load_dataset,
    validate_folder,
    write_dataset,
)
from amlscore.contract.schema import CHANNELS, DIRECTIONS, OCCUPATIONS_OR_INDUSTRIES, TABLES
from amlscore.contract.columns import STRING_DTYPE, typed_dtype
from amlscore.contract.problems import ContractViolationError
from contract_data import Tables, write_csv_tables


def _dataset(tables: Tables) -> Dataset:
    return dataset_from_frames(tables["customers"], tables["transactions"], tables["reports"])


# ---- typed frames -------------------------------------------------------------------------


def test_typed_dtypes_are_the_documented_ones(tables: Tables) -> None:
    data = _dataset(tables)
    for schema, frame in zip(TABLES, data.tables().values()):
        assert list(frame.columns) == list(schema.column_names)
        assert isinstance(frame.index, pd.RangeIndex) and frame.index.start == 0
        for column in schema.columns:
            assert frame[column.name].dtype == typed_dtype(column), column.name
    tx, customers = data.transactions, data.customers
    assert tx["amount"].dtype == np.float64
    assert tx["timestamp"].dtype == pd.DatetimeTZDtype("ns", "UTC")
    assert customers["onboarded_at"].dtype == np.dtype("datetime64[ns]")
    assert customers["is_pep"].dtype == pd.BooleanDtype()  # may be empty: unknown stays missing
    assert customers["ownership_layers"].dtype == pd.Int64Dtype()
    assert customers["customer_id"].dtype == STRING_DTYPE
    assert list(tx["direction"].cat.categories) == list(DIRECTIONS)
    assert list(tx["channel"].cat.categories) == list(CHANNELS)
    assert list(customers["occupation_or_industry"].cat.categories) == list(OCCUPATIONS_OR_INDUSTRIES)
    assert tx.loc[tx["txn_id"] == "T5", "channel"].cat.codes.item() == CHANNELS.index("atm")


def test_typed_values(tables: Tables) -> None:
    data = _dataset(tables)
    c = data.customers.set_index("customer_id")
    assert c.loc["NA", "nationality"] == "NA"  # Namibia, not missing
    assert pd.isna(c.loc["NA", "declared_annual_income"]) and pd.isna(c.loc["C1", "agent_id"])
    assert pd.isna(c.loc["NA", "birth_or_incorporation_date"])
    assert c.loc["C2", "declared_annual_income"] == 5000000.5 and c.loc["C2", "ownership_layers"] == 3
    assert pd.isna(c.loc["C1", "ownership_layers"])
    assert c.loc["C2", "is_pep"] is np.True_ or c.loc["C2", "is_pep"] == True  # noqa: E712
    t = data.transactions.set_index("txn_id")
    assert t.loc["T6", "timestamp"] == pd.Timestamp("2024-03-02T01:00:00Z")  # +08:00 converted to UTC
    assert t.loc["T3", "timestamp"] == pd.Timestamp("2024-03-01T12:30:00Z")  # no offset: UTC
    assert t.loc["T4", "timestamp"] == pd.Timestamp("2024-03-04T04:59:59.5Z")
    assert t.loc["T3", "amount"] == 10000.0


def test_transactions_sorted_by_timestamp_then_txn_id(tables: Tables) -> None:
    tables["transactions"] = tables["transactions"].iloc[::-1].reset_index(drop=True)
    tx = _dataset(tables).transactions
    assert list(tx["txn_id"]) == ["T1", "T2", "T3", "T6", "T4", "T5", "T7"]  # T1, T2 share a timestamp
    assert isinstance(tx.index, pd.RangeIndex)


def test_native_types_from_memory_are_accepted(tables: Tables) -> None:
    typed = _dataset(tables)
    again = dataset_from_frames(typed.customers, typed.transactions, typed.reports)
    for a, b in zip(typed.tables().values(), again.tables().values()):
        pd.testing.assert_frame_equal(a, b)
    assert again.fingerprint == typed.fingerprint
    c = tables["customers"].copy()
    c["is_pep"] = [False, True, None]  # Python bools; None is an empty cell, which is_pep allows
    kept = dataset_from_frames(c, tables["transactions"], tables["reports"]).customers["is_pep"]
    assert kept.tolist()[:2] == [False, True] and kept.isna().tolist() == [False, False, True]
    c["customer_type"] = ["individual", None, "corporate"]  # a required column: None is an error
    with pytest.raises(ContractViolationError) as err:
        dataset_from_frames(c, tables["transactions"], tables["reports"])
    v = err.value.report.violations
    assert [(x.file, x.row, x.column, x.kind) for x in v] == [("customers", 2, "customer_type", "required")]


def test_reports_may_be_absent_in_memory(tables: Tables) -> None:
    data = dataset_from_frames(tables["customers"], tables["transactions"], None)
    assert len(data.reports) == 0 and list(data.reports.columns) == list(TABLES[2].column_names)


# ---- files ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_round_trip_write_then_load(fmt: str, tables: Tables, tmp_path: Path) -> None:
    data = _dataset(tables)
    folder = write_dataset(data, tmp_path / "out", fmt=fmt, extra_files={"ground_truth.csv": pd.DataFrame({"customer_id": ["C2"]})})
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [MARKER_FILE, "ground_truth.csv", f"customers.{fmt}", f"transactions.{fmt}", f"reports.{fmt}"]
    )
    loaded = load_dataset(folder)
    for a, b in zip(data.tables().values(), loaded.tables().values()):
        pd.testing.assert_frame_equal(a, b)
    assert loaded.source == folder
    assert loaded.fingerprint == fingerprint_files({t.name: folder / f"{t.name}.{fmt}" for t in TABLES})
    if fmt == "csv":  # the in-memory fingerprint is that of the canonical CSV files
        assert loaded.fingerprint == data.fingerprint


def test_csv_reads_na_as_text_and_empty_as_missing(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    folder = csv_folder(tables)
    assert "NA" in (folder / "customers.csv").read_text()
    data = load_dataset(folder)
    assert (data.customers["customer_id"] == "NA").sum() == 1
    assert data.customers["agent_id"].isna().sum() == 2


@pytest.mark.filterwarnings("ignore:Series.values returning an ndarray")  # inside pyarrow's from_pandas
def test_parquet_with_native_types(tables: Tables, tmp_path: Path) -> None:
    typed = _dataset(tables)
    folder = tmp_path / "native"
    folder.mkdir()
    write_csv_tables({"customers": tables["customers"], "reports": tables["reports"]}, folder)
    tx = typed.transactions.copy()
    tx["timestamp"] = tx["timestamp"].dt.tz_convert("Asia/Shanghai")  # any zone: converted to UTC
    pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), folder / "transactions.parquet")
    loaded = load_dataset(folder)
    pd.testing.assert_frame_equal(loaded.transactions, typed.transactions)


def test_fingerprint_changes_with_any_byte(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    folder = csv_folder(tables)
    before = load_dataset(folder).fingerprint
    path = folder / "transactions.csv"
    path.write_text(path.read_text().replace("88.8", "88.9"))
    assert load_dataset(folder).fingerprint != before
    assert len(before) == 64 and int(before, 16) >= 0


def test_missing_folder_and_files(tmp_path: Path, csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    with pytest.raises(DataFolderError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")
    folder = csv_folder(tables)
    (folder / "reports.csv").unlink()
    with pytest.raises(DataFolderError, match=r"has no reports\.parquet or reports\.csv"):
        validate_folder(folder)
    data = load_dataset(folder, require_reports=False)
    assert len(data.reports) == 0 and data.reports["report_date"].dtype == np.dtype("datetime64[ns]")
    assert DataFolderError("x").exit_code == 2


def test_both_csv_and_parquet_is_an_error(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    folder = csv_folder(tables)
    (folder / "customers.parquet").write_bytes(b"PAR1")
    with pytest.raises(DataFolderError, match="both customers.parquet and customers.csv"):
        load_dataset(folder)


def test_load_raises_contract_violation_with_report(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["transactions"].loc[0, "amount"] = "-1"
    with pytest.raises(ContractViolationError) as err:
        load_dataset(csv_folder(tables))
    assert err.value.exit_code == 1
    assert err.value.report.total == 1
    assert "The 'amount' column of transactions.csv must be a number > 0. Got '-1' instead at row 1 (line 2)." in str(err.value)


# ---- unreadable files ---------------------------------------------------------------------


def _only_problem(folder: Path) -> tuple[str, int | None, str | None, str, str]:
    report = validate_folder(folder)
    assert report.total == 1, str(report)
    v = report.violations[0]
    return v.file, v.row, v.column, v.kind, v.message


def test_bad_parquet_is_a_violation(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    folder = csv_folder(tables)
    (folder / "transactions.csv").unlink()
    (folder / "transactions.parquet").write_bytes(b"this is not parquet")
    file, row, column, kind, message = _only_problem(folder)
    assert (file, row, column, kind) == ("transactions.parquet", None, None, "unreadable_file")
    assert message.startswith("transactions.parquet must be a readable Parquet file.")


def test_csv_row_with_extra_cells(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    folder = csv_folder(tables)
    path = folder / "reports.csv"
    lines = path.read_text().splitlines()
    lines[2] += ",surplus"
    path.write_text("\n".join(lines) + "\n")
    file, row, column, kind, message = _only_problem(folder)
    assert (file, row, column, kind) == ("reports.csv", 2, None, "malformed_row")
    assert message.startswith("Row 2 (line 3) of reports.csv must have as many cells as the header (8).")


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"", "must start with a header line"), (b"report_id,label\n\xff\xfe,x\n", "must be a readable UTF-8 CSV file")],
    ids=["empty", "not-utf8"],
)
def test_unreadable_csv(content: bytes, expected: str, csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    folder = csv_folder(tables)
    (folder / "reports.csv").write_bytes(content)
    file, row, column, kind, message = _only_problem(folder)
    assert (file, row, column, kind) == ("reports.csv", None, None, "unreadable_file")
    assert expected in message


def test_utf8_bom_and_quoted_newlines_are_fine(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["reports"].loc[0, "typology"] = "smurfing,\nthen layering"
    folder = csv_folder(tables)
    path = folder / "customers.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    data = load_dataset(folder)
    assert data.reports.loc[0, "typology"] == "smurfing,\nthen layering"
    assert data.customers.columns[0] == "customer_id"


# ---- writing ------------------------------------------------------------------------------


def test_write_is_atomic_when_it_fails_midway(tables: Tables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _dataset(tables)
    real = load_module._write_table

    def failing(schema, frame, path):  # type: ignore[no-untyped-def]
        if schema.name == "transactions":
            raise OSError("disk full")
        real(schema, frame, path)

    monkeypatch.setattr(load_module, "_write_table", failing)
    with pytest.raises(OSError, match="disk full"):
        write_dataset(data, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []  # no target, no leftover temporary folder


def test_failed_rewrite_keeps_the_old_data_set(tables: Tables, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _dataset(tables)
    target = write_dataset(data, tmp_path / "out", fmt="csv")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def failing(schema, frame, path):  # type: ignore[no-untyped-def]
        raise OSError("disk full")

    monkeypatch.setattr(load_module, "_write_table", failing)
    with pytest.raises(OSError):
        write_dataset(data, target, fmt="parquet")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_overwrites_a_previous_data_set(tables: Tables, tmp_path: Path) -> None:
    data = _dataset(tables)
    target = write_dataset(data, tmp_path / "out", fmt="csv")
    write_dataset(data, target, fmt="parquet")
    assert sorted(p.name for p in target.iterdir()) == sorted([MARKER_FILE, "customers.parquet", "transactions.parquet", "reports.parquet"])
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_refuses_a_folder_that_is_not_a_data_set(tables: Tables, tmp_path: Path) -> None:
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.docx").write_text("precious")
    with pytest.raises(DataFolderError, match="not empty and is not an amlscore data set"):
        write_dataset(_dataset(tables), target)
    assert [p.name for p in target.iterdir()] == ["thesis.docx"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_dataset(_dataset(tables), empty) == empty  # an empty folder is fine


def test_write_validates_raw_frames_first(tables: Tables, tmp_path: Path) -> None:
    tables["transactions"].loc[0, "amount"] = "-1"
    with pytest.raises(ContractViolationError):
        write_dataset(tables, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    tables["transactions"].loc[0, "amount"] = "1"
    folder = write_dataset((tables["customers"], tables["transactions"], tables["reports"]), tmp_path / "out", fmt="csv")
    assert load_dataset(folder).fingerprint == _dataset(tables).fingerprint


def test_write_rejects_bad_arguments(tables: Tables, tmp_path: Path) -> None:
    data = _dataset(tables)
    with pytest.raises(ValueError, match="'fmt' parameter"):
        write_dataset(data, tmp_path / "a", fmt="xlsx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'extra_files' parameter"):
        write_dataset(data, tmp_path / "a", extra_files={"customers.csv": pd.DataFrame()})
    with pytest.raises(ValueError, match="'extra_files' parameter"):
        write_dataset(data, tmp_path / "a", extra_files={"../escape.csv": pd.DataFrame()})
    assert list(tmp_path.iterdir()) == []
