"""One alert from score to filed XML through the real service: the API and the pages mounted on /cases.

The service runs in process (``AmlScoring.to_asgi()`` with the serving tests' stand-in model set),
composed as ``amlscore serve`` composes it (:mod:`amlscore.cli.service_app`). A named analyst scores
with her own credential (the audit record names her), the alert is ingested from the audit log,
decided by the analyst, approved by a reviewer and filed; a channel credential sees no risk level,
explanation or case datum on any route.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from casework_helpers import PASSWORDS, add_people, basic
from lxml import etree

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))

from serving_fakes import FakeLoader  # noqa: E402
from serving_helpers import CHANNEL, new_txn, start_client  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def service(tmp_path_factory, tiny_bank):
    import os

    import amlscore.cli.service_app  # noqa: F401 - mounts the pages on the service, as `amlscore serve` does

    saved = dict(os.environ)
    state = tmp_path_factory.mktemp("svcstate")
    add_people(state)
    client = start_client(tiny_bank, state, FakeLoader())
    try:
        yield {"client": client, "state": state}
    finally:
        client.__exit__(None, None, None)
        os.environ.clear()
        os.environ.update(saved)


def test_one_alert_from_score_to_filed_xml(service, tiny_bank):
    from amlscore.casework.filings import schema
    from amlscore.cli import run
    from amlscore.contract import load_dataset
    from amlscore.core.audit import AuditLog

    c, state = service["client"], service["state"]
    customer = str(load_dataset(tiny_bank).customers["customer_id"].iloc[0])
    t = new_txn(customer, "E2E-1", amount=900_000.0, txn_type="transfer", channel="online_banking",
                counterparty_country="KY", counterparty_id="CP-77")
    r = c.post("/v1/score", json={"transaction": t}, headers=basic("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["alert"] is True and "customer_risk" in body  # an analyst sees the full decision
    log = AuditLog(state / "audit.sqlite")
    try:
        rec = log.by_txn("E2E-1")
        assert (rec.caller_key_id, rec.caller_role) == ("user:alice", "analyst")  # the person, named
    finally:
        log.close()
    channel = c.post("/v1/score", json={"transaction": new_txn(customer, "E2E-2", amount=800_000.0)},
                     headers=basic("gate")).json()
    assert "customer_risk" not in channel and "explanation" not in channel and "components" not in channel
    assert c.post("/v1/explain", json={"request_id": body["request_id"]}, headers=basic("gate")).status_code == 403

    assert run(["cases", "ingest", "--state", str(state), "--data", str(tiny_bank)]) == 0

    c.cookies.clear()
    c.post("/cases/signin", data={"name": "alice", "password": PASSWORDS["alice"]})
    queue = c.get("/cases/?sort=score").text
    case_id = re.search(r'href="/cases/case/(C[0-9A-Z]+)"', queue).group(1)
    page = c.get(f"/cases/case/{case_id}").text
    assert "E2E-1" in page or "E2E-2" in page
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    c.post(f"/cases/case/{case_id}/triage", data={"csrf": token})
    c.post(f"/cases/case/{case_id}/decide", data={"csrf": token, "decision": "suspicious", "reason": "offshore",
                                                 "narrative": "Funds moved offshore the day they arrived."})
    c.cookies.clear()
    c.post("/cases/signin", data={"name": "carol", "password": PASSWORDS["carol"]})
    page = c.get(f"/cases/case/{case_id}").text
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert c.post(f"/cases/case/{case_id}/approve", data={"csrf": token}, follow_redirects=False).status_code == 303
    assert c.post(f"/cases/case/{case_id}/file", data={"csrf": token}, follow_redirects=False).status_code == 303
    xml = c.get(f"/cases/case/{case_id}/filing.xml").content
    assert schema("str").validate(etree.fromstring(xml))
    assert b"E2E-1" in xml and b"user:alice" in xml and b"user:carol" in xml

    for path in ("/cases/", f"/cases/case/{case_id}", f"/cases/case/{case_id}/filing.xml"):
        for headers in (CHANNEL, basic("gate")):
            r = c.get(path, headers=headers)
            assert r.status_code == 403 and case_id not in r.text and "E2E" not in r.text
    assert run(["audit", "verify", "--state", str(state)]) == 0
    assert run(["cases", "verify", "--state", str(state)]) == 0
