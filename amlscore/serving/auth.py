"""API keys with roles.

Callers send their key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. The service
keeps only the SHA-256 of each key, in a YAML (or JSON) file::

    keys:
      - id: branch-gateway          # shown in the audit log as the caller
        role: channel               # channel | compliance | admin
        sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8

Roles, from least to most: ``channel`` scores transactions and sees the score, the alert decision
and the request id only; ``compliance`` also sees components, risk levels and explanations, and may
explain past decisions, read customer ratings and record feedback; ``admin`` may do all that and
reload the model. A missing or unknown key gets 401, a role that may not call the endpoint 403.

Named people (:mod:`amlscore.core.identity`, ``amlscore users add``) call with ``Authorization: Basic``
(name and password) and are recorded as ``user:<name>``. Their roles map onto the keys' roles: a
person's ``channel`` is the channel role; ``analyst`` and ``reviewer`` have the rights of
``compliance`` here (the difference between them, who may approve, is casework's); ``admin`` is admin.
The shared ``compliance`` key role stays as it was: it may use the API but, naming no person, can
never sign in to the casework pages.

When the keys file does not exist the service writes one with a fresh key per role and prints the
keys once (they cannot be recovered from the file): fine for a first start on a laptop, replace
the file with the bank's own keys anywhere else.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import yaml

from amlscore.serving.errors import Forbidden, Unauthorized
from amlscore.serving.config import SettingsError
from amlscore.storage.private import open_private

Role = Literal["channel", "compliance", "admin"]
ROLES: tuple[str, ...] = ("channel", "compliance", "admin")  # roles a shared key may have
_ALL = frozenset(ROLES) | frozenset({"analyst", "reviewer"})
EVERY_ROLE = _ALL  # a route every caller may call (the OpenAPI document lists no 403 for it)
_COMPLIANCE = frozenset({"compliance", "analyst", "reviewer", "admin"})
_ADMIN = frozenset({"admin"})

# Route -> roles that may call it. Routes not listed under /v1/ are refused to every role (404 first).
PERMISSIONS: dict[str, frozenset[str]] = {
    "/v1/score": _ALL,
    "/v1/score_batch": _ALL,
    "/v1/metadata": _ALL,
    "/v1/health": _ALL,
    "/v1/explain": _COMPLIANCE,
    "/v1/customer_risk": _COMPLIANCE,
    "/v1/feedback": _COMPLIANCE,
    "/v1/admin/reload": _ADMIN,
    "/v1/admin/drift": _COMPLIANCE,
    "/v1/admin/customers": _ADMIN,
}
# Roles that see the full decision (components, risk level, explanation, versions).
FULL_VIEW_ROLES = _COMPLIANCE
_KEY_ID = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key's id (written to the audit log) and its role."""

    key_id: str
    role: str

    @property
    def full_view(self) -> bool:
        """May see components, risk levels and explanations."""
        return self.role in FULL_VIEW_ROLES


def hash_key(key: str) -> str:
    """SHA-256 hex of an API key, as stored in the keys file."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def generate_key(role: str) -> str:
    """A new random API key (192 bits), prefixed with its role for people's convenience."""
    return f"aml_{role}_{secrets.token_urlsafe(24)}"


class KeyStore:
    """The known keys, by hash."""

    def __init__(self, callers_by_hash: Mapping[str, Caller]) -> None:
        self._by_hash = dict(callers_by_hash)

    def __len__(self) -> int:
        return len(self._by_hash)

    @classmethod
    def load(cls, path: str | Path) -> "KeyStore":
        """Read and check a keys file; raises :class:`SettingsError` naming the problem."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"cannot read the API keys file {str(path)!r}: {exc.strerror or exc}") from None
        try:
            data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise SettingsError(f"the API keys file {str(path)!r} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}") from None
        entries = data.get("keys") if isinstance(data, dict) else None
        if not isinstance(entries, list) or not entries:
            raise SettingsError(f"the API keys file {str(path)!r} must hold a non-empty list under 'keys'")
        out: dict[str, Caller] = {}
        ids: set[str] = set()
        for i, e in enumerate(entries):
            where = f"{path}: keys[{i}]"
            if not isinstance(e, dict):
                raise SettingsError(f"{where} must be a mapping with id, role and sha256. Got {e!r} instead.")
            key_id, role, digest = str(e.get("id", "")), e.get("role"), str(e.get("sha256", "")).lower()
            if not _KEY_ID.match(key_id):
                raise SettingsError(f"The 'id' of {where} must be 1-64 letters, digits or _.:@-. Got {key_id!r} instead.")
            if key_id in ids:
                raise SettingsError(f"The 'id' of {where} must be unique. Got {key_id!r} twice instead.")
            if role not in ROLES:
                raise SettingsError(f"The 'role' of {where} must be one of {', '.join(ROLES)}. Got {role!r} instead.")
            if not _SHA256.match(digest):
                raise SettingsError(f"The 'sha256' of {where} must be 64 hex digits (the SHA-256 of the key). Got {digest!r} instead.")
            if digest in out:
                raise SettingsError(f"{where}: the same key hash appears twice")
            ids.add(key_id)
            out[digest] = Caller(key_id=key_id, role=str(role))
        return cls(out)

    def authenticate(self, key: str | None) -> Caller:
        """The caller holding ``key``; :class:`Unauthorized` when it is missing or unknown."""
        if not key:
            raise Unauthorized("missing API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
        digest = hash_key(key)
        caller = self._by_hash.get(digest)
        if caller is None or not hmac.compare_digest(digest, hash_key(key)):
            raise Unauthorized("unknown API key")
        return caller


def key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key of a request: ``Authorization: Bearer <key>`` or ``X-API-Key``; None when absent."""
    auth = headers.get("authorization")
    if auth:
        scheme, _, value = auth.strip().partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    key = headers.get("x-api-key")
    return key.strip() if key and key.strip() else None


def authorize(caller: Caller, route: str) -> None:
    """Raise :class:`Forbidden` unless ``caller``'s role may call ``route``."""
    allowed = PERMISSIONS.get(route)
    if allowed is not None and caller.role not in allowed:
        need = " or ".join(sorted(allowed))
        raise Forbidden(f"the {caller.role} role may not call {route}; it needs the {need} role")


def write_keys_file(path: str | Path, keys: Mapping[str, tuple[str, str]]) -> None:
    """Write a keys file (mode 0600) for ``{key_id: (role, plaintext key)}``; only hashes are stored."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    today = datetime.now(timezone.utc).date().isoformat()
    doc = {"keys": [{"id": kid, "role": role, "sha256": hash_key(key), "created": today}
                    for kid, (role, key) in keys.items()]}
    header = ("# API keys of the amlscore scoring service: the SHA-256 of each key, never the key itself.\n"
              "# Roles: channel (score only), compliance (+ components, explanations, ratings, feedback), admin (+ reload).\n")
    tmp = path.with_name(path.name + ".tmp")
    with os.fdopen(open_private(tmp), "w", encoding="utf-8") as fh:
        if path.suffix.lower() == ".json":
            json.dump(doc, fh, indent=2)
        else:
            fh.write(header)
            yaml.safe_dump(doc, fh, sort_keys=False)
    os.replace(tmp, path)


def ensure_keys_file(path: str | Path) -> dict[str, str] | None:
    """Create a keys file with one development key per role when none exists.

    Returns ``{role: plaintext key}`` when the file was created (print them once: the file holds
    only hashes), None when it already existed.
    """
    path = Path(path)
    if path.exists():
        return None
    keys = {f"dev-{role}": (role, generate_key(role)) for role in ROLES}
    write_keys_file(path, keys)
    return {role: key for _, (role, key) in keys.items()}
