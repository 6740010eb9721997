"""What each role sees of a recorded decision.

The audit log keeps the full decision; responses are cut from it here. The channel role gets the
score, the alert decision and the request id (plus the txn id, the time and the replay flag) and
never any component, risk level, rule or explanation. Compliance and admin get everything, in the
language they ask for when the words exist in both (rules, peer comparisons, level names); an
explanation computed at decision time stays in the language it was computed in.
"""

from __future__ import annotations

from typing import Any

from amlscore.core.audit import AuditRecord
from amlscore.serving.scoring import split_explanation

CHANNEL_FIELDS = ("request_id", "txn_id", "suspicion_score", "alert", "decided_at", "replayed")


def channel_view(rec: AuditRecord, replayed: bool) -> dict[str, Any]:
    d = rec.decision
    return {"request_id": rec.request_id, "txn_id": rec.txn_id, "suspicion_score": d["suspicion_score"],
            "alert": d["alert"], "decided_at": d["decided_at"], "replayed": replayed}


def _risk(summary: dict[str, Any] | None, lang: str) -> dict[str, Any]:
    if not summary:
        return {"level": None, "level_name": None, "score": None, "rating_basis": None, "rated_at": None}
    return {"level": summary.get("level"), "level_name": summary.get("level_name_zh" if lang == "zh" else "level_name_en"),
            "score": summary.get("score"), "rating_basis": summary.get("rating_basis"), "rated_at": summary.get("rated_at")}


def full_view(rec: AuditRecord, replayed: bool, lang: str, explanation: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything recorded, for compliance and admin callers."""
    d = rec.decision
    expl = explanation if explanation is not None else d.get("explanation")
    attributions, anomaly = split_explanation(expl)
    texts = (d.get("rules_text") or {}).get(lang) or []
    rules = []
    for k, r in enumerate(d.get("rules_fired") or []):
        rules.append({**r, "text": texts[k + 1] if k + 1 < len(texts) else None})
    out = channel_view(rec, replayed)
    out.update({
        "customer_id": rec.customer_id,
        "components": d.get("components"),
        "alert_threshold": d.get("alert_threshold"),
        "customer_risk": _risk(d.get("customer_risk"), lang),
        "peer_group": d.get("peer_group"),
        "attributions": attributions,
        "anomaly_attribution": anomaly,
        "rules_fired": rules,
        "rules_summary": texts[0] if texts else None,
        "peer_comparisons": (d.get("peer_comparisons") or {}).get(lang, []),
        "explanation": expl,
        "explanation_lang": d.get("explanation_lang") if explanation is None else lang,
        "versions": d.get("versions"),
    })
    return out


def decision_view(rec: AuditRecord, replayed: bool, full: bool, lang: str) -> dict[str, Any]:
    return full_view(rec, replayed, lang) if full else channel_view(rec, replayed)
