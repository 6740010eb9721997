"""Small valid contract tables, as raw strings, and helpers to break them and write them out.

A module with a distinctive name (not conftest) so that tests can import it directly.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from amlscore.contract.schema import TABLES_BY_NAME

Tables = dict[str, pd.DataFrame]


def make_frame(schema_name: str, rows: list[dict[str, str]]) -> pd.DataFrame:
    """A string frame as a CSV reader gives it: every contract column, '' for an empty cell."""
    columns = TABLES_BY_NAME[schema_name].column_names
    unknown = {k for r in rows for k in r} - set(columns)
    assert not unknown, f"test rows name unknown columns {unknown}"
    return pd.DataFrame([[r.get(c, "") for c in columns] for r in rows], columns=list(columns), dtype=object)


def customer_row(cid: str, **cells: str) -> dict[str, str]:
    base = dict(
        customer_id=cid, customer_type="individual", birth_or_incorporation_date="1980-05-17", nationality="CN",
        residence_country="CN", home_region="CN-62", occupation_or_industry="salaried", id_document_type="resident_id",
        is_pep="false", on_watchlist="false", onboarding_channel="counter", phone="13800000001", refused_cdd="false",
        is_resident="true", declared_annual_income="120000", onboarded_at="2020-01-02",
    )
    return base | cells


def txn_row(tid: str, ts: str, cid: str, channel: str, **cells: str) -> dict[str, str]:
    base = dict(
        txn_id=tid, timestamp=ts, customer_id=cid, account_id=f"A-{cid}", direction="out", amount="100",
        channel=channel, txn_type="transfer", counterparty_type="unknown",
    )
    if channel in ("online_banking", "mobile_banking"):
        base |= dict(ip_address=f"10.0.0.{tid[1:]}", device_id=f"D-{tid}")
    if channel in ("pos", "atm"):
        base |= dict(terminal_id=f"TERM-{tid}")
    return base | cells


def valid_tables() -> Tables:
    """Three customers (one with the id 'NA'), a transaction on every channel, two kinds of report.

    Row numbers used by the tests: transactions row 1 is T6 (pos), row 2 T1 (online_banking),
    row 3 T2, row 4 T3 (mobile_banking), row 5 T4 (phone_banking), row 6 T5 (atm), row 7 T7 (counter).
    """
    customers = make_frame("customers", [
        customer_row("C1", emergency_contact_phone="13800000002"),
        customer_row("C2", customer_type="corporate", birth_or_incorporation_date="2011-03-01", nationality="HK",
                  occupation_or_industry="import_export", id_document_type="business_license", is_pep="true",
                  onboarding_channel="agent", agent_id="AG7", phone="h:9f2c", ownership_layers="3",
                  declared_annual_income="5000000.50", onboarded_at="2021-06-30"),
        customer_row("NA", birth_or_incorporation_date="", nationality="NA", residence_country="NA", on_watchlist="true",
                  onboarding_channel="online", refused_cdd="true", is_resident="false", declared_annual_income="",
                  occupation_or_industry="student", id_document_type="passport", onboarded_at="2023-12-31"),
    ])
    transactions = make_frame("transactions", [
        txn_row("T6", "2024-03-02T09:00:00+08:00", "C1", "pos", amount="88.8", txn_type="purchase",
             counterparty_type="corporate", counterparty_country="CN", terminal_region="CN-62"),
        txn_row("T1", "2024-03-01T10:00:00Z", "C1", "online_banking", amount="5000", counterparty_id="C2",
             counterparty_type="corporate", ip_country="CN", ip_region="CN-62"),
        txn_row("T2", "2024-03-01T10:00:00Z", "C2", "online_banking", direction="in", amount="5000", counterparty_id="C1",
             counterparty_type="individual", ip_country="CN"),
        txn_row("T3", "2024-03-01 12:30:00", "C2", "mobile_banking", amount="1e4", txn_type="remittance",
             counterparty_country="NA", ip_country="HK"),
        txn_row("T4", "2024-03-03T23:59:59.5-05:00", "NA", "phone_banking", direction="in", amount="0.01",
             txn_type="other", operator_id="OP1"),
        txn_row("T5", "2024-03-04T08:15", "C1", "atm", amount="2000", txn_type="cash_withdrawal"),
        txn_row("T7", "2024-03-05T11:00:00+0800", "C2", "counter", direction="in", amount="300000",
             txn_type="cash_deposit", counterparty_type="individual"),
    ])
    reports = make_frame("reports", [
        dict(report_id="R1", customer_id="C2", txn_id="T3", report_date="2024-03-20", label="suspicious", typology="fraud"),
        dict(report_id="R2", customer_id="NA", period_start="2024-03-01", period_end="2024-03-04",
             report_date="2024-03-04", label="not_suspicious"),
    ])
    return {"customers": customers, "transactions": transactions, "reports": reports}


def write_csv_tables(tables: Tables, folder: Path) -> Path:
    """Write raw string tables as CSV files (an empty cell is nothing between the commas)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def append_row(tables: Tables, name: str, row: dict[str, str]) -> None:
    """Append one raw row (missing cells empty) to a table, in place."""
    tables[name] = pd.concat([tables[name], make_frame(name, [row])], ignore_index=True)
