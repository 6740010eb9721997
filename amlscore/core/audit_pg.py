"""The audit log in PostgreSQL (``AML_DATABASE_URL=postgresql://...``): several workers write to one log.

The same tables, columns and hash chains as the SQLite log (:mod:`amlscore.core.audit`), so a row
hashes the same in both and :func:`verify_chain_pg` is :func:`~amlscore.core.audit.verify_chain`'s
twin. What changes with several writers:

* **one chain per table across workers**: the table ``audit_heads`` holds each chained table's row
  count and head hash; a commit locks the head rows of the tables it writes (``SELECT ... FOR
  UPDATE``, in name order, so two commits never wait on each other crosswise), links its rows to
  the head, inserts them and moves the head, in one transaction. Another worker's commit waits for
  the lock, so the rows of a table are chained in ``seq`` order (the sequence numbers are taken
  under the lock);
* **append-only by trigger**: ``UPDATE``, ``DELETE`` and ``TRUNCATE`` on the chained tables raise an
  error (a role that owns the tables can drop the trigger: give the service a role that does not
  own them, docs/scale-out.md). ``audit_heads`` plays the checkpoint file's part: a tail cut off a
  table shows as fewer rows than its head counts;
* **the response waits for its own commit**: :meth:`PostgresAuditLog.submit` returns a future done
  once the transaction holding the decision is committed, with ``synchronous_commit=on``
  (``AML_AUDIT_SYNC=full``: flushed to the server's WAL on disk, and to a synchronous standby when
  the server has one) or ``off`` (``normal``: a crash of the database server can lose the last
  fraction of a second of commits, never a crash of a worker).

Group commit as in SQLite: one writer thread per worker takes every write queued since its last
commit and commits them together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from amlscore.contract.errors import AmlError
from amlscore.core.audit import (
    _COLUMNS,
    _GENESIS,
    _KIND_TABLE,
    CHAINED,
    ChainBreak,
    ChainReport,
    GroupCommitLog,
    _chain_digest,
    _row_digest,
    _row_tail,
    _Write,
    audit_tables_ddl,
)

log = logging.getLogger(__name__)

__all__ = ["PostgresAuditLog", "verify_chain_pg", "connect", "is_postgres_url"]

_SCHEMA = audit_tables_ddl("BIGSERIAL PRIMARY KEY", "BYTEA", "DOUBLE PRECISION") + """
CREATE TABLE IF NOT EXISTS audit_heads (
    tbl TEXT PRIMARY KEY,
    rows BIGINT NOT NULL,
    head TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION aml_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % on % refused', TG_OP, TG_TABLE_NAME;
END $$;
"""
_SCHEMA_LOCK = 7_420_193  # advisory lock id: workers starting together create the schema once


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and str(url).startswith(("postgresql://", "postgres://"))


def connect(url: str, autocommit: bool = False) -> Any:
    """A psycopg 3 connection, with a message that names the server (not the password) when it fails."""
    try:
        import psycopg  # noqa: PLC0415 - only the PostgreSQL backend needs the driver
    except ImportError:  # pragma: no cover - a dependency of the package
        raise AmlError("AML_DATABASE_URL names PostgreSQL but psycopg is not installed "
                       "(pip install 'psycopg[binary]>=3.1,<4')") from None
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=15)
    except psycopg.OperationalError as exc:
        raise AmlError(f"cannot reach the PostgreSQL database at {_safe(url)}: {str(exc).strip()}") from None


def ensure_schema(conn: Any, sql: str = _SCHEMA, append_only: Iterable[str] = tuple(CHAINED)) -> None:
    """Create tables (``sql``), the append-only triggers of ``append_only`` and the head rows once,
    whoever of the workers starting together comes first."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
        conn.execute(_SCHEMA)
        if sql is not _SCHEMA:
            conn.execute(sql)
        have = {r[0] for r in conn.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")}
        for t in append_only:
            if f"{t}_append_only" not in have:
                conn.execute(f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} FOR EACH ROW "
                             "EXECUTE FUNCTION aml_append_only()")
            if f"{t}_no_truncate" not in have:
                conn.execute(f"CREATE TRIGGER {t}_no_truncate BEFORE TRUNCATE ON {t} FOR EACH STATEMENT "
                             "EXECUTE FUNCTION aml_append_only()")
        for t in CHAINED:
            conn.execute("INSERT INTO audit_heads(tbl, rows, head) VALUES (%s, 0, %s) ON CONFLICT (tbl) DO NOTHING",
                         (t, _GENESIS))


class PostgresAuditLog(GroupCommitLog):
    """The audit log over PostgreSQL: the public methods of :class:`amlscore.core.audit.AuditLog`
    (the write API and the writer thread are :class:`~amlscore.core.audit.GroupCommitLog`'s)."""

    _WRITER_NAME = "audit-writer-pg"
    _P = "%s"

    def __init__(self, url: str, sync: str = "full") -> None:
        if sync not in ("full", "normal"):
            raise ValueError(f"The 'sync' parameter of PostgresAuditLog must be one of full, normal. Got {sync!r} instead.")
        self.url = url
        self.path = _safe(url)  # what messages name as the log's place
        self._db = connect(url)
        ensure_schema(self._db)
        self._db.execute(f"SET synchronous_commit = {'on' if sync == 'full' else 'off'}")
        self._db.commit()
        # BEGIN and COMMIT are sent by _commit itself, inside its pipeline: psycopg's own transaction
        # block would wait for each of them (two more round trips per commit)
        self._db.autocommit = True
        self._read = connect(url, autocommit=True)
        self._lock = threading.Lock()  # the reading connection
        self._absent_prepared = False
        self._init_writes()

    _INSERT = {
        "decisions": f"INSERT INTO decisions({','.join(_COLUMNS)}) VALUES ({','.join(['%s'] * len(_COLUMNS))})",
        # no ON CONFLICT: stored explanations are left out under the head's lock (_commit), and a row
        # skipped here would leave its hash in the chain
        "explanation": "INSERT INTO explanations(request_id, lang, computed_at, model_version, explanation_json, "
                       "chain_hash) VALUES (%s, %s, %s, %s, %s, %s)",
        "replay": "INSERT INTO replays(request_id, txn_id, at, caller_key_id, caller_role, endpoint, chain_hash) "
                  "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        "shadow": "INSERT INTO shadow_scores(request_id, txn_id, model_name, model_version, suspicion_score, alert, "
                  "components_json, scored_at, chain_hash) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
    }

    def _commit(self, group: list[_Write]) -> None:
        """One transaction for the group, in two round trips (psycopg's pipeline mode; five for a
        one-decision group sent a statement at a time).

        1. ``BEGIN``, lock the heads of the tables the group writes (``FOR UPDATE``, in name order),
           and read which of its explanations are stored already;
        2. chain the rows to the heads (here: SHA-256 of the head and of each row's bytes, which are
           prepared before the lock), insert them, move the heads and ``COMMIT``, sent together.

        The head rows stay locked only from the first round trip to the commit: another worker's
        commit waits for that, not for one round trip per statement (each of which also waits for
        this thread to get the GIL back from the worker's event loop). An explanation already
        stored (or twice in the group) is not written again and does not move the chain, as the
        SQLite log's ``INSERT OR IGNORE``: the check runs under the explanations head's lock, which
        every writer of that table takes, so no other commit can add one in between.
        """
        started = time.perf_counter()
        tables = sorted({_KIND_TABLE[w.kind] for w in group})
        tails = [[_row_tail(values) for values in w.rows] for w in group]  # before the lock: the slow part
        try:
            with self._db.pipeline() as pipe:
                cur = self._db.cursor()
                cur.execute("BEGIN")
                cur.execute("SELECT tbl, rows, head FROM audit_heads WHERE tbl = ANY(%s) ORDER BY tbl FOR UPDATE",
                            (tables,))
                asked = [(v[0], v[1]) for w in group if w.kind == "explanation" for v in w.rows]
                known = self._db.cursor()
                if asked:
                    known.execute("SELECT request_id, lang FROM explanations WHERE (request_id, lang) IN "
                                  "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                                  ([r for r, _ in asked], [lang for _, lang in asked]))
                pipe.sync()
                heads = {t: (int(n), h) for t, n, h in cur.fetchall()}
                stored = {(r, lang) for r, lang in known.fetchall()} if asked else set()
                inserts: dict[str, list[tuple[Any, ...]]] = {}
                for write, write_tails in zip(group, tails):
                    table = _KIND_TABLE[write.kind]
                    count, prev = heads[table]
                    rows = inserts.setdefault(write.kind, [])
                    for values, tail in zip(write.rows, write_tails):
                        if write.kind == "explanation":
                            key = (values[0], values[1])
                            if key in stored:
                                continue
                            stored.add(key)
                        prev = _chain_digest(prev, tail)
                        rows.append(values + (prev,))
                        count += 1
                    heads[table] = (count, prev)
                for kind, rows in inserts.items():
                    if rows:
                        cur.executemany(self._INSERT[kind], rows)
                cur.executemany("UPDATE audit_heads SET rows = %s, head = %s WHERE tbl = %s",
                                [(n, h, t) for t, (n, h) in heads.items()])
                cur.execute("COMMIT")
        except Exception as exc:  # noqa: BLE001 - the writes of the group are retried one by one
            self._roll_back()
            self._retry_one_by_one(group, exc)
            return
        self.commits += 1
        if self.on_commit is not None:
            try:
                self.on_commit(time.perf_counter() - started, len(group))
            except Exception:  # pragma: no cover
                log.exception("the audit log's commit observer failed")
        for write in group:
            self._finish(write, len(write.rows) if write.kind in ("decisions", "shadow") else None, None)

    def _roll_back(self) -> None:
        """End the failed transaction of :meth:`_commit` (an error in the pipeline skipped its COMMIT)."""
        import psycopg  # noqa: PLC0415 - only the PostgreSQL backend needs the driver

        if self._db.pgconn.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self._db.execute("ROLLBACK")

    # -- reading ---------------------------------------------------------------------------------
    _ABSENT = b"aml_txn_absent"  # the prepared statement of _surely_absent, on the reading connection

    def _surely_absent(self, txn_id: str) -> bool:
        """Whether ``txn_id`` has no decision, by a statement prepared once and run through libpq itself.

        Every new transaction asks this before it is counted (the replay check). psycopg's
        ``execute`` of the full row costs ~26 µs of CPU and a poll loop in Python per call; one
        ``SELECT 1`` prepared statement through libpq ~6 µs (``benchmarks/bench_decision_cpu.py``, the
        GIL released while it waits). A decision found (a replay), or any failure here, is left to
        :meth:`_one`: the row is read and decoded by psycopg as before, and a broken connection
        raises there as it always did.
        """
        if "\x00" in txn_id:  # libpq reads a text parameter up to a NUL: psycopg's query refuses it
            return False
        try:
            from psycopg import pq  # noqa: PLC0415 - only the PostgreSQL backend needs the driver

            with self._lock:
                pgconn = self._read.pgconn
                if not self._absent_prepared:
                    res = pgconn.prepare(self._ABSENT, b"SELECT 1 FROM decisions WHERE txn_id = $1 LIMIT 1")
                    if res.status != pq.ExecStatus.COMMAND_OK:
                        return False
                    self._absent_prepared = True
                res = pgconn.exec_prepared(self._ABSENT, [txn_id.encode("utf-8")])
                return res.status == pq.ExecStatus.TUPLES_OK and res.ntuples == 0
        except Exception:  # noqa: BLE001 - the full query answers instead
            log.debug("the prepared replay check failed; reading the row instead", exc_info=True)
            return False

    def _txn_ids_clause(self, ids: list[str]) -> tuple[str, Sequence[Any]]:
        return "txn_id = ANY(%s)", (ids,)

    def count(self) -> int:
        return int(self._rows("SELECT COUNT(*) FROM decisions", ())[0][0])

    def verify(self) -> tuple[bool, int, int | None]:
        report = verify_chain_pg(self.url, tables=("decisions",))
        if report.broken is None:
            return True, report.rows["decisions"], None
        return False, report.rows["decisions"], report.broken.seq

    def verify_all(self) -> ChainReport:
        return verify_chain_pg(self.url)

    def close(self) -> None:
        self._stop_writer()
        with self._lock:
            self._read.close()
        self._db.close()


def _stored_value(v: Any) -> Any:
    """A column value as the chain hashed it when written (bytes for BYTEA)."""
    return bytes(v) if isinstance(v, memoryview) else v


def verify_chain_pg(url: str, tables: Iterable[str] = tuple(CHAINED)) -> ChainReport:
    """Check the hash chain of every table of a PostgreSQL audit log, without writing anything.

    ``audit_heads`` is the checkpoint: a table with fewer rows than its head counts lost its tail, and
    the row at that count must carry the head hash.
    """
    conn = connect(url, autocommit=True)
    rows: dict[str, int] = {}
    unchained: dict[str, int] = {}
    broken: ChainBreak | None = None
    try:
        present = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        if "audit_heads" not in present:
            raise AmlError(f"there is no audit log in the database at {_safe(url)} (no audit_heads table)")
        heads = {t: (int(n), h) for t, n, h in conn.execute("SELECT tbl, rows, head FROM audit_heads")}
        for table in tables:
            columns = CHAINED[table]
            prev, n, last, found = _GENESIS, 0, 0, None
            head = heads.get(table)
            while found is None:
                batch = conn.execute(f"SELECT seq, {','.join(columns)}, chain_hash FROM {table} WHERE seq > %s "
                                     "ORDER BY seq LIMIT 1000", (last,)).fetchall()
                if not batch:
                    break
                for row in batch:
                    last = int(row[0])
                    values = tuple(_stored_value(v) for v in row[1:-1])
                    prev = _row_digest(prev, values)
                    if prev != row[-1]:
                        found = ChainBreak(table, last, "the row's content or its predecessor changed "
                                                        "(the chain hash does not match)")
                        break
                    n += 1
                    if head is not None and n == head[0] and prev != head[1]:
                        found = ChainBreak(table, last, "the row the head (audit_heads) counts to does not carry "
                                                        "its head hash")
                        break
            if found is None and head is not None and n < head[0]:
                found = ChainBreak(table, None, f"the table has {n} rows but audit_heads recorded {head[0]}: rows "
                                                f"{n + 1} to {head[0]} were removed from its end")
            rows[table], unchained[table] = n, 0
            if broken is None:
                broken = found
    finally:
        conn.close()
    return ChainReport(rows=rows, unchained=unchained, checkpoint=None, broken=broken)


def _safe(url: str) -> str:
    """``url`` without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url
