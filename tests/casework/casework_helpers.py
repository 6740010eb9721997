"""Helpers of the casework tests: people, alerts written to a real audit log, a store."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "carol": "carol-password-3",
             "root": "root-password-44", "gate": "gate-password-55", "dave": "dave-password-66"}
ROLES = {"alice": "analyst", "bob": "reviewer", "carol": "reviewer", "root": "admin", "gate": "channel",
         "dave": "analyst"}


def add_people(state: Path) -> None:
    """alice (analyst), dave (analyst), bob and carol (reviewers), root (admin), gate (channel)."""
    from amlscore.core.identity import UserStore

    users = UserStore.in_state(state)
    try:
        existing = {u.name for u in users.list()}
        for name, role in ROLES.items():
            if name not in existing:
                users.add(name, role, by="test", password=PASSWORDS[name], display_name=name.title())
    finally:
        users.close()


def basic(name: str) -> dict[str, str]:
    token = base64.b64encode(f"{name}:{PASSWORDS[name]}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def person(name: str) -> Any:
    from amlscore.core.identity import Person

    return Person(name, ROLES[name], name.title())


def record(txn: dict[str, Any], score: float, *, alert: bool = True, request_id: str | None = None,
           level: str = "high") -> Any:
    """An audit record of a decision on ``txn`` (the shape the service writes)."""
    from amlscore.core.audit import AuditRecord, input_hash, new_ulid, utc_now_iso

    decision = {
        "components": {"rule_score": 40.0, "lgbm_probability": 0.8, "anomaly_score": 0.3},
        "alert_threshold": 50.0,
        "customer_risk": {"level": level, "score": 61.0, "level_name_en": level.title(), "level_name_zh": "高"},
        "rules_fired": [{"rule_id": "large_cash", "weight": 0.3, "conditions": []}],
        "rules_text": {"en": ["Rule score 40 of 100.", "Large cash transaction: 60,000 >= 50,000."], "zh": []},
        "explanation": {"lgbm_contributions": [
            {"feature": "cash_in_7d", "label": "Cash deposited in the last 7 days", "value": 3.0,
             "contribution": 0.9, "direction": "raises"}]},
        "peer_comparisons": {"en": [], "zh": []},
    }
    return AuditRecord(request_id=request_id or new_ulid(), txn_id=txn["txn_id"], customer_id=txn["customer_id"],
                       decided_at=utc_now_iso(), caller_key_id="dev-channel", caller_role="channel",
                       endpoint="/v1/score", batch_id=None, input_hash=input_hash(txn), input=txn,
                       features=np.zeros(3), suspicion_score=score, alert=alert, model_name="aml-model-set",
                       model_version="7", feature_set_version="fs", feature_params_hash="p", rules_config_hash="r",
                       decision=decision)


def txn(txn_id: str, customer: str, when: str, amount: float = 60_000.0, direction: str = "in",
        **extra: Any) -> dict[str, Any]:
    base = {"txn_id": txn_id, "timestamp": when, "customer_id": customer, "account_id": f"ACC-{customer}",
            "direction": direction, "amount": amount, "channel": "counter", "txn_type": "cash_deposit",
            "counterparty_id": "CP-1", "counterparty_type": "individual", "counterparty_country": "HK",
            "ip_address": None, "terminal_id": "T-9", "terminal_region": "310000"}
    base.update(extra)
    return base


def write_audit(state: Path, records: list[Any]) -> Path:
    from amlscore.core.audit import AuditLog

    log = AuditLog(state / "audit.sqlite", sync="normal")
    try:
        log.append(records)
    finally:
        log.close()
    return state / "audit.sqlite"


def open_work(state: Path) -> Any:
    from amlscore.casework.config import load_casework_config
    from amlscore.casework.store import CaseStore
    from amlscore.casework.workflow import Casework

    return Casework(CaseStore.in_state(state), load_casework_config())
