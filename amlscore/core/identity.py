"""Named people and their credentials: who looked at, decided or approved anything.

The scoring service's shared role keys (``api_keys.yaml``) say which *system* called; they cannot say
which officer did. This store keeps one row per person (``<state>/users.sqlite``): a name, a role, a
password hashed with scrypt (standard library, a random 16-byte salt per person, N=2**14, r=8, p=1),
who created the person and when, and who revoked them and when. People are revoked, never deleted:
their name stays in every record they signed. Every change is also a row of ``user_events``, which
refuses ``UPDATE`` and ``DELETE`` (triggers), like the audit log.

Roles:

* ``channel``: a system (a channel's gateway) under a person's name: scores, never sees risk levels,
  explanations or cases;
* ``analyst``: triages alerts, works cases and decides them;
* ``reviewer``: approves or sends back another person's decision (four eyes), and may do what an
  analyst does;
* ``admin``: everything, and creates and revokes people.

Both the scoring service (``Authorization: Basic``) and the casework pages (sign-in) authenticate
against this store; a person's credential shows in their records as ``user:<name>``.

Guessing is slowed per name (:class:`SignInPolicy`): after 5 wrong passwords for one name within
15 minutes, that name is locked for 15 minutes after the last one, even for the right password
(:class:`SignInLocked`, answered 429). The failures are rows of the same database, so every process
on the state folder and a restart see them; each lock is a ``user_events`` row (``locked``).
Spreading guesses over many names from one address is for the bank's reverse proxy to limit.

Sign-in sessions of the pages are rows here too (:meth:`UserStore.open_session`), kept by the
token's SHA-256 only: every worker on the state folder knows them, a restart keeps them, and a
copy of the database opens none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from amlscore.contract.errors import AmlError
from amlscore.core.audit import utc_now_iso
from amlscore.storage.append_only import append_only_triggers
from amlscore.storage.private import private_database

PERSON_ROLES: tuple[str, ...] = ("channel", "analyst", "reviewer", "admin")
# Roles that see risk levels, explanations and cases (the casework pages, the service's full view).
CASE_ROLES = frozenset({"analyst", "reviewer", "admin"})
APPROVER_ROLES = frozenset({"reviewer", "admin"})
USER_PREFIX = "user:"
_NAME = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1, "dklen": 32}
MIN_PASSWORD = 12

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    display_name TEXT NOT NULL,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    kdf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    revoked_at TEXT,
    revoked_by TEXT
);
CREATE TABLE IF NOT EXISTS user_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    role TEXT NOT NULL,
    at TEXT NOT NULL,
    by TEXT NOT NULL
);
""" + append_only_triggers("user_events") + """
CREATE TRIGGER IF NOT EXISTS users_no_delete BEFORE DELETE ON users
BEGIN SELECT RAISE(ABORT, 'people are revoked, never deleted: DELETE refused'); END;
CREATE TABLE IF NOT EXISTS sessions (
    token_hash BLOB PRIMARY KEY,
    name TEXT NOT NULL,
    csrf TEXT NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_name ON sessions(name);
CREATE TABLE IF NOT EXISTS sign_in_failures (
    name TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sign_in_failures_name ON sign_in_failures(name, at);
"""


class IdentityError(AmlError):
    """A person cannot be created, revoked or found as asked (the message says why)."""


class CredentialRefused(AmlError):
    """A sign-in or credential was refused: unknown person, wrong password or revoked.

    The message never says which of the three, so it tells an attacker nothing.
    """


class SignInLocked(CredentialRefused):
    """Too many wrong passwords for this name lately: refused without a check for ``retry_after`` seconds.

    Said for unknown names too, so the lock tells an attacker nothing about who exists.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed sign-ins for this name: try again in {retry_after} seconds")
        self.retry_after = retry_after


@dataclass(frozen=True)
class SignInPolicy:
    """How guessing is slowed: ``max_failures`` wrong passwords for a name within ``window_seconds``
    lock it for ``lockout_seconds`` after the last (OWASP Authentication Cheat Sheet, account lockout)."""

    max_failures: int = 5
    window_seconds: float = 900.0
    lockout_seconds: float = 900.0

    def __post_init__(self) -> None:
        if self.max_failures < 1 or self.window_seconds <= 0 or self.lockout_seconds <= 0:
            raise ValueError(f"SignInPolicy needs max_failures >= 1 and positive seconds. Got {self}.")


@dataclass(frozen=True)
class Person:
    """A named person and their role (``key_id`` is how records name them: ``user:<name>``)."""

    name: str
    role: str
    display_name: str

    @property
    def key_id(self) -> str:
        return USER_PREFIX + self.name

    @property
    def sees_cases(self) -> bool:
        """May see risk levels, explanations and case data."""
        return self.role in CASE_ROLES


@dataclass(frozen=True)
class Session:
    """A signed-in person's session: whose, its CSRF token for forms, and when it ends (epoch seconds)."""

    name: str
    csrf: str
    expires: float


@dataclass(frozen=True)
class UserRow:
    """A person as listed (no credential material)."""

    name: str
    role: str
    display_name: str
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None


def hash_password(password: str, salt: bytes) -> bytes:
    """scrypt of the password with the person's salt (the standard library's KDF)."""
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


def generate_password() -> str:
    """A random password (144 bits), for a person created without one."""
    return secrets.token_urlsafe(18)


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """``(name, password)`` of an ``Authorization: Basic`` header, or None when it is not one."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        text = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None
    name, sep, password = text.partition(":")
    return (name, password) if sep else None


class UserStore:
    """The people of ``<state>/users.sqlite`` (thread-safe; every read goes to the database, so a
    revocation by the command line takes effect at the service's next request).

    A successful password check is remembered in memory against the stored hash, so a person calling
    the API with Basic credentials pays the KDF once, not per request; a changed or revoked
    credential no longer matches.
    """

    def __init__(self, path: str | Path, policy: SignInPolicy | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = private_database(path)
        self.policy = policy or SignInPolicy()
        self._clock = clock  # injectable: the tests move time instead of sleeping
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._verified: dict[tuple[str, bytes], bytes] = {}

    @classmethod
    def in_state(cls, state_dir: str | Path) -> "UserStore":
        return cls(Path(state_dir) / "users.sqlite")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- changes ------------------------------------------------------------------------------------
    def add(self, name: str, role: str, *, by: str, password: str | None = None,
            display_name: str | None = None) -> str:
        """Create a person; returns their password (the one given, or a generated one to hand over once)."""
        if not _NAME.match(name or ""):
            raise IdentityError(f"The name of a person must be 2-32 lower-case letters, digits or _.- starting "
                                f"with a letter. Got {name!r} instead.")
        if role not in PERSON_ROLES:
            raise IdentityError(f"The role of a person must be one of {', '.join(PERSON_ROLES)}. Got {role!r} instead.")
        if password is None:
            password = generate_password()
        if len(password) < MIN_PASSWORD:
            raise IdentityError(f"A password must have at least {MIN_PASSWORD} characters. Got {len(password)}.")
        salt = secrets.token_bytes(16)
        digest = hash_password(password, salt)
        kdf = f"scrypt:n={_SCRYPT['n']},r={_SCRYPT['r']},p={_SCRYPT['p']}"
        now = utc_now_iso()
        with self._lock:
            if self._db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise IdentityError(f"A person named {name!r} already exists (people are never re-used: "
                                    "choose another name).")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO users(name, role, display_name, salt, hash, kdf, created_at, created_by) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (name, role, display_name or name, salt, digest,
                                                                     kdf, now, by))
                self._db.execute("INSERT INTO user_events(name, event, role, at, by) VALUES (?, 'added', ?, ?, ?)",
                                 (name, role, now, by))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return password

    def revoke(self, name: str, *, by: str) -> None:
        """Revoke a person's credential from now on (their records keep their name)."""
        now = utc_now_iso()
        with self._lock:
            row = self._db.execute("SELECT role, revoked_at FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise IdentityError(f"There is no person named {name!r}.")
            if row[1] is not None:
                raise IdentityError(f"{name!r} was already revoked at {row[1]}.")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE users SET revoked_at = ?, revoked_by = ? WHERE name = ?", (now, by, name))
                self._db.execute("INSERT INTO user_events(name, event, role, at, by) VALUES (?, 'revoked', ?, ?, ?)",
                                 (name, row[0], now, by))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- sessions -----------------------------------------------------------------------------------
    def open_session(self, name: str, seconds: float) -> tuple[str, Session]:
        """A new session for ``name`` lasting ``seconds``: ``(token for the cookie, session)``; ended
        sessions are forgotten on the way."""
        token = secrets.token_urlsafe(32)
        now = self._clock()
        session = Session(name, secrets.token_urlsafe(24), now + seconds)
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            self._db.execute("INSERT INTO sessions(token_hash, name, csrf, expires) VALUES (?, ?, ?, ?)",
                             (_token_hash(token), session.name, session.csrf, session.expires))
        return token, session

    def session(self, token: str | None) -> Session | None:
        """The live session of a cookie's token, or None (unknown, ended or empty)."""
        if not token:
            return None
        with self._lock:
            row = self._db.execute("SELECT name, csrf, expires FROM sessions WHERE token_hash = ? AND expires >= ?",
                                   (_token_hash(token), self._clock())).fetchone()
        return Session(*row) if row else None

    def close_session(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._db.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    def close_sessions_of(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM sessions WHERE name = ?", (name,))

    # -- reading ------------------------------------------------------------------------------------
    def list(self) -> list[UserRow]:
        with self._lock:
            rows = self._db.execute("SELECT name, role, display_name, created_at, created_by, revoked_at, revoked_by "
                                    "FROM users ORDER BY name").fetchall()
        return [UserRow(*r) for r in rows]

    def person(self, name: str) -> Person | None:
        """The active person of that name, or None (unknown or revoked)."""
        with self._lock:
            row = self._db.execute("SELECT role, display_name FROM users WHERE name = ? AND revoked_at IS NULL",
                                   (name,)).fetchone()
        return Person(name, row[0], row[1]) if row else None

    def authenticate(self, name: str, password: str) -> Person:
        """The person holding this name and password; :class:`CredentialRefused` otherwise
        (:class:`SignInLocked` while the name is locked, whatever the password)."""
        now = self._clock()
        with self._lock:
            recent_failures = self._refuse_if_locked(name, now)
            row = self._db.execute("SELECT role, display_name, salt, hash FROM users WHERE name = ? AND "
                                   "revoked_at IS NULL", (name,)).fetchone()
        if row is None:
            hash_password(password, b"\0" * 16)  # same time as a real check: the answer does not reveal names
            self._failed(name, now)
        role, display, salt, stored = row
        key = (name, hashlib.sha256(password.encode("utf-8")).digest())
        remembered = self._verified.get(key)
        if remembered is None or not hmac.compare_digest(remembered, stored):
            if not hmac.compare_digest(hash_password(password, salt), stored):
                self._failed(name, now)
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[key] = stored
        if recent_failures:  # the right password starts the count again (a write only after a failure)
            with self._lock:
                self._db.execute("DELETE FROM sign_in_failures WHERE name = ?", (name,))
        return Person(name, role, display)

    def _refuse_if_locked(self, name: str, now: float) -> int:
        """The name's failures within the window; :class:`SignInLocked` while they lock it."""
        count, last = self._db.execute("SELECT COUNT(*), MAX(at) FROM sign_in_failures WHERE name = ? AND at > ?",
                                       (name, now - self.policy.window_seconds)).fetchone()
        if count >= self.policy.max_failures and now < last + self.policy.lockout_seconds:
            raise SignInLocked(max(1, int(last + self.policy.lockout_seconds - now + 0.999)))
        return int(count)

    def _failed(self, name: str, now: float) -> NoReturn:
        """Count a wrong password (forgetting failures older than the window) and refuse; lock the name
        when this one reaches the policy's count."""
        p = self.policy
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM sign_in_failures WHERE at <= ?", (now - p.window_seconds,))
                self._db.execute("INSERT INTO sign_in_failures(name, at) VALUES (?, ?)", (name, now))
                count = self._db.execute("SELECT COUNT(*) FROM sign_in_failures WHERE name = ?", (name,)).fetchone()[0]
                if count == p.max_failures and self._db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                    self._db.execute("INSERT INTO user_events(name, event, role, at, by) SELECT name, 'locked', role, "
                                     "?, 'sign-in' FROM users WHERE name = ?", (utc_now_iso(), name))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        raise CredentialRefused("unknown person or wrong password")
