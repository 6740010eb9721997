"""The casework queue page with 100,000 alerts in the store: p50 / p99 of the page's answer (issue 19).

Usage::

    .venv/bin/python benchmarks/bench_queue.py [--alerts 100000] [--requests 200] [--state DIR]

Fills a casework store through the real ingest path (:meth:`Casework.add_alerts`: 100,000 alerts of
20,000 customers over a year, grouped into cases by the 30-day rule), moves a share of the cases
along (in review, decided, approved, closed), then serves the pages with uvicorn on 127.0.0.1 and
times full HTTP answers of the queue page (signed in, session cookie) for several views: the default
(active cases by deadline, then score), by score, overdue only, one customer, a later page. The
target is under 300 ms per answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "casework"))


def fill(state: Path, n_alerts: int, seed: int = 0) -> tuple[int, float]:
    import pandas as pd

    from amlscore.casework.config import load_casework_config
    from amlscore.casework.store import CaseStore
    from amlscore.casework.workflow import AlertIn, Casework

    rng = np.random.default_rng(seed)
    work = Casework(CaseStore.in_state(state), load_casework_config())
    start = pd.Timestamp("2025-12-01T00:00:00Z")
    offsets = np.sort(rng.integers(0, 365 * 86_400, n_alerts))
    customers = rng.integers(0, 20_000, n_alerts)
    scores = rng.uniform(50, 100, n_alerts)
    t0 = time.perf_counter()
    batch: list[AlertIn] = []
    for i in range(n_alerts):
        when = start + pd.Timedelta(seconds=int(offsets[i]))
        txn = {"txn_id": f"T{i:07d}", "timestamp": when.isoformat(), "customer_id": f"C{customers[i]:05d}",
               "account_id": f"A{customers[i]:05d}", "direction": "in" if i % 2 else "out",
               "amount": float(round(rng.uniform(1_000, 900_000), 2)), "channel": "online_banking",
               "txn_type": "transfer"}
        batch.append(AlertIn(alert_id=txn["txn_id"], source="batch", customer_id=txn["customer_id"],
                             txn_time=txn["timestamp"], score=float(scores[i]), txn=txn,
                             explanation={"rules_text": {"en": []}, "top_contributions": []}))
        if len(batch) == 5_000:
            work.add_alerts(batch)
            batch = []
    if batch:
        work.add_alerts(batch)
    fill_s = time.perf_counter() - t0
    # move a share of the cases along, so that the statuses are mixed as in a working queue
    with work.store.transaction() as db:
        ids = [r[0] for r in db.execute("SELECT case_id FROM cases")]
        for k, cid in enumerate(ids):
            status = ("in_review", "decided", "approved", "closed", "open", "open")[k % 6]
            if status != "open":
                db.execute("UPDATE cases SET status=?, assignee='alice', due_date=CASE WHEN ?='closed' THEN NULL "
                           "ELSE due_date END WHERE case_id=?", (status, status, cid))
    n_cases = len(ids)
    work.store.close()
    return n_cases, fill_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--state", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="Time the pages of a store --state already holds.")
    args = parser.parse_args()

    import httpx
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from amlscore.casework.web import create_app
    from amlscore.core.identity import UserStore
    from chromium import LocalServer

    state = args.state or Path(tempfile.mkdtemp(prefix="bench-queue-"))
    state.mkdir(parents=True, exist_ok=True)
    if args.reuse and (state / "casework.sqlite").is_file():
        import sqlite3

        db = sqlite3.connect(state / "casework.sqlite")
        n_alerts, n_cases = (db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in ("alerts", "cases"))
        db.close()
        print(f"store: {n_alerts:,} alerts in {n_cases:,} cases (reused {state})")
    else:
        n_cases, fill_s = fill(state, args.alerts)
        print(f"store: {args.alerts:,} alerts in {n_cases:,} cases, filled in {fill_s:.1f} s "
              f"({args.alerts / fill_s:,.0f} alerts/s through Casework.add_alerts)")
    users = UserStore.in_state(state)
    if users.person("alice") is None:
        users.add("alice", "analyst", by="bench", password="alice-password-1")
    users.close()

    app = create_app(state, state / "data")
    views = {"default (deadline, then score)": "/cases/", "by score": "/cases/?sort=score",
             "overdue only": "/cases/?overdue=1", "one customer": "/cases/?customer=C00042&status=open&status=closed",
             "page 40": "/cases/?page=40"}
    with LocalServer(Starlette(routes=[Mount("/cases", app=app)])) as server, httpx.Client(base_url=server.base) as c:
        r = c.post("/cases/signin", data={"name": "alice", "password": "alice-password-1"})
        assert r.status_code in (200, 303), r.text
        print(f"{'view':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  bytes")
        for name, url in views.items():
            c.get(url)  # warm
            times = []
            for _ in range(args.requests):
                t = time.perf_counter()
                r = c.get(url)
                times.append((time.perf_counter() - t) * 1000)
                assert r.status_code == 200, (url, r.status_code)
            times.sort()
            p99 = times[min(len(times) - 1, int(round(0.99 * len(times))) - 1)]
            print(f"{name:<34} {statistics.median(times):8.1f} {p99:8.1f} {times[-1]:8.1f}  {len(r.content):,}")
    app.state.site.close()


if __name__ == "__main__":
    main()
