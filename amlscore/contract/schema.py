"""The input data contract, version 1.1, as data.

This module is the single place where the contract in ``docs/data-contract.md`` is written
down for code: table names, column names, types, value sets and which cells may be empty.
The validator (:mod:`amlscore.contract.validate`, with :mod:`~amlscore.contract.columns` and :mod:`~amlscore.contract.problems`), the loader (:mod:`amlscore.contract.load`) and the synthetic
bank (:mod:`synth`) all read it from here, so a change to the contract is one edit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CONTRACT_VERSION = "1.1"

ColumnKind = Literal[
    "text",  # free text, stripped; empty only when ``nullable``
    "category",  # one of ``values``
    "bool",  # the strings ``true`` / ``false`` (or a boolean column in Parquet)
    "date",  # ``YYYY-MM-DD``
    "timestamp",  # ISO 8601; without an offset it is UTC
    "decimal",  # a finite number, bounded by ``min_value``
    "integer",  # a whole number, bounded by ``min_value``
    "country",  # ISO 3166-1 alpha-2
]

CUSTOMER_TYPES = ("individual", "corporate")
OCCUPATIONS_OR_INDUSTRIES = (
    "casino",
    "lottery",
    "precious_metals",
    "arms",
    "real_estate",
    "art_antiques",
    "money_service",
    "import_export",
    "pawnshop",
    "auction",
    "offshore",
    "cash_intensive_retail",
    "entertainment",
    "intermediary",
    "state_organ",
    "soe",
    "listed_company",
    "salaried",
    "student",
    "retired",
    "self_employed",
    "farmer",
    "private_company",
    "other",
)
ID_DOCUMENT_TYPES = ("resident_id", "passport", "foreign_id", "hmt_permit", "business_license", "other")
ONBOARDING_CHANNELS = ("counter", "online", "agent", "intermediary")
DIRECTIONS = ("in", "out")
CHANNELS = ("online_banking", "mobile_banking", "phone_banking", "pos", "atm", "counter", "other")
TXN_TYPES = (
    "transfer",
    "cash_deposit",
    "cash_withdrawal",
    "purchase",
    "remittance",
    "bill_payment",
    "salary",
    "other",
)
COUNTERPARTY_TYPES = ("individual", "corporate", "unknown")
LABELS = ("suspicious", "not_suspicious")

# Channel-bound identifiers: on these channels only, empty on every other one. The session
# (ip_address, device_id) is required on ``out`` rows and may be empty on ``in`` rows.
IP_CHANNELS = ("online_banking", "mobile_banking")
TERMINAL_CHANNELS = ("pos", "atm")
NON_FACE_TO_FACE_CHANNELS = ("online_banking", "mobile_banking", "phone_banking", "pos", "atm")


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: ColumnKind
    description: str
    nullable: bool = False
    values: tuple[str, ...] | None = None
    unique: bool = False
    min_value: float | None = None
    min_inclusive: bool = True
    optional: bool = False  # the column may be absent from a file (it is then read as all empty)

    def value_rule(self) -> str:
        """What a non-empty cell must be, in words (e.g. ``a number > 0``): the first part of :meth:`rule`."""
        if self.kind == "category" and self.values:
            return "one of " + ", ".join(self.values)
        if self.kind == "bool":
            return "true or false"
        if self.kind == "date":
            return "a date YYYY-MM-DD"
        if self.kind == "timestamp":
            return "an ISO 8601 timestamp"
        if self.kind == "country":
            return "an ISO 3166-1 alpha-2 country code"
        if self.kind in ("decimal", "integer"):
            noun = "a number" if self.kind == "decimal" else "a whole number"
            if self.min_value is None:
                return noun
            op = ">=" if self.min_inclusive else ">"
            return f"{noun} {op} {self.min_value:g}"
        return "text"

    def rule(self) -> str:
        """The column's rule in words, as the validator quotes it."""
        parts: list[str] = [self.value_rule()]
        if self.unique:
            parts.append("unique")
        parts.append("may be empty" if self.nullable else "required")
        return ", ".join(parts)


@dataclass(frozen=True)
class TableSchema:
    """A contract table: its file stem, key column and columns in contract order."""

    name: str
    key: str
    columns: tuple[Column, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"table {self.name!r} has no column {name!r}")


CUSTOMERS = TableSchema(
    name="customers",
    key="customer_id",
    columns=(
        Column("customer_id", "text", "Customer identifier.", unique=True),
        Column("customer_type", "category", "Individual or corporate.", values=CUSTOMER_TYPES),
        Column("birth_or_incorporation_date", "date", "Birth date, or incorporation date for corporates.", nullable=True),
        Column("nationality", "country", "Nationality; country of registration for corporates.", nullable=True),
        Column("residence_country", "country", "Country of residence.", nullable=True),
        Column("home_region", "text", "Region where the account relationship is held, e.g. CN-62.", nullable=True),
        Column("occupation_or_industry", "category", "Occupation (individuals) or industry (corporates); other when unknown.",
               values=OCCUPATIONS_OR_INDUSTRIES),
        Column("id_document_type", "category", "Type of identity document.", nullable=True, values=ID_DOCUMENT_TYPES),
        Column("is_pep", "bool", "The customer, its controller or beneficial owner is a PEP or a close relative or associate of one.",
               nullable=True),
        Column("on_watchlist", "bool", "On a sanctions or AML monitoring list.", nullable=True),
        Column("onboarding_channel", "category", "How the relationship was opened.", nullable=True, values=ONBOARDING_CHANNELS),
        Column("agent_id", "text", "Person who opened or operates the account on the customer's behalf.", nullable=True),
        Column("phone", "text", "Phone number, possibly hashed.", nullable=True),
        Column("emergency_contact_phone", "text", "Emergency contact's phone.", nullable=True),
        Column("ownership_layers", "integer", "Layers of ownership (corporates).", nullable=True, min_value=0),
        Column("refused_cdd", "bool", "Refused customer due diligence.", nullable=True),
        Column("is_resident", "bool", "Resident for AML purposes.", nullable=True),
        Column("declared_annual_income", "decimal", "Declared annual income; annual turnover for corporates (CNY).", nullable=True, min_value=0),
        Column("onboarded_at", "date", "Date the relationship was opened.", nullable=True),
    ),
)

TRANSACTIONS = TableSchema(
    name="transactions",
    key="txn_id",
    columns=(
        Column("txn_id", "text", "Transaction identifier.", unique=True),
        Column("timestamp", "timestamp", "When the transaction happened (UTC when no offset is given)."),
        Column("customer_id", "text", "The customer, which must exist in customers."),
        Column("account_id", "text", "The customer's account."),
        Column("direction", "category", "Seen from the customer.", values=DIRECTIONS),
        Column("amount", "decimal", "Amount in CNY.", min_value=0, min_inclusive=False),
        Column("channel", "category", "Channel the transaction came through (on an in row, the one the money arrived "
               "through); other when not named by the contract or not known.", values=CHANNELS),
        Column("txn_type", "category", "Kind of transaction.", values=TXN_TYPES),
        Column("counterparty_id", "text", "The other customer's customer_id when it banks here.", nullable=True),
        Column("counterparty_type", "category", "Kind of counterparty.", values=COUNTERPARTY_TYPES),
        Column("counterparty_country", "country", "Counterparty's country.", nullable=True),
        Column("ip_address", "text", "The customer's own session IP; required on out rows of online and mobile banking, "
               "may be empty on their in rows, empty on every other channel.", nullable=True),
        Column("ip_country", "country", "Country of the client IP.", nullable=True),
        Column("ip_region", "text", "Region of the client IP.", nullable=True),
        Column("device_id", "text", "The customer's own session device; as ip_address.", nullable=True),
        Column("terminal_id", "text", "POS or ATM terminal; POS and ATM only, else empty.", nullable=True),
        Column("terminal_region", "text", "Region of the terminal.", nullable=True),
        Column("operator_id", "text", "Empty unless someone other than the customer executed it.", nullable=True),
        Column("counterparty_account", "text", "The other side's account number, whether or not it banks here.",
               nullable=True, optional=True),
    ),
    notes=(
        "A transfer between two customers of the bank appears twice: out on the payer and in on the payee, "
        "with the same timestamp and distinct txn_ids.",
        "The channel of an in row is the channel the money arrived through; the in row carries no session of the "
        "payer's (ip_address and device_id empty, or the payee's own session).",
    ),
)

REPORTS = TableSchema(
    name="reports",
    key="report_id",
    columns=(
        Column("report_id", "text", "Report identifier.", unique=True),
        Column("customer_id", "text", "The reported customer, which must exist in customers."),
        Column("txn_id", "text", "The reported transaction; must exist in transactions when given.", nullable=True),
        Column("period_start", "date", "Start of the reported period, used when txn_id is empty.", nullable=True),
        Column("period_end", "date", "End of the reported period, used when txn_id is empty.", nullable=True),
        Column("report_date", "date", "When the report was filed; on or after the day (China Standard Time) of the activity it reports."),
        Column("label", "category", "The disposition.", values=LABELS),
        Column("typology", "text", "Laundering typology.", nullable=True),
    ),
)

TABLES: tuple[TableSchema, ...] = (CUSTOMERS, TRANSACTIONS, REPORTS)
TABLES_BY_NAME: dict[str, TableSchema] = {t.name: t for t in TABLES}
FILE_SUFFIXES = (".parquet", ".csv")

# Outside the contract: the synthetic bank's answer key, written beside the contract files.
GROUND_TRUTH_FILE = "ground_truth.csv"
