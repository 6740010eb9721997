"""Online feature state shared by several service workers: one ordered transaction log in Valkey/Redis.

Every worker keeps a replica of the window state in memory; Redis holds what makes the replicas agree:

* ``{aml}:log`` - a stream of the counted transactions (their contract fields) and customers changes,
  entry ``<seq>-1``; sequence numbers have no gaps;
* ``{aml}:txn`` - ``txn_id -> seq``: a transaction is counted once, whoever sends it again;
* ``{aml}:last`` - ``customer_id -> time (ns)`` of the customer's latest transaction: a late one is refused;
* ``{aml}:feat`` - ``txn_id -> feature row``: what a sent-again transaction gets back;
* ``{aml}:txnq`` - the expiry queue of ``txn`` and ``feat`` (claim order: time, customer, txn_id);
* ``{aml}:snap`` - the newest snapshot of the state (``seq``, and ``blob_key``: the key of its blob,
  ``{aml}:snap:blob:<seq>:<random>``), and ``{aml}:snaps`` the blob keys of the snapshots kept, by
  seq: a starting worker loads the newest and replays the log after it;
* ``{aml}:meta`` - what the log was built with, and ``trimmed``: the log holds every entry after it.

What is kept (:class:`TrimPolicy`): the newest ``keep_snapshots`` snapshots; the log after the oldest
of them (the snapshot script moves the trim point in the step that stores the pointer, and the
snapshot's writer, off the request path, then drops the entries before it in chunks); feature rows
and txn ids for ``retry_hours`` of transaction time before the newest transaction claimed (dropped by
the same writer, :data:`_TRIM_CHUNK` per script call). A resend
of a transaction whose id was dropped is refused as late, never counted twice: its customer has a
later transaction, or the drop raised the customer's latest time by 1 ns past it. The rating
window a restart needs travels in the state's snapshot
(:class:`amlscore.features.recent_rows.RecentRows`), not in the trimmed log and rows. A replica
that falls behind the trim point (it did not claim while the snapshots kept were written) is told
so, :class:`LogTrimmedError`, by its next claim (before anything changes), catch-up or customers
change, and rebuilds from a snapshot instead of skipping entries.

A transaction is *claimed* by one server-side script (:data:`_CLAIM`) that, in one atomic step, finds
its ``txn_id`` (then nothing changes), refuses it when it is older than its customer's latest, else
gives it the next sequence number and appends it to the log; in the same reply it returns the log
entries between the worker's last one and the new one (those other workers claimed meanwhile), so
that catching up costs no second round trip. The worker then applies every logged
transaction before it that its replica has not seen (whoever claimed them) and computes its row:
each row is the function of the log prefix before it, so two workers scoring transactions of the
same customer, IP address or device at the same moment both count both, in the log's order, and
every worker's replica is the same state at the same sequence number. Nothing is lost because
nothing is ever written back over: the log only grows at its end, and the windows are recomputed
from it.

What that costs: each worker applies every transaction to its replica (about 0.1 ms each; the
model and the explanation are most of a decision's CPU), and holds the whole window state in memory
(docs/scale-out.md sizes it). Keys share the ``{aml}`` hash tag, so a Redis Cluster keeps them on one
shard (the log is one sequence by design).

Durability is Redis's: with ``appendonly yes`` and ``appendfsync always`` a claimed transaction is on
disk before the script returns; with ``everysec`` (Redis's default) a power cut can lose up to a
second of claims. A worker whose replica is then ahead of Redis notices (:class:`StateDivergedError`)
at its next claim; docs/scale-out.md says what to do.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import numpy as np

from amlscore.contract.errors import AmlError

log = logging.getLogger(__name__)

__all__ = ["RedisFeatureStore", "StateDivergedError", "LogTrimmedError", "Claim", "TrimPolicy"]

_NS_KEY = "{aml}"
_BATCH = 2000  # log entries per XRANGE while catching up
_ORPHAN_BLOB_S = 3600  # a snapshot blob whose writer died before storing its pointer expires after this

# Times are compared as decimal strings (length, then text): Lua's numbers are doubles and lose the
# last digits of a nanosecond time.
_LT = """
local function lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
"""

# KEYS: seq, log, txn, last, meta, tq. A claim by a worker whose replica is behind the log's trim point
# (it has not applied entries that are gone) is refused before anything changes (status 3): the worker
# rebuilds from a snapshot and claims again. A counted transaction goes to the expiry queue ``tq`` as
# ``<time>:<len(customer)>:<customer><txn_id>`` (see _TRIM_ROWS).
_CLAIM = _LT + """
local seen = redis.call('HGET', KEYS[3], ARGV[1])
if seen then return {1, tonumber(seen), ''} end
local last = redis.call('HGET', KEYS[4], ARGV[2])
if last and lt(ARGV[3], last) then return {2, 0, last} end
local after = tonumber(ARGV[5])
local trimmed = tonumber(redis.call('HGET', KEYS[5], 'trimmed') or '0')
if after < trimmed then return {3, trimmed, ''} end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-1', 'r', ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], seq)
if (not last) or lt(last, ARGV[3]) then redis.call('HSET', KEYS[4], ARGV[2], ARGV[3]) end
redis.call('RPUSH', KEYS[6], ARGV[3] .. ':' .. #ARGV[2] .. ':' .. ARGV[2] .. ARGV[1])
if after >= seq - 1 then return {0, seq, ''} end
local start = '-'
if after > 0 then start = '(' .. after .. '-1' end
return {0, seq, '', redis.call('XRANGE', KEYS[2], start, (seq - 1) .. '-1', 'COUNT', ARGV[6])}
"""

# A change of the customers table, logged between two transactions (KEYS: seq, log, meta; ARGV: payload,
# the worker's last seq). Refused (minus the trim point) when the worker is behind the trim point.
_LOG_CUSTOMERS = """
local trimmed = tonumber(redis.call('HGET', KEYS[3], 'trimmed') or '0')
if tonumber(ARGV[2]) < trimmed then return -trimmed end
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], seq .. '-1', 'r', ARGV[1])
return seq
"""

# A snapshot replaces the stored one only when it is of a later sequence number (seq 0, the warm-up's,
# only an empty or seq-0 one). Its blob is written before, under a key of its own, by a plain SET:
# the script only moves the pointer (a 33 MB blob passed to a script held Redis, and every worker's
# claims, for 0.1-0.35 s; SLOWLOG). The newest ``keep`` snapshots are kept (``snaps``: blob key by
# seq); older ones' blobs, and a refused one, are unlinked. With ``trim`` ``meta.trimmed`` moves to
# the oldest snapshot kept: from here on the log need only hold what follows it (a worker starting
# from any kept snapshot finds that), and a replica behind it is refused; the writer then drops the
# entries up to it in chunks (trim_log: one XTRIM of 50,000 entries held Redis for 17-20 ms).
# KEYS: snap, blob_key, snaps, log, meta; ARGV: seq, keep, trim (0/1).
_SNAPSHOT = """
local cur = redis.call('HGET', KEYS[1], 'seq')
local refused = (cur and tonumber(cur) >= tonumber(ARGV[1]) and tonumber(ARGV[1]) > 0)
  or (cur and tonumber(ARGV[1]) == 0 and tonumber(cur) > 0)
if refused then
  redis.call('UNLINK', KEYS[2])
  return 0
end
local old = redis.call('HGET', KEYS[1], 'blob_key')
if old and old ~= KEYS[2] then
  if tonumber(cur) == tonumber(ARGV[1]) then  -- a seq-0 snapshot replacing a seq-0 one: one of a seq
    redis.call('ZREM', KEYS[3], old)
    redis.call('UNLINK', old)
  elseif not redis.call('ZSCORE', KEYS[3], old) then
    redis.call('ZADD', KEYS[3], cur, old)  -- the pointer of a release that kept one snapshot
  end
end
redis.call('HDEL', KEYS[1], 'blob')
redis.call('PERSIST', KEYS[2])
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'blob_key', KEYS[2])
redis.call('ZADD', KEYS[3], ARGV[1], KEYS[2])
local keep = tonumber(ARGV[2])
local n = redis.call('ZCARD', KEYS[3])
if n > keep then
  for _, key in ipairs(redis.call('ZRANGE', KEYS[3], 0, n - keep - 1)) do redis.call('UNLINK', key) end
  redis.call('ZREMRANGEBYRANK', KEYS[3], 0, n - keep - 1)
end
if ARGV[3] == '1' then
  local oldest = tonumber(redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')[2])
  local trimmed = tonumber(redis.call('HGET', KEYS[5], 'trimmed') or '0')
  if oldest > trimmed then redis.call('HSET', KEYS[5], 'trimmed', string.format('%d', oldest)) end
end
return 1
"""

# Feature rows and txn ids of transactions older than the retry horizon (ARGV[1], a time), at most
# ARGV[2] of them, from the head of the expiry queue (claim order: an entry waits behind a later-dated
# one before it, which only keeps it longer). A customer whose latest time is the dropped
# transaction's gets that time plus 1 ns: a resend of the dropped txn_id is then refused as late by
# the claim, never counted twice. KEYS: tq, txn, feat, last.
_TRIM_ROWS = _LT + """
local function plus_one(s)
  local i = #s
  while i > 0 and string.sub(s, i, i) == '9' do i = i - 1 end
  if i == 0 then return '1' .. string.rep('0', #s) end
  return string.sub(s, 1, i - 1) .. string.char(string.byte(s, i) + 1) .. string.rep('0', #s - i)
end
local n = 0
local most = tonumber(ARGV[2])
while n < most do
  local e = redis.call('LINDEX', KEYS[1], 0)
  if not e then break end
  local c1 = string.find(e, ':', 1, true)
  local t = string.sub(e, 1, c1 - 1)
  if not lt(t, ARGV[1]) then break end
  local c2 = string.find(e, ':', c1 + 1, true)
  local len = tonumber(string.sub(e, c1 + 1, c2 - 1))
  local cust = string.sub(e, c2 + 1, c2 + len)
  local txn = string.sub(e, c2 + len + 1)
  redis.call('LPOP', KEYS[1])
  redis.call('HDEL', KEYS[2], txn)
  redis.call('HDEL', KEYS[3], txn)
  if redis.call('HGET', KEYS[4], cust) == t then redis.call('HSET', KEYS[4], cust, plus_one(t)) end
  n = n + 1
end
return n
"""

# A feature row is stored only while its txn id is kept: a row written after the trim dropped its id
# would never be dropped. KEYS: txn, feat.
_PUT_ROW = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[2], ARGV[1], ARGV[2]) return 1 end
return 0
"""

# A snapshot blob that no pointer names and that does not expire (its writer stored it, then it was
# left behind: a crash of an earlier release, a copied database) is unlinked; one with a TTL is a
# writer's in flight. KEYS: snap, snaps, the blob.
_ORPHAN = """
if redis.call('TTL', KEYS[3]) ~= -1 then return 0 end
if redis.call('ZSCORE', KEYS[2], KEYS[3]) then return 0 end
if redis.call('HGET', KEYS[1], 'blob_key') == KEYS[3] then return 0 end
redis.call('UNLINK', KEYS[3])
return 1
"""

# Latest times of customers seeded from history older than what is replayed (only ever raised).
_SEED_LAST = _LT + """
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or lt(cur, ARGV[i + 1]) then redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return #ARGV / 2
"""


@dataclass(frozen=True)
class TrimPolicy:
    """What the shared store keeps (``AML_STATE_TRIM``, ``AML_STATE_KEEP_SNAPSHOTS``, ``AML_STATE_RETRY_HOURS``).

    ``keep_snapshots`` newest snapshots are kept; with ``trim`` the log keeps only the entries after
    the oldest of them, and feature rows and txn ids go once their transaction is ``retry_hours``
    (of transaction time) older than the newest one counted. Without ``trim`` nothing but the
    snapshots beyond ``keep_snapshots`` is ever deleted (as before this setting).
    """

    trim: bool = True
    keep_snapshots: int = 2
    retry_hours: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.keep_snapshots, int) or self.keep_snapshots < 1:
            raise ValueError(f"keep_snapshots must be an integer >= 1 (a starting worker needs a snapshot); "
                             f"got {self.keep_snapshots!r}")
        if not self.retry_hours > 0:
            raise ValueError(f"retry_hours must be positive; got {self.retry_hours!r}")

    @property
    def retry_ns(self) -> int:
        return int(self.retry_hours * 3600 * 1_000_000_000)


class StateDivergedError(AmlError):
    """The worker's replica has counted transactions that Redis no longer has (Redis lost data)."""


class LogTrimmedError(AmlError):
    """The log no longer holds entries this replica has not applied: it must rebuild from a snapshot.

    Raised by :meth:`RedisFeatureStore.claim` and :meth:`RedisFeatureStore.log_customers` before
    anything changed, and by :meth:`RedisFeatureStore.entries` at the first missing entry.
    """

    def __init__(self, after: int, trimmed: int) -> None:
        super().__init__(f"the shared log holds no entries at or before seq {trimmed}, and this replica has applied "
                         f"only up to seq {after}")
        self.after, self.trimmed = after, trimmed


class Claim:
    """What the claim script answered: ``new`` (with its seq), ``seen`` (seq) or ``late`` (the latest time)."""

    __slots__ = ("status", "seq", "latest_ns")

    def __init__(self, status: str, seq: int, latest_ns: int | None) -> None:
        self.status, self.seq, self.latest_ns = status, seq, latest_ns


def _redis_client(url: str) -> Any:
    try:
        import redis  # noqa: PLC0415 - only the shared backend needs the client
    except ImportError:  # pragma: no cover - a dependency of the package
        raise AmlError("AML_STATE_URL names Redis/Valkey but the 'redis' package is not installed "
                       "(pip install 'redis>=5,<7')") from None
    return redis.Redis.from_url(url, socket_timeout=30, socket_connect_timeout=10, health_check_interval=30)


class _Direct:
    """The per-transaction commands (the row's ``HGET``, the claim and the row's ``PUT``) on one connection
    of the client's pool kept for them, without the client's per-call layers.

    ``redis-py`` takes a connection from its pool, wraps the call in its retry policy, and goes
    through the script object and its command wrappers for every call: about 10-14 µs of CPU per
    command, three commands per transaction (``benchmarks/bench_decision_cpu.py``). Here the command
    is packed, sent and its reply read on the kept connection (the same parser, the same health check
    and the same reply: neither command has a reply callback in the client). The library's call
    (``fallback``) answers instead, as before, when the connection fails (it is dropped: the library
    reconnects and retries as it always did), when the server does not know the script (the library
    loads it), in a forked process, and when another thread is using the connection.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._conn: Any = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.fallbacks = 0  # calls the client answered instead

    def call(self, fallback: Any, *command: Any) -> Any:
        """The reply to ``command`` (``"EVALSHA", sha, ...``, ``"HGET", ...``), or ``fallback()``'s."""
        if os.getpid() != self._pid or not self._lock.acquire(blocking=False):
            self.fallbacks += 1
            return fallback()
        try:
            conn = self._conn
            if conn is None:
                conn = self._conn = self._client.connection_pool.get_connection()
            conn.send_packed_command(conn.pack_command(*command))
            return conn.read_response()
        except _NoScript:
            self.fallbacks += 1
            return fallback()
        except (_ConnectionError, _TimeoutError):
            self._drop()
            self.fallbacks += 1
            return fallback()
        finally:
            self._lock.release()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.disconnect()
            finally:
                self._client.connection_pool.release(conn)

    def close(self) -> None:
        if os.getpid() == self._pid:
            with self._lock:
                self._drop()


try:  # the exceptions _Direct falls back on (the package is a dependency; imported lazily by _redis_client)
    from redis.exceptions import ConnectionError as _ConnectionError  # noqa: A004
    from redis.exceptions import NoScriptError as _NoScript
    from redis.exceptions import TimeoutError as _TimeoutError  # noqa: A004
except ImportError:  # pragma: no cover - _redis_client says what is missing
    _ConnectionError = _NoScript = _TimeoutError = type("_Never", (Exception,), {})  # type: ignore[misc,assignment]


def _keys() -> dict[str, str]:
    k = _NS_KEY
    return {"seq": f"{k}:seq", "log": f"{k}:log", "txn": f"{k}:txn", "last": f"{k}:last", "feat": f"{k}:feat",
            "snap": f"{k}:snap", "snaps": f"{k}:snaps", "meta": f"{k}:meta", "tq": f"{k}:txnq"}


class RedisFeatureStore:
    """The feature store of :class:`~amlscore.features.online.OnlineFeatureState` over Valkey/Redis.

    ``shared`` tells the state to claim each transaction before computing it (see the module text).
    ``url`` is ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS). ``trim`` says what is
    kept (:class:`TrimPolicy`; the default trims). ``direct`` sends the three commands of every
    transaction on a connection kept for them (:class:`_Direct`); ``False``: through the client's calls.
    """

    shared = True

    def __init__(self, url: str, *, keep_rows: int = 20_000, trim: TrimPolicy | None = None,
                 direct: bool = True) -> None:
        self.url = url
        self.trim = trim if trim is not None else TrimPolicy()
        self._r = _redis_client(url)
        try:
            self._r.ping()
        except Exception as exc:  # noqa: BLE001 - the client raises several kinds for one meaning
            raise AmlError(f"cannot reach the online state's Redis/Valkey at {_safe(url)}: {exc}") from None
        self.keys = _keys()
        self._claim = self._r.register_script(_CLAIM)
        self._snapshot = self._r.register_script(_SNAPSHOT)
        self._seed = self._r.register_script(_SEED_LAST)
        self._log_customers = self._r.register_script(_LOG_CUSTOMERS)
        self._put_row = self._r.register_script(_PUT_ROW)
        self._direct = _Direct(self._r)  # the claim and the row's HGET and PUT (``direct=False``: by the client)
        self.direct = direct
        # rows this replica computed for transactions other workers claimed: what a sent-again
        # transaction gets when its first worker died before storing its row
        self._rows: OrderedDict[str, np.ndarray] = OrderedDict()
        self._keep_rows = keep_rows
        # The last seq this store handed to its state (from the log or a claim): a claim asks for
        # the entries after it, and keeps them for the catch-up that follows (_Prefetch)
        self._handed = 0
        self._prefetch: _Prefetch | None = None
        self.store_id = self._store_id()

    def _store_id(self) -> str:
        self._r.hsetnx(self.keys["meta"], "store_id", os.urandom(16).hex())
        return self._r.hget(self.keys["meta"], "store_id").decode()

    def bind(self, identity: Mapping[str, Any]) -> None:
        """Tie the shared log to the feature parameters, feature set and state layout of its first user.

        Every worker computes every row from the log, so workers of other parameters would give other
        rows for the same transactions: they are refused, naming what differs.
        """
        for key, value in identity.items():
            self._r.hsetnx(self.keys["meta"], key, str(value))
        bound = {k.decode(): v.decode() for k, v in self._r.hgetall(self.keys["meta"]).items()}
        for key, value in identity.items():
            if bound.get(key) != str(value):
                raise AmlError(f"the online state at {_safe(self.url)} was built with {key} {bound.get(key)!r}; this "
                               f"worker computes {value!r}. Every worker must run the same feature parameters and "
                               "feature set: use another Redis database (the /N of AML_STATE_URL) for other ones")

    def rewind(self, seq: int) -> None:
        """The state was rebuilt at ``seq``: the next claim asks for the entries after it."""
        self._handed, self._prefetch = seq, None

    def trimmed(self) -> int:
        """The log's trim point: it holds every entry after this seq and none at or before it."""
        raw = self._r.hget(self.keys["meta"], "trimmed")
        return int(raw) if raw is not None else 0

    # -- the claim ----------------------------------------------------------------------------------
    def claim(self, record: Mapping[str, Any], t_ns: int, payload: str) -> Claim:
        """Claim ``record`` (its JSON ``payload`` goes to the log) in one atomic step.

        Raises :class:`LogTrimmedError`, having changed nothing, when this replica is behind the log's
        trim point.
        """
        k = self.keys
        after = self._handed
        keys = [k["seq"], k["log"], k["txn"], k["last"], k["meta"], k["tq"]]
        args = [record["txn_id"], record["customer_id"], str(t_ns), payload, after, _BATCH]
        status, seq, latest, *logged = self._script(self._claim, keys, args)
        if status == 1:
            return Claim("seen", int(seq), None)
        if status == 2:
            return Claim("late", 0, int(latest))
        if status == 3:
            raise LogTrimmedError(after, int(seq))
        seq = int(seq)
        entries = [(int(entry_id.split(b"-", 1)[0]), _field(fields))
                   for entry_id, fields in (logged[0] if logged else [])]
        self._prefetch = _Prefetch(after, seq - 1, entries)
        self._handed = seq
        return Claim("new", seq, None)

    def log_customers(self, payload: str) -> int:
        """Log a customers change (JSON ``payload``) after every transaction claimed so far; returns its seq.

        Raises :class:`LogTrimmedError`, having logged nothing, when this replica is behind the trim point.
        """
        seq = int(self._log_customers(keys=[self.keys["seq"], self.keys["log"], self.keys["meta"]],
                                      args=[payload, self._handed]))
        if seq < 0:
            raise LogTrimmedError(self._handed, -seq)
        return seq

    def entries(self, after: int, upto: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Log entries ``(seq, JSON payload)`` after ``after`` (up to ``upto`` when given), in order.

        Sequence numbers have no gaps (every one the counter gives is logged in the same script), so
        a missing one was trimmed: :class:`LogTrimmedError` is raised there, never an entry skipped.
        """
        if upto is not None and upto <= after:
            return
        expect = after + 1
        prefetch, self._prefetch = self._prefetch, None
        if prefetch is not None and prefetch.after == after and upto is not None and upto <= prefetch.upto:
            # what the claim returned: the log from ``after`` up to the claim (or its first _BATCH entries)
            for seq, payload in prefetch.entries:
                if seq > upto:
                    return
                if seq != expect:
                    raise LogTrimmedError(expect - 1, seq - 1)
                self._handed = max(self._handed, seq)
                yield seq, payload
                after, expect = seq, seq + 1
            if len(prefetch.entries) < _BATCH or after >= upto:
                return
        start = f"({after}-1" if after > 0 else "-"
        end = f"{upto}-1" if upto is not None else "+"
        while True:
            batch = self._r.xrange(self.keys["log"], start, end, count=_BATCH)
            for entry_id, fields in batch:
                seq = int(entry_id.split(b"-", 1)[0])
                if seq != expect:
                    raise LogTrimmedError(expect - 1, seq - 1)
                self._handed = max(self._handed, seq)
                yield seq, fields[b"r"]
                expect = seq + 1
            if len(batch) < _BATCH:
                break
            start = f"({batch[-1][0].decode()}"
        if upto is not None and expect <= upto:
            raise LogTrimmedError(expect - 1, max(upto, self.trimmed()))
        if upto is None and self.trimmed() >= expect:  # an empty tail: nothing after, or all of it trimmed
            raise LogTrimmedError(expect - 1, self.trimmed())

    def put_features(self, txn_id: str, features: np.ndarray) -> None:
        """Store the row of a claimed transaction (unless the trim has dropped its txn id meanwhile)."""
        self._script(self._put_row, [self.keys["txn"], self.keys["feat"]],
                     [txn_id, np.ascontiguousarray(features, dtype=np.float64).tobytes()])

    def _script(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered script: on the kept connection (:class:`_Direct`), else by the client."""
        if not self.direct:
            return script(keys=keys, args=args)
        return self._direct.call(lambda: script(keys=keys, args=args), "EVALSHA", script.sha, len(keys), *keys, *args)

    def remember_row(self, txn_id: str, features: np.ndarray) -> None:
        """Keep the row this replica computed for a transaction another worker claimed (bounded)."""
        self._rows[txn_id] = features
        if len(self._rows) > self._keep_rows:
            self._rows.popitem(last=False)

    def remembered_row(self, txn_id: str) -> np.ndarray | None:
        return self._rows.get(txn_id)

    def seed_latest(self, latest: Mapping[str, int]) -> None:
        """Raise the customers' latest times to those of history that is seeded, not replayed."""
        items = [x for cid, t in latest.items() for x in (cid, str(int(t)))]
        for start in range(0, len(items), 2000):
            self._seed(keys=[self.keys["last"]], args=items[start:start + 2000])

    def seq_now(self) -> int:
        raw = self._r.get(self.keys["seq"])
        return int(raw) if raw is not None else 0

    # -- the FeatureStore protocol ------------------------------------------------------------------
    def get_features(self, txn_id: str) -> np.ndarray | None:
        key = self.keys["feat"]
        raw = self._direct.call(lambda: self._r.hget(key, txn_id), "HGET", key, txn_id) if self.direct \
            else self._r.hget(key, txn_id)
        return None if raw is None else np.frombuffer(raw, dtype=np.float64).copy()

    def append(self, txn_id: str, record: Mapping[str, Any], features: np.ndarray) -> int:  # pragma: no cover
        raise RuntimeError("the shared store is written by claim(), not append()")

    def events_after(self, seq: int) -> Iterator[tuple[int, dict[str, Any]]]:
        import json  # noqa: PLC0415

        for s, payload in self.entries(seq):
            yield s, json.loads(payload)

    def recent_events(self, days: float) -> Iterator[tuple[dict[str, Any], np.ndarray]]:
        """Every logged event with a stored row (a superset of the last ``days``, as the protocol allows).

        Only what is still kept: after a trim, the log starts after the oldest snapshot kept and rows
        older than the retry window are gone. The service reads its rating window from the state's
        snapshot instead (:class:`amlscore.features.recent_rows.RecentRows`); this is its fallback for
        a snapshot without one.
        """
        import json  # noqa: PLC0415

        pending: list[dict[str, Any]] = []

        def flush() -> Iterator[tuple[dict[str, Any], np.ndarray]]:
            rows = self._r.hmget(self.keys["feat"], [rec["txn_id"] for rec in pending])
            for rec, raw in zip(pending, rows):
                if raw is not None:
                    yield rec, np.frombuffer(raw, dtype=np.float64).copy()
            pending.clear()

        for _, payload in self.entries(self.trimmed()):
            rec = json.loads(payload)
            if "txn_id" in rec:  # (a customers change is no transaction)
                pending.append(rec)
            if len(pending) >= _BATCH:
                yield from flush()
        if pending:
            yield from flush()

    def save_snapshot(self, seq: int, blob: bytes) -> None:
        _write_snapshot(self._r, self.keys, self.trim, seq, blob)

    def write_snapshot_in_child(self, seq: int, blob: bytes) -> None:
        """:meth:`save_snapshot` from a forked child: over a connection of its own."""
        _write_snapshot(_redis_client(self.url), self.keys, self.trim, seq, blob)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        return self.snapshot_upto(None)

    def snapshot_upto(self, upto: int | None) -> tuple[int, bytes] | None:
        """The newest snapshot kept (of seq at most ``upto`` when given): ``(seq, blob)``, or None."""
        for _ in range(5):  # a newer snapshot may replace (and unlink) the blob between the two reads
            seq, blob_key, blob = self._r.hmget(self.keys["snap"], ["seq", "blob_key", "blob"])
            if seq is None:
                return None
            if blob_key is None:  # written by a release that kept the blob in the hash
                return None if blob is None or (upto is not None and int(seq) > upto) else (int(seq), bytes(blob))
            if upto is not None and int(seq) > upto:
                found = self._r.zrevrangebyscore(self.keys["snaps"], upto, "-inf", start=0, num=1, withscores=True)
                if not found:
                    return None
                blob_key, seq = found[0]
            blob = self._r.get(blob_key)
            if blob is not None:
                return int(seq), bytes(blob)
        raise AmlError(f"the snapshot at {_safe(self.url)} kept changing while it was read; try again")

    def last_seq(self) -> int:
        info = self._r.xinfo_stream(self.keys["log"]) if self._r.exists(self.keys["log"]) else None
        if not info or info.get("last-generated-id") in (None, b"0-0"):
            return 0
        return int(info["last-generated-id"].split(b"-", 1)[0])

    def count(self) -> int:
        return int(self._r.xlen(self.keys["log"]))

    def close(self) -> None:
        self._direct.close()
        self._r.close()


# What one trim call may hold Redis (and so every worker's claims) for: 250 expiry-queue entries took
# 1.4 ms a call (up to 12 ms on a busy machine), 50,000 log entries in one XTRIM 17-20 ms
_TRIM_CHUNK = 100
_LOG_TRIM_CHUNK = 2000


def _write_snapshot(client: Any, keys: Mapping[str, str], policy: TrimPolicy, seq: int, blob: bytes) -> None:
    """Store a snapshot unless a later one is stored: the blob by SET, then the pointer (and the log's
    trim) by a script; then, by the same writer, the trim of rows and txn ids and of orphaned blobs."""
    current = client.hget(keys["snap"], "seq")
    if current is not None and ((seq > 0 and int(current) >= seq) or (seq == 0 and int(current) > 0)):
        return  # not newer: the blob need not cross the network (the script would refuse it anyway)
    blob_key = f"{keys['snap']}:blob:{seq}:{os.urandom(6).hex()}"
    client.set(blob_key, blob, ex=_ORPHAN_BLOB_S)  # the script keeps it (PERSIST); a writer that dies first does not
    stored = client.register_script(_SNAPSHOT)(keys=[keys["snap"], blob_key, keys["snaps"], keys["log"], keys["meta"]],
                                               args=[seq, policy.keep_snapshots, int(policy.trim)])
    if stored:
        if policy.trim:
            trim_log(client, keys)
        trim_rows(client, keys, policy)
        remove_orphan_blobs(client, keys)


def trim_log(client: Any, keys: Mapping[str, str] | None = None) -> int:
    """Drop the log's entries up to its trim point (``meta.trimmed``), whole stream nodes a chunk at a
    time (``XTRIM MINID ~ ... LIMIT``), then the rest of the node it falls in; returns how many."""
    keys = keys or _keys()
    upto = int(client.hget(keys["meta"], "trimmed") or 0)
    if upto <= 0:
        return 0
    minid = f"{upto + 1}-0"
    total = 0
    while True:
        n = int(client.xtrim(keys["log"], minid=minid, approximate=True, limit=_LOG_TRIM_CHUNK))
        total += n
        if n == 0:
            break
    return total + int(client.xtrim(keys["log"], minid=minid, approximate=False))


def trim_rows(client: Any, keys: Mapping[str, str] | None = None, policy: TrimPolicy | None = None) -> int:
    """Drop the feature rows and txn ids of transactions older than the retry horizon (the newest
    claimed transaction's time minus the retry window), in chunks; returns how many."""
    keys = keys or _keys()
    policy = policy or TrimPolicy()
    if not policy.trim:
        return 0
    tail = client.lindex(keys["tq"], -1)
    if tail is None:
        return 0
    horizon = str(int(tail.split(b":", 1)[0]) - policy.retry_ns)
    script = client.register_script(_TRIM_ROWS)
    total = 0
    while True:
        n = int(script(keys=[keys["tq"], keys["txn"], keys["feat"], keys["last"]], args=[horizon, _TRIM_CHUNK]))
        total += n
        if n < _TRIM_CHUNK:
            return total


def remove_orphan_blobs(client: Any, keys: Mapping[str, str] | None = None) -> int:
    """Unlink snapshot blobs that no pointer names and that do not expire; returns how many."""
    keys = keys or _keys()
    script = client.register_script(_ORPHAN)
    return sum(int(script(keys=[keys["snap"], keys["snaps"], key]))
               for key in client.scan_iter(match=keys["snap"] + ":blob:*", count=1000))


class _Prefetch:
    """Log entries ``(seq, payload)`` after ``after`` up to ``upto``, as a claim's reply carried them."""

    __slots__ = ("after", "upto", "entries")

    def __init__(self, after: int, upto: int, entries: list[tuple[int, bytes]]) -> None:
        self.after, self.upto, self.entries = after, upto, entries


def _field(fields: Any) -> bytes:
    """The ``r`` field of a stream entry as a script returns it (a flat list ``[name, value, ...]``)."""
    if isinstance(fields, dict):
        return fields[b"r"]
    pairs = dict(zip(fields[::2], fields[1::2]))
    return pairs[b"r"]


def _safe(url: str) -> str:
    """``url`` without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
