"""Every rule of the contract: one broken cell, one reported violation naming file, row, column and rule.

The cases touch distinct cells, so the acceptance test can break them all in one folder and
expect each to be reported, and nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from amlscore.contract.load import load_dataset, validate_folder
from amlscore.contract.problems import ValidationReport, Violation
from amlscore.contract.validate import validate_frames
from contract_data import Tables, append_row, customer_row, txn_row, valid_tables


@dataclass(frozen=True)
class Case:
    """One broken rule: how to break it and what the validator must say."""

    id: str
    mutate: Callable[[Tables], None]
    file: str
    row: int | None | str  # "last": the row the mutation appended
    column: str | None
    kind: str
    rule: str  # a fragment of Violation.rule


def _set(table: str, row: int, column: str, value: str) -> Callable[[Tables], None]:
    """Set a cell; ``row`` is the 1-based data row, as reported."""

    def mutate(tables: Tables) -> None:
        tables[table].loc[row - 1, column] = value

    return mutate


def _append(table: str, row: dict[str, str]) -> Callable[[Tables], None]:
    return lambda tables: append_row(tables, table, row)


def _period_report(rid: str, cid: str, start: str, end: str, filed: str) -> dict[str, str]:
    return dict(report_id=rid, customer_id=cid, period_start=start, period_end=end, report_date=filed, label="suspicious")


def _txn_report(rid: str, cid: str, txn: str, filed: str) -> dict[str, str]:
    return dict(report_id=rid, customer_id=cid, txn_id=txn, report_date=filed, label="not_suspicious")


# Rows (1-based): customers C1, C2, NA; transactions T6 pos, T1 online, T2 online, T3 mobile,
# T4 phone, T5 atm, T7 counter; reports R1 (C2, T3), R2 (NA, period). Appended rows come after.
CASES: list[Case] = [
    Case("required", _set("customers", 2, "occupation_or_industry", ""), "customers.csv", 2, "occupation_or_industry", "required",
         "must not be empty"),
    Case("required-blank", _set("transactions", 1, "account_id", "   "), "transactions.csv", 1, "account_id", "required", "must not be empty"),
    Case("category", _set("customers", 3, "customer_type", "person"), "customers.csv", 3, "customer_type", "invalid_value",
         "must be one of individual, corporate"),
    Case("category-case", _set("transactions", 6, "direction", "OUT"), "transactions.csv", 6, "direction", "invalid_value",
         "must be one of in, out"),
    Case("bool", _set("customers", 1, "is_pep", "True"), "customers.csv", 1, "is_pep", "invalid_value", "true or false"),
    Case("country", _set("customers", 3, "residence_country", "XK"), "customers.csv", 3, "residence_country", "invalid_value",
         "ISO 3166-1 alpha-2"),
    Case("country-case", _set("transactions", 1, "counterparty_country", "cn"), "transactions.csv", 1, "counterparty_country",
         "invalid_value", "ISO 3166-1 alpha-2"),
    Case("date-unreal", _set("customers", 1, "onboarded_at", "2023-02-29"), "customers.csv", 1, "onboarded_at", "invalid_value",
         "real date written YYYY-MM-DD"),
    Case("date-format", _set("reports", 2, "period_start", "01/03/2024"), "reports.csv", 2, "period_start", "invalid_value",
         "real date written YYYY-MM-DD"),
    Case("date-range", _set("customers", 2, "birth_or_incorporation_date", "0001-01-01"), "customers.csv", 2,
         "birth_or_incorporation_date", "out_of_range", "between 1677-09-22 and 2262-04-11"),
    Case("timestamp", _set("transactions", 7, "timestamp", "2024-13-01T00:00:00"), "transactions.csv", 7, "timestamp",
         "invalid_value", "ISO 8601"),
    Case("number", _set("transactions", 3, "amount", "12,5"), "transactions.csv", 3, "amount", "invalid_value", "finite number"),
    Case("number-infinite", _set("customers", 2, "declared_annual_income", "inf"), "customers.csv", 2, "declared_annual_income",
         "invalid_value", "finite number"),
    Case("amount-positive", _set("transactions", 2, "amount", "0"), "transactions.csv", 2, "amount", "out_of_range",
         "must be a number > 0"),
    Case("income-non-negative", _set("customers", 1, "declared_annual_income", "-0.01"), "customers.csv", 1,
         "declared_annual_income", "out_of_range", "must be a number >= 0"),
    Case("integer", _set("customers", 2, "ownership_layers", "2.5"), "customers.csv", 2, "ownership_layers", "invalid_value",
         "must be a whole number"),
    Case("integer-non-negative", _set("customers", 3, "ownership_layers", "-1"), "customers.csv", 3, "ownership_layers",
         "out_of_range", "must be a whole number >= 0"),
    Case("unique-customer", _append("customers", customer_row("C1")), "customers.csv", "last", "customer_id", "duplicate", "must be unique"),
    Case("unique-txn", _append("transactions", txn_row("T1", "2024-03-06T00:00:00Z", "C1", "counter")), "transactions.csv", "last",
         "txn_id", "duplicate", "must be unique"),
    Case("unique-report", _append("reports", _period_report("R1", "C1", "2024-03-01", "2024-03-02", "2024-03-05")), "reports.csv", "last",
         "report_id", "duplicate", "must be unique"),
    Case("txn-customer", _set("transactions", 5, "customer_id", "C9"), "transactions.csv", 5, "customer_id", "unknown_customer",
         "must name a customer in customers.csv"),
    Case("report-customer", _append("reports", _period_report("R3", "C9", "2024-03-01", "2024-03-02", "2024-03-05")), "reports.csv", "last",
         "customer_id", "unknown_customer", "must name a customer in customers.csv"),
    Case("report-txn", _append("reports", _txn_report("R4", "C1", "T99", "2024-03-10")), "reports.csv", "last", "txn_id",
         "unknown_transaction", "must name a transaction in transactions.csv"),
    Case("report-txn-owner", _append("reports", _txn_report("R5", "C1", "T2", "2024-03-10")), "reports.csv", "last", "txn_id",
         "transaction_of_other_customer", "the report's own customer"),
    Case("ip-required", _set("transactions", 4, "ip_address", ""), "transactions.csv", 4, "ip_address", "channel_field_missing",
         "must not be empty on an out row when channel is online_banking or mobile_banking"),
    Case("device-forbidden", _set("transactions", 7, "device_id", "D-x"), "transactions.csv", 7, "device_id",
         "channel_field_forbidden", "must be empty unless channel is online_banking or mobile_banking"),
    Case("terminal-required", _set("transactions", 6, "terminal_id", ""), "transactions.csv", 6, "terminal_id",
         "channel_field_missing", "must not be empty when channel is pos or atm"),
    Case("terminal-forbidden", _set("transactions", 2, "terminal_id", "TERM-1"), "transactions.csv", 2, "terminal_id",
         "channel_field_forbidden", "must be empty unless channel is pos or atm"),
    Case("period-required", _set("reports", 2, "period_end", ""), "reports.csv", 2, "period_end", "period_required",
         "must not be empty when txn_id is empty"),
    Case("period-order", _append("reports", _period_report("R6", "C1", "2024-03-05", "2024-03-01", "2024-03-10")), "reports.csv", "last",
         "period_start", "period_order", "must be on or before period_end"),
    Case("report-before-txn", _set("reports", 1, "report_date", "2024-02-29"), "reports.csv", 1, "report_date",
         "report_before_activity", "on or after the reported activity"),
    Case("report-before-period", _append("reports", _period_report("R7", "C1", "2024-03-01", "2024-03-04", "2024-03-03")), "reports.csv",
         "last", "report_date", "report_before_activity", "on or after the reported activity"),
    Case("missing-column", lambda t: t.__setitem__("reports", t["reports"].drop(columns="typology")), "reports.csv", None, "typology",
         "missing_column", "missing"),
    Case("duplicate-column", lambda t: t.__setitem__("customers", pd.concat([t["customers"], t["customers"][["phone"]]], axis=1)),
         "customers.csv", None, "phone", "duplicate_column", "once in the header"),
]


def _apply(case: Case, tables: Tables) -> tuple[str, int | None, str | None, str]:
    """Break the tables as ``case`` says; return the expected (file, row, column, kind)."""
    case.mutate(tables)
    row = len(tables[case.file.split(".")[0]]) if case.row == "last" else case.row
    assert not isinstance(row, str)
    return case.file, row, case.column, case.kind


def _only(report: ValidationReport) -> Violation:
    assert report.total == 1, str(report)
    assert len(report.violations) == 1
    return report.violations[0]


def test_valid_tables_pass(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    report = validate_folder(csv_folder(tables))
    assert report.ok, str(report)
    assert report.violations == [] and report.warnings == []
    assert report.summary == "No problems found."


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_rule_reports_file_row_column_and_rule(case: Case, csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    expected = _apply(case, tables)
    v = _only(validate_folder(csv_folder(tables)))
    assert (v.file, v.row, v.column, v.kind) == expected
    assert case.rule in v.rule
    assert case.rule in v.message and case.file in v.message
    if v.row is not None:
        assert v.line == v.row + 1  # the header is line 1
        assert f"at row {v.row} (line {v.row + 1})" in v.message


def test_folder_with_every_kind_of_violation_reports_each(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    """Acceptance: all the cases at once are all reported, and nothing else."""
    expected = {_apply(case, tables) for case in CASES}
    report = validate_folder(csv_folder(tables), max_errors=500)
    found = {(v.file, v.row, v.column, v.kind) for v in report.violations}
    assert found == expected
    assert report.total == len(CASES)
    assert not report.ok


def test_offending_value_is_quoted_and_empty_cells_are_named(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["transactions"].loc[2, "direction"] = "sideways"
    tables["customers"].loc[0, "customer_type"] = ""
    report = validate_folder(csv_folder(tables))
    messages = report.lines()
    assert "The 'customer_type' column of customers.csv must not be empty. Got an empty cell instead at row 1 (line 2)." in messages
    assert ("The 'direction' column of transactions.csv must be one of in, out. Got 'sideways' instead at row 3 (line 4)."
            in messages)


def test_long_values_are_cut(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["transactions"].loc[0, "direction"] = "x" * 500
    v = _only(validate_folder(csv_folder(tables)))
    assert v.value is not None and len(v.value) <= 60 and v.value.endswith("...")


def test_duplicate_note_points_at_first_copy(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    append_row(tables, "customers", customer_row("C2"))
    v = _only(validate_folder(csv_folder(tables)))
    assert v.note == "Row 2 has the same value."


def test_report_date_uses_the_china_standard_time_date_of_the_transaction(
    csv_folder: Callable[[Tables], Path], tables: Tables
) -> None:
    # T4 is 2024-03-03T23:59:59.5-05:00, i.e. 2024-03-04 12:59 in China: a report filed on 03-03 is too early.
    append_row(tables, "reports", _txn_report("R8", "NA", "T4", "2024-03-03"))
    v = _only(validate_folder(csv_folder(tables)))
    assert (v.row, v.column, v.kind) == (3, "report_date", "report_before_activity")
    assert "2024-03-04" in v.message and "China Standard Time date of its transaction" in v.message
    tables["reports"].loc[2, "report_date"] = "2024-03-04"  # the same day is fine
    assert validate_folder(csv_folder(tables)).ok


def test_report_date_on_the_utc_day_of_an_evening_transaction_is_too_early(
    csv_folder: Callable[[Tables], Path], tables: Tables
) -> None:
    # 17:00 UTC on 03-04 is 01:00 on 03-05 in China: filing on 03-04 (the UTC day) is before the activity.
    tables["transactions"].loc[5, "timestamp"] = "2024-03-04T17:00:00Z"  # T5
    append_row(tables, "reports", _txn_report("R8", "C1", "T5", "2024-03-04"))
    v = _only(validate_folder(csv_folder(tables)))
    assert (v.column, v.kind) == ("report_date", "report_before_activity") and "2024-03-05" in v.message
    tables["reports"].loc[2, "report_date"] = "2024-03-05"
    assert validate_folder(csv_folder(tables)).ok


def test_report_with_txn_needs_no_period(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    append_row(tables, "reports", _txn_report("R8", "C1", "T5", "2024-03-04"))
    assert validate_folder(csv_folder(tables)).ok


def test_extra_column_is_a_note_kept_in_the_data(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["transactions"]["merchant_name"] = "shop"
    folder = csv_folder(tables)
    report = validate_folder(folder)
    assert report.ok and report.warning_total == 0
    assert report.notes == [
        "transactions.csv has columns beyond the contract's; they are kept and ignored by scoring: 'merchant_name'."
    ]
    data = load_dataset(folder)
    assert data.transactions["merchant_name"].tolist() == ["shop"] * len(data.transactions)
    assert list(data.transactions.columns[-1:]) == ["merchant_name"]  # after the contract's columns


def test_missing_column_hints_at_near_miss(csv_folder: Callable[[Tables], Path], tables: Tables) -> None:
    tables["transactions"] = tables["transactions"].rename(columns={"amount": "Amount"})
    report = validate_folder(csv_folder(tables))
    v = _only(report)
    assert (v.file, v.row, v.column, v.kind) == ("transactions.csv", None, "amount", "missing_column")
    assert "'Amount'" in v.message


@pytest.mark.parametrize(
    "cell",
    ["2024-03-01T10:00:00Z", "2024-03-01T10:00:00+08:00", "2024-03-01T10:00:00.123456789-0530", "2024-03-01 10:00", "2024-03-01T10:00+08"],
)
def test_iso_8601_timestamps_accepted(cell: str, tables: Tables) -> None:
    tables["transactions"].loc[0, "timestamp"] = cell
    assert validate_frames(tables["customers"], tables["transactions"], tables["reports"]).ok


@pytest.mark.parametrize("cell", ["2024-03-01", "01/03/2024 10:00", "2024-03-01T25:00:00", "2024-3-1T10:00:00", "now"])
def test_non_iso_timestamps_rejected(cell: str, tables: Tables) -> None:
    tables["transactions"].loc[0, "timestamp"] = cell
    v = _only(validate_frames(tables["customers"], tables["transactions"], tables["reports"]))
    assert (v.file, v.row, v.column) == ("transactions", 1, "timestamp")
    assert v.line is None  # in-memory frames have rows, not lines


@pytest.mark.parametrize("cell", ["nan", "1e999", "0x10", "1,000", "5 CNY", "--1"])
def test_bad_numbers_rejected(cell: str, tables: Tables) -> None:
    tables["transactions"].loc[0, "amount"] = cell
    v = _only(validate_frames(tables["customers"], tables["transactions"], tables["reports"]))
    assert v.column == "amount" and v.kind == "invalid_value"


def test_every_problem_is_counted_but_only_max_errors_shown(tables: Tables) -> None:
    tables["transactions"]["amount"] = "-5"
    tables["customers"]["is_pep"] = "yes"
    report = validate_frames(tables["customers"], tables["transactions"], tables["reports"], max_errors=4)
    assert report.total == 7 + 3
    assert len(report.violations) == 4
    # every kind shows before any kind shows twice
    assert {v.column for v in report.violations} == {"amount", "is_pep"}
    assert report.summary == "10 problems of 2 kinds found; the first 4 are shown, at least one of each kind."
    assert [(k.column, k.count) for k in report.kinds] == [("is_pep", 3), ("amount", 7)]


def test_max_errors_zero_still_counts(tables: Tables) -> None:
    tables["transactions"]["amount"] = "0"
    report = validate_frames(tables["customers"], tables["transactions"], tables["reports"], max_errors=0)
    assert report.total == 7 and report.violations == [] and not report.ok


def test_max_errors_must_be_non_negative(tables: Tables) -> None:
    with pytest.raises(ValueError, match="The 'max_errors' parameter must be an int >= 0. Got -1 instead."):
        validate_frames(tables["customers"], tables["transactions"], tables["reports"], max_errors=-1)


def test_na_text_is_an_id_not_a_missing_value(csv_folder: Callable[[Tables], Path]) -> None:
    # Customer 'NA' (Namibian) and its transactions and reports are valid: 'NA' is text, not missing.
    tables = valid_tables()
    assert (tables["customers"]["customer_id"] == "NA").any()
    assert validate_folder(csv_folder(tables)).ok


# Columns that other rules read: without them those rules must be skipped, not crash or pile up.
_LINKED_COLUMNS = [
    ("customers", "customer_id"), ("transactions", "txn_id"), ("transactions", "customer_id"),
    ("transactions", "timestamp"), ("transactions", "channel"), ("transactions", "ip_address"),
    ("transactions", "terminal_id"), ("reports", "customer_id"), ("reports", "txn_id"),
    ("reports", "period_start"), ("reports", "period_end"), ("reports", "report_date"),
]


@pytest.mark.parametrize(("table", "column"), _LINKED_COLUMNS, ids=[f"{t}.{c}" for t, c in _LINKED_COLUMNS])
def test_missing_linked_column_is_one_problem_and_no_crash(table: str, column: str, tables: Tables) -> None:
    tables[table] = tables[table].drop(columns=column)
    v = _only(validate_frames(tables["customers"], tables["transactions"], tables["reports"]))
    assert (v.file, v.row, v.column, v.kind) == (table, None, column, "missing_column")
    assert v.message == f"The {column!r} column of {table} is required by the contract but missing."
