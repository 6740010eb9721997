"""Guessing slowed per name: a lock after repeated wrong passwords, in the store, the pages and the API.

Time is the store's injected clock, moved by the tests (no sleeping).
"""

from __future__ import annotations

import base64

import pytest
from casework_helpers import PASSWORDS

from amlscore.core.identity import CredentialRefused, SignInLocked, SignInPolicy, UserStore


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _store(state, clock: Clock) -> UserStore:
    return UserStore(state / "users.sqlite", SignInPolicy(max_failures=5, window_seconds=900, lockout_seconds=900),
                     clock=clock)


@pytest.fixture()
def clock() -> Clock:
    return Clock()


@pytest.fixture()
def users(state, clock):
    store = _store(state, clock)
    yield store
    store.close()


def _fail(users: UserStore, name: str, times: int, clock: Clock) -> None:
    for _ in range(times):
        with pytest.raises(CredentialRefused) as exc:
            users.authenticate(name, "a-wrong-password")
        assert not isinstance(exc.value, SignInLocked)
        clock.now += 10


def test_five_wrong_passwords_lock_the_name_even_for_the_right_one_until_the_lockout_ends(state, users, clock):
    _fail(users, "alice", 5, clock)
    with pytest.raises(SignInLocked) as locked:
        users.authenticate("alice", PASSWORDS["alice"])
    assert locked.value.retry_after == 890  # 900 s after the last failure, 10 s ago
    assert users.authenticate("bob", PASSWORDS["bob"]).name == "bob"  # other names are not locked
    other = _store(state, clock)  # another process on the same state folder sees the lock
    with pytest.raises(SignInLocked):
        other.authenticate("alice", PASSWORDS["alice"])
    other.close()
    events = [r[0] for r in users._db.execute("SELECT event FROM user_events WHERE name='alice' ORDER BY seq")]
    assert events == ["added", "locked"]
    clock.now += 891
    assert users.authenticate("alice", PASSWORDS["alice"]).name == "alice"


def test_the_right_password_starts_the_count_again(state, users, clock):
    _fail(users, "alice", 4, clock)
    assert users.authenticate("alice", PASSWORDS["alice"]).name == "alice"
    _fail(users, "alice", 4, clock)  # four more: still not five in a row
    assert users.authenticate("alice", PASSWORDS["alice"]).name == "alice"
    _fail(users, "alice", 5, clock)
    with pytest.raises(SignInLocked):
        users.authenticate("alice", PASSWORDS["alice"])


def test_failures_older_than_the_window_do_not_count_and_unknown_names_lock_alike(state, users, clock):
    _fail(users, "alice", 4, clock)
    clock.now += 901
    _fail(users, "alice", 1, clock)  # the first four are out of the window
    assert users.authenticate("alice", PASSWORDS["alice"]).name == "alice"
    _fail(users, "nobody", 5, clock)
    with pytest.raises(SignInLocked):  # the same answer as for a person: no hint of who exists
        users.authenticate("nobody", "anything-at-all")


def test_a_policy_that_cannot_work_is_refused():
    with pytest.raises(ValueError, match="max_failures"):
        SignInPolicy(max_failures=0)


def test_the_sign_in_page_and_basic_credentials_answer_429_with_retry_after(state, work, tmp_path):
    from starlette.applications import Starlette
    from starlette.routing import Mount
    from starlette.testclient import TestClient

    from amlscore.casework.web import create_app

    app = create_app(state, tmp_path / "data")
    outer = Starlette(routes=[Mount("/cases", app=app)])
    with TestClient(outer, base_url="http://testserver") as c:
        for _ in range(5):
            assert c.post("/cases/signin", data={"name": "alice", "password": "a-wrong-password"}).status_code == 401
        r = c.post("/cases/signin", data={"name": "alice", "password": PASSWORDS["alice"]}, follow_redirects=False)
        assert r.status_code == 429 and "Too many failed sign-ins" in r.text
        assert 0 < int(r.headers["retry-after"]) <= 900
        token = base64.b64encode(f"alice:{PASSWORDS['alice']}".encode()).decode()
        r = c.get("/cases/", headers={"Authorization": f"Basic {token}", "Accept": "application/json"})
        assert r.status_code == 429 and "retry-after" in r.headers
    app.state.site.close()


def test_the_api_gate_answers_429_with_retry_after(state):
    import asyncio

    from amlscore.serving.auth import KeyStore
    from amlscore.serving.middleware import Gate, GateMiddleware

    async def app(scope, receive, send):  # what lies behind the gate: never reached here
        raise AssertionError("the gate let a locked person through")

    gate = Gate()
    gate.configure(KeyStore({}), 64 * 1024, 1024 * 1024, UserStore.in_state(state))
    middleware = GateMiddleware(app, gate)

    def call(password: str) -> tuple[int, dict[bytes, bytes]]:
        creds = base64.b64encode(f"carol:{password}".encode()).decode()
        sent: list[dict] = []

        async def receive():
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/v1/health",
                 "headers": [(b"authorization", f"Basic {creds}".encode()), (b"content-type", b"application/json")]}
        asyncio.run(middleware(scope, receive, send))
        return sent[0]["status"], dict(sent[0]["headers"])

    statuses = [call("a-wrong-password")[0] for _ in range(5)]
    assert statuses == [401] * 5
    status, headers = call(PASSWORDS["carol"])
    assert status == 429 and 0 < int(headers[b"retry-after"]) <= 900  # the right password, refused while locked
    gate.users.close()
