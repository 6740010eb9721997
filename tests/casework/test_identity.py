"""Named people: hashed credentials (scrypt, salt per person), revocation, the command line."""

from __future__ import annotations

import pytest
from casework_helpers import PASSWORDS

from amlscore.core.identity import CredentialRefused, IdentityError, UserStore, basic_credentials


def test_passwords_are_stored_as_salted_scrypt_hashes_only(state):
    raw = (state / "users.sqlite").read_bytes()
    assert PASSWORDS["alice"].encode() not in raw
    users = UserStore.in_state(state)
    try:
        salts = {r[0] for r in users._db.execute("SELECT salt FROM users")}
        kdfs = {r[0] for r in users._db.execute("SELECT kdf FROM users")}
        assert len(salts) == len(PASSWORDS) and kdfs == {"scrypt:n=16384,r=8,p=1"}
        assert users.authenticate("alice", PASSWORDS["alice"]).role == "analyst"
        assert users.authenticate("alice", PASSWORDS["alice"]).key_id == "user:alice"  # remembered: same answer
        with pytest.raises(CredentialRefused):
            users.authenticate("alice", PASSWORDS["bob"])
        with pytest.raises(CredentialRefused):
            users.authenticate("nobody", "whatever-password")
    finally:
        users.close()


def test_revoked_people_are_refused_and_never_deleted(state):
    users = UserStore.in_state(state)
    try:
        assert users.authenticate("dave", PASSWORDS["dave"])  # remembered before the revocation
        users.revoke("dave", by="user:root")
        with pytest.raises(CredentialRefused):
            users.authenticate("dave", PASSWORDS["dave"])
        assert users.person("dave") is None
        row = next(u for u in users.list() if u.name == "dave")
        assert row.revoked_by == "user:root"
        with pytest.raises(IdentityError, match="already exists"):
            users.add("dave", "analyst", by="user:root", password="another-password")
        with pytest.raises(IdentityError, match="already revoked"):
            users.revoke("dave", by="user:root")
        with pytest.raises(IdentityError, match="role of a person must be one of"):
            users.add("erin", "compliance", by="t")
        with pytest.raises(IdentityError, match="at least 12"):
            users.add("erin", "analyst", by="t", password="short")
        events = [r[0] for r in users._db.execute("SELECT event FROM user_events WHERE name='dave' ORDER BY seq")]
        assert events == ["added", "revoked"]
    finally:
        users.close()


def test_basic_credentials_are_parsed_strictly():
    assert basic_credentials("Basic YWxpY2U6cHc6d2l0aDpjb2xvbnM=") == ("alice", "pw:with:colons")
    assert basic_credentials("Bearer abc") is None
    assert basic_credentials("Basic !!!") is None


def test_users_command_adds_lists_and_revokes(state, capsys):
    from amlscore.cli import run

    assert run(["users", "add", "erin", "--role", "reviewer", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    password = out.split("shown this once: ")[1].split()[0]
    users = UserStore.in_state(state)
    try:
        assert users.authenticate("erin", password).role == "reviewer"
    finally:
        users.close()
    assert run(["users", "list", "--state", str(state)]) == 0
    assert "erin" in capsys.readouterr().out
    assert run(["users", "revoke", "erin", "--state", str(state)]) == 0
    assert run(["users", "add", "Bad Name", "--role", "analyst", "--state", str(state)]) == 2
