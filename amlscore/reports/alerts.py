"""Lists of alerts to open: from the service's audit log, or from batch scoring the data set.

A compliance officer (or the compliance notebook) picks an alert here and opens its case report:
an audit-log alert by its ``request_id`` (:func:`reports.build_case` ``alert=``), a batch alert by
its ``txn_id`` (``txn=``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from amlscore.reports.case_types import ModelInfo
from amlscore.reports.store import CaseStore

if TYPE_CHECKING:
    from amlscore.core.audit import AuditLog
    from amlscore.models.rules import RulesConfig
    from amlscore.reports.case_types import CaseFacts


def list_alerts(store: CaseStore, *, model: ModelInfo | None = None, audit: AuditLog | None = None, limit: int | None = 20,
                config: RulesConfig | None = None) -> pd.DataFrame:
    """Alerts, highest score first.

    With ``audit``: the decisions that raised an alert (``request_id`` set). Otherwise every
    transaction of the data set scored by ``model`` (cached per model in the store), or by the rules
    alone when ``model`` is None.

    Returns
    -------
    DataFrame
        ``request_id`` (None for batch alerts), ``txn_id``, ``customer_id``, ``time`` (bank clock),
        ``channel``, ``suspicion_score``, ``rules_fired``.
    """
    from amlscore.models.rules import load_rules_config

    if audit is not None:
        rows = [{"request_id": r.request_id, "txn_id": r.txn_id, "customer_id": r.customer_id,
                 "timestamp": r.input.get("timestamp"), "channel": r.input.get("channel"),
                 "suspicion_score": float(r.suspicion_score),
                 "rules_fired": "|".join(str(f.get("rule_id")) for f in (r.decision or {}).get("rules_fired", ()))}
                for r in audit.iter_records() if r.alert]
        f = pd.DataFrame(rows, columns=["request_id", "txn_id", "customer_id", "timestamp", "channel", "suspicion_score",
                                        "rules_fired"])
        f["time"] = store.local(pd.to_datetime(f["timestamp"], utc=True)) if len(f) else pd.Series(dtype="datetime64[ns]")
        f = f.drop(columns=["timestamp"])
    else:
        config = config or getattr(getattr(model, "model_set", None), "rules_config", None) or load_rules_config()
        rules = store.table("rules", ["txn_id", "customer_id", "timestamp", "rule_score", "fired"])
        channel = store.table("transactions", ["channel"])["channel"].astype(str).to_numpy()
        if model is not None and model.model_set is not None:
            from amlscore.reports.model_cache import model_scores

            s = model_scores(store, model)
            score = pd.Series(s["suspicion_score"].to_numpy(float), index=s["txn_id"].astype(str).to_numpy())
            alert = pd.Series(s["alert"].to_numpy(bool), index=s["txn_id"].astype(str).to_numpy())
            ids = rules["txn_id"].astype(str).to_numpy()
            suspicion, flag = score.reindex(ids).to_numpy(), alert.reindex(ids).fillna(False).to_numpy(bool)
        else:
            suspicion = rules["rule_score"].to_numpy(float)
            flag = suspicion >= float(config.behaviour.unusual_rule_score)
        f = pd.DataFrame({"request_id": None, "txn_id": rules["txn_id"].astype(str).to_numpy(),
                          "customer_id": rules["customer_id"].astype(str).to_numpy(), "channel": channel,
                          "suspicion_score": suspicion, "rules_fired": rules["fired"].astype(str).to_numpy(),
                          "time": store.local(rules["timestamp"]).to_numpy()})[flag]
    f = f.sort_values(["suspicion_score", "time"], ascending=[False, True], kind="stable").reset_index(drop=True)
    cols = ["request_id", "txn_id", "customer_id", "time", "channel", "suspicion_score", "rules_fired"]
    return (f[cols].head(limit) if limit else f[cols]).reset_index(drop=True)


def open_alert(store: CaseStore, alert: pd.Series | Mapping[str, Any], *, model: ModelInfo | None = None,
               audit: AuditLog | None = None, lang: str = "en") -> CaseFacts:
    """The case facts of one row of :func:`list_alerts`: by request id when it came from the audit log,
    else by transaction id."""
    from amlscore.reports import build_case

    request_id = alert["request_id"] if "request_id" in alert else None
    if request_id is not None and not (isinstance(request_id, float) and request_id != request_id) and audit is not None:
        return build_case(store.data, alert=str(request_id), audit=audit, model=model, store=store, lang=lang)
    return build_case(store.data, txn=str(alert["txn_id"]), model=model, store=store, lang=lang)
