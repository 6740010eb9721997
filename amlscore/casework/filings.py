"""Regulator-format reports: the suspicious-transaction report of an approved case, large-value reports.

Each report is built as XML in the namespace ``urn:amlscore:pboc:report:1`` and validated against
the project's own XSD (``amlscore/casework/schemas/str.xsd``, ``lvr.xsd``) before it is returned: an
invalid report raises :class:`FilingInvalid` listing every schema error, and nothing is frozen.
docs/casework.md maps each element to the data elements of PBoC Order 2016 No. 3.

The narrative (``Suspicion/Description``) is the officer's text as edited on the decision form,
prefilled by :func:`amlscore.casework.narrative.draft_narrative`.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
from lxml import etree

from amlscore.casework.config import CaseworkConfig
from amlscore.casework.deadlines import bank_day
from amlscore.contract.errors import AmlError

NS = "urn:amlscore:pboc:report:1"
SCHEMAS = Path(__file__).parent / "schemas"
_FLAG = {"in": "01", "out": "02"}  # 资金收付标志: 01 received, 02 paid


class FilingInvalid(AmlError):
    """A report does not validate against its XSD (every error listed)."""


@lru_cache(maxsize=2)
def schema(kind: str) -> etree.XMLSchema:
    """The XSD of a report kind (``str`` or ``lvr``)."""
    return etree.XMLSchema(etree.parse(str(SCHEMAS / f"{kind}.xsd")))


def validate(xml: bytes, kind: str) -> None:
    """Raise :class:`FilingInvalid` unless ``xml`` validates against the ``kind`` schema."""
    s = schema(kind)
    doc = etree.fromstring(xml)
    if not s.validate(doc):
        errors = [f"line {e.line}: {e.message}" for e in s.error_log]
        raise FilingInvalid(f"The {kind.upper()} report does not validate against {kind}.xsd:\n" + "\n".join(errors))


def _el(parent: etree._Element, name: str, text: Any = None) -> etree._Element:
    e = etree.SubElement(parent, f"{{{NS}}}{name}")
    if text is not None:
        e.text = str(text)
    return e


def _opt(parent: etree._Element, name: str, value: Any) -> None:
    """An optional element, left out when the value is empty."""
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() in ("", "None", "nan"):
        return
    _el(parent, name, value)


def _time(value: Any) -> str:
    t = pd.Timestamp(value)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _bool(value: Any) -> str | None:
    if value is None or str(value).strip() == "":
        return None
    return "true" if str(value).strip().lower() in ("true", "1", "yes") else "false"


def _subject(parent: etree._Element, customer_id: str, facts: dict[str, Any] | None) -> None:
    s = _el(parent, "Subject")
    facts = facts or {}
    _el(s, "CustomerId", customer_id)
    ctype = str(facts.get("customer_type") or "unknown")
    _el(s, "SubjectType", ctype if ctype in ("individual", "corporate") else "unknown")
    if facts.get("id_document_type"):
        ident = _el(s, "Identification")
        _el(ident, "Type", facts["id_document_type"])
        _opt(ident, "Number", facts.get("id_document_number"))
    _opt(s, "Nationality", facts.get("nationality"))
    _opt(s, "ResidenceCountry", facts.get("residence_country"))
    _opt(s, "OccupationOrIndustry", facts.get("occupation_or_industry"))
    _opt(s, "Phone", facts.get("phone"))
    _opt(s, "PoliticallyExposed", _bool(facts.get("is_pep")))
    if facts.get("onboarded_at"):
        _el(s, "OnboardedOn", pd.Timestamp(facts["onboarded_at"]).date().isoformat())


def _transaction(parent: etree._Element, txn: dict[str, Any]) -> None:
    t = _el(parent, "Transaction")
    _el(t, "TransactionId", txn["txn_id"])
    _el(t, "Time", _time(txn["timestamp"]))
    _el(t, "Account", txn.get("account_id") or txn.get("customer_id"))
    _el(t, "FundsFlag", _FLAG.get(str(txn.get("direction")), "02"))
    _el(t, "Amount", f"{float(txn['amount']):.2f}")
    _el(t, "Currency", "CNY")  # the contract's amounts are in CNY (docs/data-contract.md)
    _el(t, "TransactionType", txn.get("txn_type") or "other")
    _el(t, "Channel", txn.get("channel") or "other")
    cp = _el(t, "Counterparty")
    _opt(cp, "Id", txn.get("counterparty_id"))
    _opt(cp, "Type", txn.get("counterparty_type"))
    _opt(cp, "Account", txn.get("counterparty_account"))
    _opt(cp, "Country", txn.get("counterparty_country"))
    location = {k: txn.get(k) for k in ("ip_address", "ip_country", "terminal_id", "terminal_region")}
    if any(v not in (None, "") for v in location.values()):
        loc = _el(t, "Location")
        _opt(loc, "IpAddress", location["ip_address"])
        _opt(loc, "IpCountry", location["ip_country"])
        _opt(loc, "TerminalId", location["terminal_id"])
        _opt(loc, "Region", location["terminal_region"])


def _institution(parent: etree._Element, config: CaseworkConfig) -> None:
    i = _el(parent, "ReportingInstitution")
    _el(i, "Name", config.institution.name)
    _el(i, "Code", config.institution.code)
    _el(i, "BranchCode", config.institution.branch_code)
    _el(i, "Contact", config.institution.contact)


def suspicious_report_xml(case: dict[str, Any], alerts: list[dict[str, Any]], customer: dict[str, Any] | None,
                          config: CaseworkConfig, *, report_id: str | None = None,
                          report_date: dt.date | None = None) -> bytes:
    """The suspicious-transaction report of an approved (or approving) case, validated against str.xsd."""
    if case.get("decision") != "suspicious":
        raise FilingInvalid(f"Case {case['case_id']} was not decided suspicious: it has no suspicious-transaction report.")
    root = etree.Element(f"{{{NS}}}SuspiciousTransactionReport", nsmap={None: NS})
    root.set("version", "1")
    info = _el(root, "ReportInfo")
    _el(info, "ReportId", report_id or f"STR-{case['case_id']}")
    _el(info, "CaseId", case["case_id"])
    _el(info, "ReportDate", (report_date or bank_day(pd.Timestamp.now(tz="UTC"))).isoformat())
    _el(info, "DecisionDate", bank_day(case["decided_at"]).isoformat())
    _el(info, "Deadline", case["due_date"])
    _el(info, "Urgency", "urgent" if "account_frozen" in (case.get("measures") or "") else "normal")
    _el(info, "PreparedBy", f"user:{case['decided_by']}")
    _el(info, "ApprovedBy", f"user:{case['approved_by']}")
    _institution(root, config)
    subjects = _el(root, "Subjects")
    _subject(subjects, case["customer_id"], customer)
    accounts = _el(root, "Accounts")
    seen: set[str] = set()
    for a in alerts:
        acc = str(a["txn"].get("account_id") or a["customer_id"])
        if acc not in seen:
            seen.add(acc)
            e = _el(accounts, "Account")
            _el(e, "AccountId", acc)
            _el(e, "CustomerId", a["customer_id"])
    txns = _el(root, "Transactions")
    for a in alerts:
        _transaction(txns, {**a["txn"], "txn_id": a["alert_id"], "timestamp": a["txn"].get("timestamp", a["txn_time"])})
    s = _el(root, "Suspicion")
    _opt(s, "Typology", case.get("typology"))
    _el(s, "Reason", case["reason"])
    _el(s, "Description", case["narrative"])
    versions = sorted({a["model_version"] for a in alerts if a.get("model_version")})
    _el(s, "DetectedBy", "amlscore suspicion score" + (f" (model set version {', '.join(versions)})" if versions else ""))
    m = _el(root, "MeasuresTaken")
    for code in [c for c in (case.get("measures") or "").split(",") if c]:
        _el(m, "Measure", code)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate(xml, "str")
    return xml


def large_value_report_xml(entries: list[dict[str, Any]], customers: dict[str, dict[str, Any]],
                           config: CaseworkConfig, *, prepared_by: str, report_id: str,
                           report_date: dt.date | None = None) -> bytes:
    """A large-value report of transactions (rows of ``large_value`` with their transaction), validated."""
    if not entries:
        raise FilingInvalid("A large-value report needs at least one transaction.")
    root = etree.Element(f"{{{NS}}}LargeValueTransactionReport", nsmap={None: NS})
    root.set("version", "1")
    info = _el(root, "ReportInfo")
    _el(info, "ReportId", report_id)
    _el(info, "ReportDate", (report_date or bank_day(pd.Timestamp.now(tz="UTC"))).isoformat())
    _el(info, "PreparedBy", prepared_by)
    _institution(root, config)
    out = _el(root, "Entries")
    for e in entries:
        entry = _el(out, "Entry")
        txn = e["txn"]
        _subject(entry, e["customer_id"], customers.get(e["customer_id"]))
        _transaction(entry, {**txn, "txn_id": e["txn_id"]})
        _el(entry, "Category", txn.get("category") or "unknown")
        _el(entry, "Threshold", f"{float(txn.get('threshold') or 0.01):.2f}")
        _el(entry, "Basis", txn.get("basis") if txn.get("basis") in ("single", "daily_total") else "single")
        _el(entry, "Deadline", e["due_date"])
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    validate(xml, "lvr")
    return xml
