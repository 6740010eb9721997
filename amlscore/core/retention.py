"""Signed retention cuts: records past their retention are removed and the hash chains stay verifiable.

A chain (the audit log's tables, casework's actions) is verified from its first row. Removing the
oldest rows would break that, so before removing rows ``1..k`` of a table a *cut* is written: the
table, the last removed ``seq`` (``upto_seq``), how many rows were ever removed (``rows_removed``,
cumulative), the chain hash of row ``k`` (``head_at_cut``), the cutoff date, who made it and when,
and an HMAC-SHA256 of all that with the state folder's retention key (``<state>/retention.key``, 32
random bytes, owner-only, created by the first purge). Verification then starts at the newest cut
of each table: its signature must check with the key, and the first remaining row must chain from
``head_at_cut``. A forged cut (to hide removed rows) needs the key; a row removed without a cut, or
changed, breaks the chain as before.

Keep the key apart from backups of the databases where possible: whoever holds it can sign a cut.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from amlscore.storage.private import open_private

KEY_FILE = "retention.key"


@dataclass(frozen=True)
class Cut:
    """One signed retention cut of one table."""

    table: str
    upto_seq: int
    rows_removed: int
    head_at_cut: str
    cutoff: str
    made_at: str
    made_by: str
    signature: str

    def payload(self, store: str) -> bytes:
        return "\x1f".join((store, self.table, str(self.upto_seq), str(self.rows_removed), self.head_at_cut,
                            self.cutoff, self.made_at, self.made_by)).encode("utf-8")


def key_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / KEY_FILE


def load_key(path: str | Path, create: bool = False) -> bytes | None:
    """The retention key at ``path`` (created, 0600, when asked and missing); None when missing."""
    path = Path(path)
    if path.is_file():
        data = path.read_bytes().strip()
        return bytes.fromhex(data.decode("ascii"))
    if not create:
        return None
    key = secrets.token_bytes(32)
    with os.fdopen(open_private(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL), "w", encoding="ascii") as fh:
        fh.write(key.hex() + "\n")
    return key


def sign(key: bytes, store: str, cut: Cut) -> str:
    return hmac.new(key, cut.payload(store), hashlib.sha256).hexdigest()


def signature_ok(key: bytes, store: str, cut: Cut) -> bool:
    return hmac.compare_digest(sign(key, store, cut), cut.signature)
