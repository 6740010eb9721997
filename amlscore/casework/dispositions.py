"""Approved decisions as training labels: the contract's reports rows that ``amlscore train`` reads.

Once a decision is approved (four eyes), every alert of the case becomes one row of the reports
format (``report_id`` = ``<case>-<txn>``, ``customer_id``, ``txn_id``, ``report_date`` = the decision's
bank day, ``label`` = ``suspicious`` or ``not_suspicious``, ``typology``). The rows of every approved
case are written, atomically, to ``<data>/feedback/casework.csv``: ``amlscore train --data DATA``
merges ``<data>/feedback/*.csv`` with the data's own reports (:mod:`amlscore.training.feedback`),
so the next training learns from them, a ``not_suspicious`` disposition as a confirmed negative.

Alerts that came through the service are not in the data folder, and a report must name a
transaction of the training data: their transactions, as the service received them, go to
``<data>/feedback/feedback_transactions.csv``, the sidecar training already reads beside feedback
files. This is a file interface: casework never imports training.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from amlscore.casework.deadlines import bank_day
from amlscore.casework.store import CaseStore
from amlscore.contract.schema import REPORTS, TRANSACTIONS
from amlscore.storage.private import open_private

DISPOSITIONS_FILE = "casework.csv"
SIDECAR_FILE = "feedback_transactions.csv"  # the name training.feedback reads beside feedback files


def _write_atomic(path: Path, header: tuple[str, ...], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    tmp = path.with_name(path.name + ".partial")
    with os.fdopen(open_private(tmp), "w", encoding="utf-8", newline="") as fh:
        fh.write(buf.getvalue())
    os.replace(tmp, path)


def export_dispositions(store: CaseStore, data_dir: str | Path) -> tuple[Path, int]:
    """Rewrite ``<data>/feedback/casework.csv`` (and its transactions sidecar); returns (file, rows)."""
    folder = Path(data_dir) / "feedback"
    folder.mkdir(parents=True, exist_ok=True)
    with store._lock:
        rows = store.db.execute(
            "SELECT c.case_id, c.customer_id, c.decision, c.typology, c.decided_at, a.alert_id, a.source, a.txn_json "
            "FROM cases c JOIN alerts a ON a.case_id = c.case_id "
            "WHERE c.approved_at IS NOT NULL AND c.decision IS NOT NULL ORDER BY c.approved_at, a.alert_id").fetchall()
    reports: list[list[str]] = []
    served: list[list[str]] = []
    for case_id, customer_id, decision, typology, decided_at, txn_id, source, txn_json in rows:
        reports.append([f"{case_id}-{txn_id}", customer_id, txn_id, "", "", bank_day(decided_at).isoformat(),
                        decision, (typology or "") if decision == "suspicious" else ""])
        if source == "online":
            txn = json.loads(txn_json)
            served.append(["" if txn.get(c) is None else str(txn.get(c)) for c in TRANSACTIONS.column_names])
    target = folder / DISPOSITIONS_FILE
    _write_atomic(target, REPORTS.column_names, reports)
    if served:
        _write_atomic(folder / SIDECAR_FILE, TRANSACTIONS.column_names, served)
    return target, len(reports)
