"""Champion against shadow, from what the service recorded (``amlscore compare --audit STATE_DIR``).

A service run with ``AML_SHADOW`` keeps, for each decision, the champion's score in the audit log's
``decisions`` table and the shadow's in ``shadow_scores`` (same request id). This module reads both
(read-only) and the analysts' dispositions from the feedback store of the same state folder
(``feedback.sqlite``, the latest disposition per transaction), and puts the two models side by side
over the decisions that have both scores: alert volume of each, the overlap of their alerts, the
correlation of their scores, and each one's precision on the dispositions received since ``since``
(the share of its alerts with a disposition that the analysts labelled ``suspicious``).
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from amlscore.contract.errors import AmlError

POSITIVE_LABEL = "suspicious"


@dataclass(frozen=True)
class ModelSide:
    """One model's figures over the compared decisions."""

    model_versions: list[str]
    alerts: int
    alert_rate: float | None
    dispositions_on_alerts: int  # its alerts with a disposition received since
    suspicious_on_alerts: int
    precision: float | None  # suspicious_on_alerts / dispositions_on_alerts


@dataclass(frozen=True)
class Comparison:
    """Champion and shadow side by side (the JSON ``amlscore compare --out`` writes)."""

    audit_database: str
    since: str | None
    decisions: int  # decisions in the period
    compared: int  # of which the shadow scored too
    champion: ModelSide
    shadow: ModelSide
    both_alert: int
    only_champion: int
    only_shadow: int
    neither: int
    pearson: float | None
    spearman: float | None
    dispositions: int  # dispositions received since, on compared decisions

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read_only(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def _frames(audit_db: Path, since: dt.date | None) -> tuple[pd.DataFrame, int]:
    """(decisions of the period joined with their shadow score, decisions of the period)."""
    where, args = ("WHERE d.decided_at >= ?", (since.isoformat(),)) if since else ("", ())
    db = _read_only(audit_db)
    try:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "shadow_scores" not in tables:
            raise AmlError(f"The audit log {audit_db} has no shadow scores: the service never ran with AML_SHADOW.")
        total = int(db.execute(f"SELECT COUNT(*) FROM decisions d {where}", args).fetchone()[0])
        frame = pd.read_sql_query(
            "SELECT d.request_id, d.txn_id, d.suspicion_score AS champion_score, d.alert AS champion_alert, "
            "d.model_version AS champion_version, s.suspicion_score AS shadow_score, s.alert AS shadow_alert, "
            "s.model_version AS shadow_version FROM decisions d JOIN shadow_scores s ON s.request_id = d.request_id "
            "AND s.seq = (SELECT MAX(seq) FROM shadow_scores WHERE request_id = d.request_id) "
            f"{where} ORDER BY d.seq", db, params=args)
    finally:
        db.close()
    return frame, total


def _dispositions(feedback_db: Path, since: dt.date | None) -> pd.DataFrame:
    """The latest disposition per transaction, received on or after ``since`` (txn_id, label)."""
    if not feedback_db.is_file():
        return pd.DataFrame({"txn_id": pd.Series(dtype=str), "label": pd.Series(dtype=str)})
    db = _read_only(feedback_db)
    try:
        latest = pd.read_sql_query("SELECT txn_id, label, recorded_at FROM feedback WHERE seq IN "
                                   "(SELECT MAX(seq) FROM feedback GROUP BY txn_id)", db)
    finally:
        db.close()
    if since is not None:
        latest = latest[latest["recorded_at"] >= since.isoformat()]
    return latest[["txn_id", "label"]]


def _side(alerts: pd.Series, labels: pd.Series, versions: pd.Series, n: int) -> ModelSide:
    judged = alerts & labels.notna()
    suspicious = int((judged & (labels == POSITIVE_LABEL)).sum())
    return ModelSide(model_versions=sorted(versions.astype(str).unique().tolist()), alerts=int(alerts.sum()),
                     alert_rate=float(alerts.sum() / n) if n else None, dispositions_on_alerts=int(judged.sum()),
                     suspicious_on_alerts=suspicious,
                     precision=suspicious / int(judged.sum()) if int(judged.sum()) else None)


def _correlation(a: pd.Series, b: pd.Series, method: str) -> float | None:
    both = pd.concat([a, b], axis=1).dropna()
    if len(both) < 2 or both.iloc[:, 0].nunique() < 2 or both.iloc[:, 1].nunique() < 2:
        return None
    return float(both.iloc[:, 0].corr(both.iloc[:, 1], method=method))


def compare_shadow(state_dir: str | Path, since: dt.date | None = None) -> Comparison:
    """Champion against shadow over a state folder's decisions (on or after ``since``) that have both scores.

    Raises :class:`AmlError` when the folder has no audit log or the log no shadow scores.
    """
    state = Path(state_dir)
    audit_db = state / "audit.sqlite"
    if not audit_db.is_file():
        raise AmlError(f"There is no audit log at {audit_db}. Give the service's state folder with --audit DIR.")
    frame, total = _frames(audit_db, since)
    labels = _dispositions(state / "feedback.sqlite", since)
    frame = frame.merge(labels, on="txn_id", how="left")
    champ = frame["champion_alert"].astype(bool)
    shadow = frame["shadow_alert"].astype(bool)
    n = len(frame)
    return Comparison(
        audit_database=str(audit_db), since=since.isoformat() if since else None, decisions=total, compared=n,
        champion=_side(champ, frame["label"], frame["champion_version"], n),
        shadow=_side(shadow, frame["label"], frame["shadow_version"], n),
        both_alert=int((champ & shadow).sum()), only_champion=int((champ & ~shadow).sum()),
        only_shadow=int((~champ & shadow).sum()), neither=int((~champ & ~shadow).sum()),
        pearson=_correlation(frame["champion_score"], frame["shadow_score"], "pearson"),
        spearman=_correlation(frame["champion_score"], frame["shadow_score"], "spearman"),
        dispositions=int(frame["label"].notna().sum()),
    )
