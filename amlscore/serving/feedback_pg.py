"""Analysts' dispositions and customers' rating changes in PostgreSQL (``AML_DATABASE_URL``), shared by
every worker of the service.

The same append-only tables as :mod:`amlscore.serving.feedback` (``UPDATE``, ``DELETE`` and
``TRUNCATE`` refused by a trigger), in the audit log's database. Each worker writes the export
files into its own state folder from the shared table, so every worker exports the same reports.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from amlscore.core.audit_pg import connect, ensure_schema
from amlscore.serving.feedback import FeedbackStore, feedback_ddl, rating_changes_ddl
from amlscore.storage.private import private_dir

_SCHEMA = feedback_ddl("BIGSERIAL PRIMARY KEY", "DOUBLE PRECISION") + """
CREATE INDEX IF NOT EXISTS feedback_txn ON feedback(txn_id, seq);
""" + rating_changes_ddl("BIGSERIAL")


class PostgresFeedbackStore(FeedbackStore):
    """:class:`FeedbackStore` over PostgreSQL; each disposition committed (``synchronous_commit=on``)."""

    _PLACEHOLDER = "%s"

    def __init__(self, url: str, export_dir: str | Path) -> None:  # noqa: D107 - the parent's parameters
        self.db_path = Path("postgresql")  # no file: messages name the database through the URL's host
        self.url = url
        self.export_dir = private_dir(export_dir)
        self._lock = threading.Lock()
        self._db = connect(url, autocommit=True)
        ensure_schema(self._db, _SCHEMA, append_only=("feedback", "rating_changes"))
        self._db.execute("SET synchronous_commit = on")

    def _transaction(self) -> Any:
        return self._db.transaction()
