"""Alerts into the queue: from the audit log (online decisions) and from batch scoring output.

Nothing is scored again: an alert carries the score, risk level and explanation its decision
recorded. Ingesting twice adds nothing (an alert is keyed by its txn_id), and the audit log is read
from the last decision ingested on (``ingest_positions``), so a periodic ``amlscore cases ingest``
costs only the new decisions.

* audit log (``<state>/audit.sqlite``): every decision with ``alert = 1``; the transaction is the
  one received (``input_json``), the explanation the one recorded with the decision (or frozen later
  by ``/v1/explain``);
* batch scoring (``amlscore score --out FILE``: ``txn_id``, ``suspicion_score``, components, ``alert``,
  ``top_reasons``): the rows with ``alert`` true, joined to the data folder's transactions;
* large-value reports (``amlscore rate``'s ``large_value_reports.csv``): each reportable transaction
  with its deadline (``lvr_due_working_days`` working days after its bank day, ``local_date``).

Customers' facts (type, identification, nationality, ...) of the alerted customers are copied from
the data folder, for the case page and the filings.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from amlscore.casework.deadlines import working_days_after
from amlscore.casework.workflow import AlertIn, Casework
from amlscore.contract.errors import AmlError
from amlscore.contract.schema import TRANSACTIONS
from amlscore.core.audit import AuditLog, AuditRecord

TXN_COLUMNS = TRANSACTIONS.column_names


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(v).isoformat()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


def compact_explanation(decision: dict[str, Any]) -> dict[str, Any]:
    """What the case page and the narrative need of a recorded decision (English and Chinese texts)."""
    expl = decision.get("explanation") or {}
    top = [{"label": c.get("label") or c.get("feature"), "contribution": c.get("contribution"),
            "direction": c.get("direction"), "value": c.get("value")} for c in (expl.get("lgbm_contributions") or [])[:8]]
    risk = decision.get("customer_risk") or {}
    return {
        "components": decision.get("components") or {},
        "alert_threshold": decision.get("alert_threshold"),
        "rules_text": decision.get("rules_text") or {},
        "rules_fired": [r.get("rule_id") for r in (decision.get("rules_fired") or [])],
        "top_contributions": top,
        "risk": {"level": risk.get("level"), "score": risk.get("score"), "level_name_en": risk.get("level_name_en"),
                 "level_name_zh": risk.get("level_name_zh")},
        "peer_comparisons": decision.get("peer_comparisons") or {},
    }


def alert_from_record(rec: AuditRecord) -> AlertIn:
    """The queue's alert of one recorded (alerted) decision."""
    txn = {k: _plain(rec.input.get(k)) for k in TXN_COLUMNS if k in rec.input}
    txn["txn_id"] = rec.txn_id
    txn["customer_id"] = rec.customer_id
    expl = compact_explanation(rec.decision)
    return AlertIn(alert_id=rec.txn_id, source="online", customer_id=rec.customer_id,
                   txn_time=str(rec.input.get("timestamp") or rec.decided_at), score=float(rec.suspicion_score),
                   txn=txn, request_id=rec.request_id, model_version=rec.model_version,
                   risk_level=expl["risk"]["level"], explanation=expl)


def ingest_audit(work: Casework, audit_db: str | Path, customers: pd.DataFrame | None = None) -> tuple[int, int]:
    """Queue the alerted decisions of the audit log recorded since the last ingest; (alerts, cases opened)."""
    audit_db = Path(audit_db)
    if not audit_db.is_file():
        raise AmlError(f"There is no audit log at {audit_db}.")
    after = int(work.store.position("audit") or 0)
    log = AuditLog(audit_db)
    alerts: list[AlertIn] = []
    last = after
    try:
        for rec in log.iter_records(after_seq=after):
            assert rec.seq is not None
            last = rec.seq
            if rec.alert:
                alerts.append(alert_from_record(rec))
    finally:
        log.close()
    added, opened = work.add_alerts(alerts)
    if customers is not None:
        store_customers(work, customers, {a.customer_id for a in alerts})
    with work.store.transaction() as db:
        db.execute("INSERT INTO ingest_positions(source, position) VALUES ('audit', ?) "
                   "ON CONFLICT(source) DO UPDATE SET position = excluded.position", (str(last),))
    return added, opened


def ingest_batch(work: Casework, scores_file: str | Path, transactions: pd.DataFrame,
                 customers: pd.DataFrame | None = None) -> tuple[int, int]:
    """Queue the alerts of a batch scoring file (``amlscore score``), joined to the data's transactions."""
    path = Path(scores_file)
    if not path.is_file():
        raise AmlError(f"There is no scoring file at {path}.")
    scores = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"txn_id": str})
    for col in ("txn_id", "suspicion_score", "alert"):
        if col not in scores.columns:
            raise AmlError(f"{path} must have the columns of 'amlscore score' output; '{col}' is missing.")
    alerted = scores[scores["alert"].astype(str).str.lower().isin(("true", "1"))]
    tx = transactions[transactions["txn_id"].astype(str).isin(set(alerted["txn_id"].astype(str)))]
    by_id = {str(r["txn_id"]): r for r in tx.to_dict("records")}
    missing = [t for t in alerted["txn_id"].astype(str) if t not in by_id]
    if missing:
        raise AmlError(f"{len(missing)} alerted transaction(s) of {path.name} are not in the data folder, e.g. "
                       f"{', '.join(missing[:5])}: give the --data folder that was scored.")
    alerts = []
    for row in alerted.to_dict("records"):
        t = by_id[str(row["txn_id"])]
        txn = {k: _plain(t.get(k)) for k in TXN_COLUMNS if k in t}
        reasons = row.get("top_reasons")
        if isinstance(reasons, str):
            try:
                reasons = json.loads(reasons)
            except ValueError:
                reasons = [reasons]
        reasons = [str(r) for r in (list(reasons) if reasons is not None and not isinstance(reasons, float) else [])]
        components = {k: _plain(row.get(k)) for k in ("rule_score", "lgbm_probability", "anomaly_score") if k in row}
        expl = {"components": components, "rules_text": {"en": reasons}, "rules_fired": [], "top_contributions": [],
                "risk": {}, "peer_comparisons": {}, "source_file": path.name}
        alerts.append(AlertIn(alert_id=str(row["txn_id"]), source="batch", customer_id=str(t["customer_id"]),
                              txn_time=str(pd.Timestamp(t["timestamp"])), score=float(row["suspicion_score"]),
                              txn=txn, explanation=expl))
    added, opened = work.add_alerts(alerts)
    if customers is not None:
        store_customers(work, customers, {a.customer_id for a in alerts})
    return added, opened


def store_customers(work: Casework, customers: pd.DataFrame, ids: set[str]) -> int:
    """Copy the facts of the customers ``ids`` from the data folder's customers table."""
    if not ids:
        return 0
    sub = customers[customers["customer_id"].astype(str).isin(ids)]
    rows = [(str(r["customer_id"]), json.dumps({k: _plain(v) for k, v in r.items()}, default=str, ensure_ascii=False))
            for r in sub.to_dict("records")]
    with work.store.transaction() as db:
        db.executemany("INSERT INTO customers(customer_id, facts_json) VALUES (?, ?) ON CONFLICT(customer_id) "
                       "DO UPDATE SET facts_json = excluded.facts_json", rows)
    return len(rows)


def ingest_large_value(work: Casework, reports_file: str | Path, transactions: pd.DataFrame | None = None) -> int:
    """Queue the transactions of ``large_value_reports.csv`` (``amlscore rate``) with their deadline."""
    path = Path(reports_file)
    if not path.is_file():
        raise AmlError(f"There is no large-value reports file at {path}.")
    lv = pd.read_csv(path, dtype={"txn_id": str, "customer_id": str})
    need = ("txn_id", "customer_id", "timestamp", "local_date", "amount", "category", "threshold", "basis")
    missing = [c for c in need if c not in lv.columns]
    if missing:
        raise AmlError(f"{path} must be 'amlscore rate' large_value_reports.csv; missing: {', '.join(missing)}.")
    extra: dict[str, dict[str, Any]] = {}
    if transactions is not None:
        tx = transactions[transactions["txn_id"].astype(str).isin(set(lv["txn_id"]))]
        extra = {str(r["txn_id"]): {k: _plain(v) for k, v in r.items()} for r in tx.to_dict("records")}
    rows = []
    days = work.config.lvr_due_working_days
    for r in lv.to_dict("records"):
        txn = {**extra.get(r["txn_id"], {}), **{k: _plain(v) for k, v in r.items()}}
        rows.append((r["txn_id"], r["customer_id"], str(pd.Timestamp(r["timestamp"])), str(r["local_date"])[:10],
                     working_days_after(pd.Timestamp(str(r["local_date"])[:10]).date(), days).isoformat(), json.dumps(txn, default=str, ensure_ascii=False)))
    with work.store.transaction() as db:
        before = db.total_changes
        db.executemany("INSERT OR IGNORE INTO large_value(txn_id, customer_id, txn_time, local_date, due_date, txn_json) "
                       "VALUES (?,?,?,?,?,?)", rows)
        return db.total_changes - before
