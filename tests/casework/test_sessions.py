"""Sign-in sessions kept in the users database: shared by the workers of a state folder, kept over a
restart, stored by the token's hash only, ended by sign-out and revocation."""

from __future__ import annotations

from casework_helpers import PASSWORDS
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from amlscore.casework.web import COOKIE, create_app


def _client(state, tmp_path):
    app = create_app(state, tmp_path / "data")
    return app, TestClient(Starlette(routes=[Mount("/cases", app=app)]), base_url="http://testserver")


def test_a_session_opened_on_one_worker_is_known_to_another_and_after_a_restart(state, work, tmp_path):
    app_a, a = _client(state, tmp_path)
    app_b, b = _client(state, tmp_path)  # a second worker on the same state folder
    with a, b:
        r = a.post("/cases/signin", data={"name": "alice", "password": PASSWORDS["alice"], "next": ""},
                   follow_redirects=False)
        assert r.status_code == 303
        token = a.cookies.get(COOKIE)
        b.cookies.set(COOKIE, token)
        assert b.get("/cases/", follow_redirects=False).status_code == 200
        raw = (state / "users.sqlite").read_bytes() + (state / "users.sqlite-wal").read_bytes()
        assert token.encode() not in raw  # only its hash is stored
    app_a.state.site.close()
    app_b.state.site.close()
    app_c, c = _client(state, tmp_path)  # restarted
    with c:
        c.cookies.set(COOKIE, token)
        assert c.get("/cases/", follow_redirects=False).status_code == 200
        c.post("/cases/signout", follow_redirects=False)
        c.cookies.set(COOKIE, token)
        r = c.get("/cases/", follow_redirects=False)
        assert r.status_code == 303 and "/cases/signin" in r.headers["location"]
    app_c.state.site.close()


def test_revoking_a_person_ends_their_sessions_on_every_worker(state, work, tmp_path):
    from amlscore.core.identity import UserStore

    app, c = _client(state, tmp_path)
    with c:
        c.post("/cases/signin", data={"name": "dave", "password": PASSWORDS["dave"], "next": ""})
        assert c.get("/cases/", follow_redirects=False).status_code == 200
        users = UserStore.in_state(state)  # the command line, another process
        users.revoke("dave", by="user:root")
        users.close()
        r = c.get("/cases/", follow_redirects=False)
        assert r.status_code in (303, 401)
        assert users_sessions(state, "dave") == 0
    app.state.site.close()


def users_sessions(state, name: str) -> int:
    import sqlite3

    db = sqlite3.connect(state / "users.sqlite")
    try:
        return db.execute("SELECT COUNT(*) FROM sessions WHERE name = ?", (name,)).fetchone()[0]
    finally:
        db.close()
