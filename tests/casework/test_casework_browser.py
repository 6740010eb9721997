"""The casework pages in a real browser: Debian's headless Chromium, driven through chromedriver.

Sign in, triage an alert, decide, see that one's own decision cannot be approved, approve as a
second person, download the XML (validated against the XSD); a channel person and a channel API key
cannot open the pages. Skipped, with the reason, when Chromium or chromedriver is not installed
(``make browser`` installs them as root).
"""

from __future__ import annotations

import pytest
from casework_helpers import PASSWORDS, record, txn, write_audit
from chromium import MISSING, Browser, LocalServer
from lxml import etree

pytestmark = [pytest.mark.slow, pytest.mark.skipif(MISSING is not None, reason=MISSING or "")]


@pytest.fixture()
def server(state, work, tmp_path):
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from amlscore.casework.ingest import ingest_audit
    from amlscore.casework.web import create_app

    write_audit(state, [record(txn("TX-B1", "CUST-B", "2026-09-29T10:00:00Z"), 88.2),
                        record(txn("TX-B2", "CUST-B", "2026-10-02T10:00:00Z", direction="out",
                                   counterparty_country="KY"), 91.0)])
    ingest_audit(work, state / "audit.sqlite")
    app = create_app(state, tmp_path / "data")
    with LocalServer(Starlette(routes=[Mount("/cases", app=app)])) as s:
        yield s
    app.state.site.close()


def _sign_in(b: Browser, base: str, name: str) -> None:
    b.get(f"{base}/cases/signin")
    b.type("#name", name)
    b.type("#password", PASSWORDS[name])
    b.submit("#signin")


def _problems(b: Browser) -> list[dict]:
    return [m for m in b.console() if m.get("level") == "SEVERE"]


def test_triage_decide_approve_as_a_second_person_and_download_the_filing(server, tmp_path):
    from amlscore.casework.filings import schema

    base = server.base
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with Browser(downloads, tmp_path / "profile") as b:
        b.get(f"{base}/cases/")
        assert "/cases/signin" in b.url  # not signed in: the sign-in page
        _sign_in(b, base, "alice")
        assert b.url.rstrip("/").endswith("/cases")
        assert "CUST-B" in b.text("#queue")
        b.submit("#queue a.case-link")
        assert b.text("#status") == "open"
        b.submit("#triage")
        assert b.text("#status") == "in_review"
        b.click("#decision-suspicious")
        b.type("#reason", "Cash in, then straight out to the Cayman Islands")
        b.type("#typology", "pass_through")
        b.type("#narrative", "CUST-B received cash and sent it offshore within three days.")
        b.submit("#decide")
        assert b.text("#status") == "decided"
        assert b.exists("#own-decision") and not b.exists("#approve")  # never one's own approval
        assert _problems(b) == []
        b.submit("header form button")  # sign out

        _sign_in(b, base, "bob")
        b.submit("#queue a.case-link")
        b.submit("#approve")
        assert b.text("#status") == "approved"
        assert "bob" in b.text("#approved")
        b.click("#download")
        xml = b.wait_for_download(".xml")
        doc = etree.parse(str(xml))
        assert schema("str").validate(doc)
        assert "sent it offshore" in xml.read_text(encoding="utf-8")
        b.submit("#file")
        assert b.text("#status") == "filed"
        assert "user:bob" in b.text("#history") and "user:alice" in b.text("#history")
        assert _problems(b) == []


def test_a_channel_person_and_a_channel_key_cannot_open_the_pages(server, tmp_path):
    base = server.base
    with Browser(tmp_path, tmp_path / "profile") as b:
        _sign_in(b, base, "gate")
        assert "channel role may not" in b.text("#signin-error")
        b.get(f"{base}/cases/")
        assert "/cases/signin" in b.url and "CUST-B" not in b.source
        b.headers({"Authorization": "Bearer aml_channel_anykey"})
        b.get(f"{base}/cases/")
        assert "names no one" in b.text("#error") and "CUST-B" not in b.source
