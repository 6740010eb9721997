"""The casework pages over HTTP (Starlette's TestClient): sign-in, the flow, four eyes, and what a channel credential sees."""

from __future__ import annotations

import re

import pytest
from casework_helpers import PASSWORDS, basic, record, txn, write_audit
from lxml import etree
from starlette.routing import Route
from starlette.testclient import TestClient

from amlscore.casework.filings import schema
from amlscore.casework.ingest import ingest_audit
from amlscore.casework.web import create_app

SECRET_WORDS = ("CUST-SECRET", "TX-1", "83.5", "Large cash", "Cash deposited", "Risk level", "HK")  # case data


@pytest.fixture()
def site(state, work, tmp_path):
    write_audit(state, [record(txn("TX-1", "CUST-SECRET", "2026-09-29T10:00:00Z"), 83.5)])
    ingest_audit(work, state / "audit.sqlite")
    case_id = work.store.db.execute("SELECT case_id FROM cases").fetchone()[0]
    app = create_app(state, tmp_path / "data")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    outer = Starlette(routes=[Mount("/cases", app=app)])
    with TestClient(outer, base_url="http://testserver") as client:
        yield {"client": client, "case": case_id, "app": app}
    app.state.site.close()


def signin(client, name):
    client.cookies.clear()
    r = client.post("/cases/signin", data={"name": name, "password": PASSWORDS[name], "next": ""},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    return client


def csrf(client, path):
    html = client.get(path).text
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)


def test_sign_in_then_the_queue_shows_the_case(site):
    c = site["client"]
    r = c.get("/cases/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/cases/signin")
    bad = c.post("/cases/signin", data={"name": "alice", "password": "wrong-password"})
    assert bad.status_code == 401 and "Unknown name or wrong password" in bad.text
    signin(c, "alice")
    page = c.get("/cases/")
    assert page.status_code == 200 and site["case"] in page.text and "83.5" in page.text
    assert "script" not in page.text.lower() and "http://" not in page.text and "https://" not in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]


def test_one_alert_from_queue_to_filed_xml_with_four_eyes(site, tmp_path):
    c, cid = site["client"], site["case"]
    signin(c, "alice")
    token = csrf(c, f"/cases/case/{cid}")
    assert c.post(f"/cases/case/{cid}/triage", data={"csrf": "forged"}).status_code == 403  # CSRF
    assert c.post(f"/cases/case/{cid}/triage", data={"csrf": token}, follow_redirects=False).status_code == 303
    page = c.get(f"/cases/case/{cid}").text
    draft = re.search(r'<textarea name="narrative" id="narrative">(.*?)</textarea>', page, re.S).group(1)
    assert "CUST-SECRET made 1 transaction" in draft
    r = c.post(f"/cases/case/{cid}/decide", data={
        "csrf": token, "decision": "suspicious", "reason": "cash far above the profile", "typology": "structuring",
        "measures": ["continued_monitoring"], "narrative": "Officer's narrative for the filing."}, follow_redirects=False)
    assert r.status_code == 303
    own = c.get(f"/cases/case/{cid}").text
    assert 'id="own-decision"' in own and 'id="approve"' not in own
    r = c.post(f"/cases/case/{cid}/approve", data={"csrf": token})
    assert r.status_code == 403 and "may not approve" in r.text  # an analyst, and their own decision

    signin(c, "bob")
    token = csrf(c, f"/cases/case/{cid}")
    assert c.post(f"/cases/case/{cid}/approve", data={"csrf": token}, follow_redirects=False).status_code == 303
    xml = c.get(f"/cases/case/{cid}/filing.xml")
    assert xml.status_code == 200 and xml.headers["content-type"].startswith("application/xml")
    doc = etree.fromstring(xml.content)
    assert schema("str").validate(doc)
    assert doc.findtext("{urn:amlscore:pboc:report:1}Suspicion/{urn:amlscore:pboc:report:1}Description") == \
        "Officer's narrative for the filing."
    assert c.post(f"/cases/case/{cid}/file", data={"csrf": token, "reference": "R-1"},
                  follow_redirects=False).status_code == 303
    history = c.get(f"/cases/case/{cid}").text
    for who, action in (("user:alice", "triage"), ("user:alice", "decide"), ("user:bob", "approve"),
                        ("user:bob", "download"), ("user:bob", "file"), ("user:alice", "view")):
        assert re.search(rf"{who} <span class=\"note\">\w+</span></td><td>{action}</td>", history), (who, action)
    assert (tmp_path / "data" / "feedback" / "casework.csv").is_file()  # the disposition, for training


def test_a_reviewer_who_decided_cannot_approve_over_http(site):
    c, cid = site["client"], site["case"]
    signin(c, "bob")
    token = csrf(c, f"/cases/case/{cid}")
    c.post(f"/cases/case/{cid}/triage", data={"csrf": token})
    c.post(f"/cases/case/{cid}/decide", data={"csrf": token, "decision": "not_suspicious", "reason": "salary"})
    r = c.post(f"/cases/case/{cid}/approve", data={"csrf": token})
    assert r.status_code == 403 and "Four eyes" in r.text


MOVES = ("triage", "assign", "comment", "decide", "approve", "send_back", "file")


def _routes(app):
    """Every (method, path) of the app, each move of a case on its own."""
    for route in app.routes:
        assert isinstance(route, Route)
        path = route.path.replace("{case_id}", "CASE").replace("{name}", "alice")
        for method in sorted(route.methods - {"HEAD"}):
            for move in (MOVES if "{move}" in path else ("",)):
                yield method, path.replace("{move}", move)


@pytest.mark.parametrize("credential", ["channel-key", "channel-person-basic", "channel-person-signin", "none"])
def test_no_route_gives_a_channel_credential_any_case_data(site, credential):
    """Route by route: a shared channel key, a channel person (Basic or sign-in) and no credential see nothing."""
    c, cid = site["client"], site["case"]
    headers = {}
    if credential == "channel-key":
        headers = {"Authorization": "Bearer test-channel-key"}
    elif credential == "channel-person-basic":
        headers = basic("gate")
    c.cookies.clear()
    if credential == "channel-person-signin":
        r = c.post("/cases/signin", data={"name": "gate", "password": PASSWORDS["gate"]})
        assert r.status_code == 403 and "channel role may not" in r.text
        assert "aml_cases" not in c.cookies
    checked = 0
    for method, path in _routes(site["app"]):
        if path in ("/signin", "/signout"):
            continue
        url = "/cases" + path.replace("CASE", cid)
        r = c.request(method, url, headers=headers, data={"csrf": "x"}, follow_redirects=False)
        assert r.status_code in (401, 403, 303), (method, url, r.status_code)
        if r.status_code == 303:
            assert credential in ("none", "channel-person-signin") and "/signin" in r.headers["location"]
        for word in SECRET_WORDS + (cid,):
            assert word not in r.text, (method, url, word)
        checked += 1
    assert checked == 7 + len(MOVES)  # every route but sign-in and sign-out
    # and the sign-in page itself holds nothing
    assert all(w not in c.get("/cases/signin").text for w in SECRET_WORDS[:3])


def test_a_shared_compliance_key_names_no_person_and_cannot_open_the_pages(site):
    r = site["client"].get("/cases/", headers={"X-API-Key": "test-compliance-key"})
    assert r.status_code == 403 and "names no one" in r.text


def test_admin_route_creates_and_revokes_people_and_revocation_ends_sessions(site):
    c = site["client"]
    c.cookies.clear()
    r = c.post("/cases/admin/users", json={"name": "frank", "role": "analyst"}, headers=basic("root"))
    assert r.status_code == 201
    password = r.json()["password"]
    assert c.post("/cases/admin/users", json={"name": "x1", "role": "analyst"}, headers=basic("bob")).status_code == 403
    c.post("/cases/signin", data={"name": "frank", "password": password})
    assert c.get("/cases/").status_code == 200
    r = c.post("/cases/admin/users/frank/revoke", json={}, headers=basic("root"))
    assert r.status_code == 200 and r.json()["revoked"] is True
    assert c.get("/cases/", follow_redirects=False).status_code == 303  # the session ended
    listing = c.get("/cases/admin/users", headers={**basic("root"), "Accept": "application/json"}).json()
    assert next(u for u in listing["users"] if u["name"] == "frank")["revoked_by"] == "user:root"
