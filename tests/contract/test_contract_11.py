"""Contract 1.1: version-1 folders stay valid; what 1.1 allows; warnings beside errors and --strict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from amlscore.cli import app
from amlscore.contract import load_dataset, validate_folder, write_dataset
from contract_data import Tables, append_row, customer_row, txn_row

KYC_MAY_BE_EMPTY = ("birth_or_incorporation_date", "nationality", "residence_country", "home_region", "id_document_type",
                    "is_pep", "on_watchlist", "onboarding_channel", "agent_id", "phone", "emergency_contact_phone",
                    "ownership_layers", "refused_cdd", "is_resident", "declared_annual_income", "onboarded_at")


def _validate(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["validate", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_version_1_folder_without_counterparty_account_is_valid(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["transactions"] = tables["transactions"].drop(columns=["counterparty_account"])  # version 1 had no such column
    folder = csv_folder(tables)
    report = validate_folder(folder)
    assert report.ok and report.warning_total == 0 and report.notes == [], str(report)
    data = load_dataset(folder)
    assert data.transactions["counterparty_account"].isna().all()
    assert data.customers["is_pep"].tolist() == [False, True, False]


def test_a_1_1_folder_with_empty_sessions_kyc_other_channel_and_extra_columns_is_valid(
    csv_folder: Callable[[Tables], Path], tables: Tables, tmp_path: Path
) -> None:
    append_row(tables, "customers", customer_row("C4", occupation_or_industry="other", **{c: "" for c in KYC_MAY_BE_EMPTY}))
    append_row(tables, "transactions", txn_row("T8", "2024-03-05T12:00:00Z", "C4", "online_banking", direction="in",
                                               ip_address="", device_id="", counterparty_account="6222000011112222"))
    append_row(tables, "transactions", txn_row("T9", "2024-03-05T13:00:00Z", "C4", "other", txn_type="other"))
    tables["transactions"]["original_currency"] = "USD"
    folder = csv_folder(tables)
    report = validate_folder(folder)
    assert report.ok and report.warning_total == 0, str(report)
    assert "original_currency" in report.notes[0]
    data = load_dataset(folder)
    c4 = data.customers.set_index("customer_id").loc["C4"]
    assert all(pd.isna(c4[c]) for c in KYC_MAY_BE_EMPTY)  # unknown stays missing, never a default
    tx = data.transactions.set_index("txn_id")
    assert tx.loc["T9", "channel"] == "other" and tx.loc["T8", "counterparty_account"] == "6222000011112222"
    again = load_dataset(write_dataset(data, tmp_path / "written", fmt="csv"))  # written and read back unchanged
    pd.testing.assert_frame_equal(again.customers, data.customers)
    pd.testing.assert_frame_equal(again.transactions, data.transactions)


def test_out_row_of_online_banking_still_needs_its_session(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    append_row(tables, "transactions", txn_row("T8", "2024-03-05T12:00:00Z", "C1", "online_banking", device_id=""))
    report = validate_folder(csv_folder(tables))
    assert [(v.column, v.kind) for v in report.violations] == [("device_id", "channel_field_missing")]


def _suspect(tables: Tables) -> None:
    """Two warnings: a counterparty_id naming no customer, an ip_country without an ip_address."""
    append_row(tables, "transactions", txn_row("T8", "2024-03-05T12:00:00Z", "C1", "counter", counterparty_id="C99"))
    append_row(tables, "transactions", txn_row("T9", "2024-03-05T13:00:00Z", "C1", "counter", ip_country="CN"))


def test_warnings_are_listed_with_detail_and_accepted(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    _suspect(tables)
    folder = csv_folder(tables)
    report = validate_folder(folder)
    assert report.ok and report.warning_total == 2
    assert {(v.row, v.column, v.kind, v.severity) for v in report.warnings} == {
        (8, "counterparty_id", "unknown_counterparty", "warning"), (9, "ip_country", "ip_detail_without_ip", "warning")}
    code, out = _validate(str(folder))
    assert code == 0, out
    assert "warning: The 'counterparty_id' column of transactions.csv should name a customer" in out
    assert "Got 'C99' instead at row 8 (line 9)" in out
    assert "2 warnings found." in out and "meets the data contract" in out


def test_strict_turns_warnings_into_errors(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    _suspect(tables)
    folder = csv_folder(tables)
    code, out = _validate(str(folder), "--strict")
    assert code == 1, out
    assert "2 problems found. The data does not meet the contract." in out


def test_errors_and_warnings_are_both_listed_and_exit_1(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    _suspect(tables)
    tables["transactions"].loc[0, "direction"] = "sideways"
    code, out = _validate(str(csv_folder(tables)))
    assert code == 1
    assert "must be one of in, out" in out and "warning: The 'ip_country' column" in out
    assert "1 problem found." in out and "2 warnings found." in out


def test_commands_that_load_data_print_the_same_warning_summary(csv_folder: Callable[[Tables], Path], tables: Tables,
                                                               tmp_path: Path) -> None:
    _suspect(tables)
    folder = csv_folder(tables)
    result = CliRunner().invoke(app, ["features", "--data", str(folder), "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == 0, result.output
    assert "has 2 warnings (legal but suspect data)" in result.output
    assert "unknown_counterparty" not in result.output and "should name a customer" in result.output


def test_strict_report_keeps_the_display_cap_and_shows_every_kind(csv_folder: Callable[[Tables], Path],
                                                                  tables: Tables) -> None:
    for i in range(4):
        append_row(tables, "transactions", txn_row(f"T{20 + i}", "2024-03-05T12:00:00Z", "C1", "counter",
                                                   counterparty_id=f"C9{i}"))
    tables["transactions"].loc[0, "direction"] = "sideways"
    report = validate_folder(csv_folder(tables), max_errors=3)
    assert (report.total, report.warning_total) == (1, 4)
    strict = report.strict()
    assert strict.total == 5 and len(strict.violations) == 3 and not strict.ok
    assert {v.kind for v in strict.violations} == {"invalid_value", "unknown_counterparty"}
    assert all(v.severity == "error" for v in strict.violations)
