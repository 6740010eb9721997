"""Screenshots of the casework pages for the README, taken by Debian's headless Chromium.

Usage::

    .venv/bin/python benchmarks/casework_screenshots.py [--out docs/img]

Builds a small store in a temporary state folder (alerts of a few customers as the audit log would
hold them, people, one case decided and waiting for approval), serves the pages on 127.0.0.1 and
saves ``casework_queue.png`` and ``casework_case.png``. Needs ``chromium`` and ``chromedriver``
(``make browser``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "casework"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()

    from casework_helpers import PASSWORDS, add_people, open_work, person, record, txn, write_audit
    from chromium import MISSING, Browser, LocalServer
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from amlscore.casework.ingest import ingest_audit
    from amlscore.casework.web import create_app

    if MISSING:
        raise SystemExit(MISSING)
    tmp = Path(tempfile.mkdtemp(prefix="casework-shots-"))
    state = tmp / "state"
    state.mkdir()
    add_people(state)
    records = []
    plan = [("C000417", "2026-11-23T02:10:00Z", 49_800.0, "in", 91.2, "high"),
            ("C000417", "2026-11-24T03:40:00Z", 49_500.0, "in", 88.4, "high"),
            ("C000417", "2026-11-25T06:05:00Z", 146_000.0, "out", 94.7, "high"),
            ("C001932", "2026-11-20T09:00:00Z", 620_000.0, "out", 83.1, "medium_high"),
            ("C000088", "2026-11-30T01:30:00Z", 12_000.0, "in", 71.5, "medium"),
            ("C002210", "2026-11-12T08:15:00Z", 300_000.0, "out", 97.9, "high"),
            ("C000731", "2026-12-02T05:45:00Z", 75_000.0, "in", 66.0, "low")]
    for k, (cid, when, amount, direction, score, level) in enumerate(plan):
        t = txn(f"T{k + 1:06d}", cid, when, amount=amount, direction=direction,
                txn_type="cash_deposit" if direction == "in" else "transfer",
                channel="counter" if direction == "in" else "online_banking",
                counterparty_country="HK" if direction == "out" else "CN")
        records.append(record(t, score, level=level))
    write_audit(state, records)
    work = open_work(state)
    ingest_audit(work, state / "audit.sqlite")
    import pandas as pd

    from amlscore.casework.ingest import store_customers

    store_customers(work, pd.DataFrame([{
        "customer_id": "C000417", "customer_type": "individual", "occupation_or_industry": "wholesale_trade",
        "nationality": "CN", "residence_country": "CN", "home_region": "440300", "id_document_type": "resident_id",
        "is_pep": False, "on_watchlist": False, "onboarding_channel": "counter", "onboarded_at": "2024-03-18",
        "declared_annual_income": 180000.0}]), {"C000417"})
    cases = dict(work.store.db.execute("SELECT customer_id, case_id FROM cases").fetchall())
    work.triage(cases["C001932"], person("dave"))
    work.triage(cases["C000417"], person("alice"))
    work.comment(cases["C000417"], person("alice"), "Called the customer: no invoice for the onward transfer.")
    work.store.close()

    app = create_app(state, tmp / "data")
    args.out.mkdir(parents=True, exist_ok=True)
    with LocalServer(Starlette(routes=[Mount("/cases", app=app)])) as server, \
            Browser(tmp / "downloads", tmp / "profile") as b:
        b.get(f"{server.base}/cases/signin")
        b.type("#name", "alice")
        b.type("#password", PASSWORDS["alice"])
        b.submit("#signin")
        b.screenshot(args.out / "casework_queue.png")
        b.get(f"{server.base}/cases/case/{cases['C000417']}")
        b.screenshot(args.out / "casework_case.png")
    app.state.site.close()
    print(f"wrote {args.out / 'casework_queue.png'} and {args.out / 'casework_case.png'}")


if __name__ == "__main__":
    main()
