"""Which stores the service runs on: the embedded ones (SQLite files in the state folder, one worker)
or the shared servers (``AML_STATE_URL``: Valkey/Redis; ``AML_DATABASE_URL``: PostgreSQL; several workers).

One place decides, so the engine, ``amlscore serve``'s warm-up and the tests open the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amlscore.core.audit import AuditLog
from amlscore.features.store import FeatureStore
from amlscore.serving.config import Settings
from amlscore.serving.feedback import FeedbackStore

__all__ = ["feature_store", "audit_log", "feedback_store"]


def feature_store(settings: Settings, state_dir: Path) -> FeatureStore | Path:
    """The online state's store: the shared log in Redis/Valkey, else the SQLite file in the state folder."""
    if settings.state_url:
        from amlscore.features.redis_store import RedisFeatureStore, TrimPolicy  # noqa: PLC0415 - only when configured
        from amlscore.settings import path_settings  # noqa: PLC0415

        paths = path_settings()  # AML_STATE_TRIM, AML_STATE_KEEP_SNAPSHOTS, AML_STATE_RETRY_HOURS (validated there)
        trim = TrimPolicy(trim=paths.state_trim, keep_snapshots=paths.state_keep_snapshots,
                          retry_hours=paths.state_retry_hours)
        return RedisFeatureStore(settings.state_url, trim=trim)
    return state_dir / "features.sqlite"


def audit_log(settings: Settings, state_dir: Path) -> Any:
    """The audit log: PostgreSQL when ``AML_DATABASE_URL`` is set, else ``<state>/audit.sqlite``."""
    if settings.database_url:
        from amlscore.core.audit_pg import PostgresAuditLog  # noqa: PLC0415

        return PostgresAuditLog(settings.database_url, sync=settings.audit_sync)
    return AuditLog(state_dir / "audit.sqlite", sync=settings.audit_sync)


def feedback_store(settings: Settings, state_dir: Path) -> FeedbackStore:
    """Dispositions: PostgreSQL when ``AML_DATABASE_URL`` is set, else ``<state>/feedback.sqlite``; exports in the state folder."""
    if settings.database_url:
        from amlscore.serving.feedback_pg import PostgresFeedbackStore  # noqa: PLC0415

        return PostgresFeedbackStore(settings.database_url, state_dir / "feedback")
    return FeedbackStore(state_dir / "feedback.sqlite", state_dir / "feedback")
