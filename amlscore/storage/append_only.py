"""SQLite triggers that make a table append-only: ``UPDATE`` and ``DELETE`` refused with a message naming it.

Used by every SQLite store that keeps records nobody may change (the analysts' dispositions, the
rating changes, the people's events, the audit log's retention cuts). A store whose deletes are
allowed under a condition (a signed retention cut) writes its own ``DELETE`` trigger.
"""

from __future__ import annotations


def append_only_triggers(table: str) -> str:
    """``CREATE TRIGGER`` statements refusing every ``UPDATE`` and ``DELETE`` on ``table``."""
    return "".join(
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}\n"
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END;\n"
        for op in ("UPDATE", "DELETE")
    )
