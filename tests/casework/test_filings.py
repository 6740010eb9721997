"""The regulator-format XML: built from an approved case, validated against the project's XSD, field by field."""

from __future__ import annotations

import json

import pytest
from casework_helpers import person, record, txn, write_audit
from lxml import etree

from amlscore.casework.filings import NS, FilingInvalid, large_value_report_xml, schema, suspicious_report_xml, validate
from amlscore.casework.ingest import ingest_audit

N = {"r": NS}


@pytest.fixture()
def approved(state, work):
    write_audit(state, [record(txn("T1", "C1", "2026-09-29T10:00:00Z", amount=49_900.0, direction="in"), 80),
                        record(txn("T2", "C1", "2026-09-30T11:30:00Z", amount=120_000.5, direction="out",
                                   counterparty_country="KY", counterparty_account="KY-778"), 88)])
    ingest_audit(work, state / "audit.sqlite")
    cid = work.store.db.execute("SELECT case_id FROM cases").fetchone()[0]
    with work.store.transaction() as db:
        db.execute("INSERT INTO customers VALUES ('C1', ?)", (json.dumps({
            "customer_type": "individual", "id_document_type": "resident_id", "nationality": "CN",
            "residence_country": "CN", "occupation_or_industry": "trader", "is_pep": False,
            "onboarded_at": "2019-05-01"}),))
    work.triage(cid, person("alice"))
    work.decide(cid, person("alice"), "suspicious", "Deposits just below the threshold, then a transfer offshore.",
                narrative="The officer's own words about C1.", typology="structuring",
                measures=("enhanced_due_diligence", "account_frozen"))
    work.approve(cid, person("bob"), filing_xml=lambda c, a: suspicious_report_xml(
        c, a, work.store.customer(c["customer_id"]), work.config))
    return cid


def test_the_approved_case_has_a_report_that_validates_against_the_xsd(work, approved):
    filing = work.store.filing(approved)
    xml = bytes(filing["xml"])
    assert schema("str").validate(etree.fromstring(xml))
    doc = etree.fromstring(xml)
    t = lambda path: doc.findtext(path, namespaces=N)  # noqa: E731
    assert t("r:ReportInfo/r:CaseId") == approved
    assert t("r:ReportInfo/r:PreparedBy") == "user:alice" and t("r:ReportInfo/r:ApprovedBy") == "user:bob"
    assert t("r:ReportInfo/r:Urgency") == "urgent"  # an account was frozen
    assert t("r:ReportInfo/r:Deadline") == "2026-" + work.store.case(approved)["due_date"][5:]
    assert t("r:ReportingInstitution/r:Code") == work.config.institution.code
    assert t("r:Subjects/r:Subject/r:CustomerId") == "C1"
    assert t("r:Subjects/r:Subject/r:SubjectType") == "individual"
    assert t("r:Subjects/r:Subject/r:Identification/r:Type") == "resident_id"
    assert t("r:Subjects/r:Subject/r:PoliticallyExposed") == "false"
    txns = doc.findall("r:Transactions/r:Transaction", namespaces=N)
    assert [x.findtext("r:TransactionId", namespaces=N) for x in txns] == ["T1", "T2"]
    assert [x.findtext("r:FundsFlag", namespaces=N) for x in txns] == ["01", "02"]  # received, paid
    assert [x.findtext("r:Amount", namespaces=N) for x in txns] == ["49900.00", "120000.50"]
    assert txns[1].findtext("r:Counterparty/r:Country", namespaces=N) == "KY"
    assert txns[1].findtext("r:Counterparty/r:Account", namespaces=N) == "KY-778"
    assert t("r:Suspicion/r:Description") == "The officer's own words about C1."  # the edited narrative
    assert t("r:Suspicion/r:Typology") == "structuring"
    assert [m.text for m in doc.findall("r:MeasuresTaken/r:Measure", namespaces=N)] == \
        ["enhanced_due_diligence", "account_frozen"]
    hist = [h.action for h in work.store.history(approved)]
    assert "filing_prepared" in hist


def test_the_xsd_refuses_a_report_missing_a_required_element(work, approved):
    doc = etree.fromstring(bytes(work.store.filing(approved)["xml"]))
    suspicion = doc.find("r:Suspicion", namespaces=N)
    suspicion.remove(suspicion.find("r:Description", namespaces=N))
    with pytest.raises(FilingInvalid, match="Description"):
        validate(etree.tostring(doc), "str")
    bad = etree.fromstring(bytes(work.store.filing(approved)["xml"]))
    bad.find("r:Transactions/r:Transaction/r:FundsFlag", namespaces=N).text = "03"
    with pytest.raises(FilingInvalid, match="FundsFlag"):
        validate(etree.tostring(bad), "str")


def test_a_not_suspicious_case_has_no_report(work, approved):
    case = dict(work.store.case(approved), decision="not_suspicious")
    with pytest.raises(FilingInvalid, match="not decided suspicious"):
        suspicious_report_xml(case, work.store.alerts_of(approved), None, work.config)


def test_large_value_report_validates(work):
    entries = [{"txn_id": "L1", "customer_id": "C9", "due_date": "2026-10-13",
                "txn": {"timestamp": "2026-09-30T02:00:00Z", "account_id": "A9", "direction": "in", "amount": 50_000,
                        "txn_type": "cash_deposit", "channel": "counter", "category": "cash", "threshold": 50_000,
                        "basis": "single"}}]
    xml = large_value_report_xml(entries, {"C9": {"customer_type": "corporate"}}, work.config, prepared_by="user:bob",
                                 report_id="LVR-1")
    doc = etree.fromstring(xml)
    assert schema("lvr").validate(doc)
    assert doc.findtext("r:Entries/r:Entry/r:Deadline", namespaces=N) == "2026-10-13"
    assert doc.findtext("r:Entries/r:Entry/r:Subject/r:SubjectType", namespaces=N) == "corporate"
