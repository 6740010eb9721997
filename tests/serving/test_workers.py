"""Several service workers over the shared backends: real ``bentoml serve`` with 2 workers, a real
redis-server and a real PostgreSQL, all started by the test on loopback.

Checks: the embedded backend refuses more than one worker (settings and command line); under load,
a kill -9 of one worker leaves the other answering and no acknowledged decision missing from the
audit log; sent again, the unanswered ones are decided; every decision's feature row is what one
embedded state gives over the shared log's order (the workers' replicas agree), and the chain holds.
No timing assertions: every wait is on a condition, with generous deadlines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from servers import postgres_server, redis_server  # noqa: E402
from serving_helpers import CHANNEL, KEYS, new_txn  # noqa: E402
from test_e2e import Server  # noqa: E402
from test_model_dir import model_dir  # noqa: E402,F401 - the fixture: a small saved model set

httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def test_more_than_one_worker_is_refused_on_the_embedded_backend(tmp_path):
    from amlscore.serving.config import Settings, SettingsError

    with pytest.raises(SettingsError, match="AML_STATE_URL and AML_DATABASE_URL is not set|single writer"):
        Settings.from_env({"AML_WORKERS": "2"})
    env = {k: v for k, v in os.environ.items() if k not in ("AML_STATE_URL", "AML_DATABASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run([sys.executable, "-m", "amlscore.cli", "serve", "--workers", "2", "--prepare-only",
                          "--state", str(tmp_path / "state")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 2, out.stdout + out.stderr
    assert "single writer" in out.stderr + out.stdout


@pytest.fixture(scope="module")
def backends():
    with redis_server() as redis_url, postgres_server() as pg_url:
        yield redis_url, pg_url


@pytest.fixture(scope="module")
def cluster(backends, tiny_bank, model_dir, tmp_path_factory):  # noqa: F811 - model_dir is the imported fixture
    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.config import Settings
    from amlscore.serving.state import prepare_state

    redis_url, pg_url = backends
    work = tmp_path_factory.mktemp("workers")
    state = work / "state"
    write_keys_file(state / "api_keys.yaml", KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(tiny_bank), "AML_STATE_DIR": str(state), "AML_MODEL_DIR": str(model_dir),
           "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'no-registry.db'}", "AML_WARM_UP_DAYS": "20",
           "AML_MAX_FUTURE_SECONDS": "0", "AML_STATE_URL": redis_url, "AML_DATABASE_URL": pg_url,
           "AML_WORKERS": "2", "AML_AUDIT_SYNC": "full", "BENTOML_DO_NOT_TRACK": "true",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    # the warm-up once, before the workers start (as `amlscore serve` does)
    prepare_state(Settings.from_env({k: v for k, v in env.items() if k.startswith("AML_")}))
    srv = Server(env, work / "server.log")
    srv.start(timeout=400)
    yield srv
    srv.stop()


def _workers(srv: Server) -> list[Any]:
    """The live worker processes (a killed one lingers as a zombie until BentoML's supervisor reaps it)."""
    out = []
    for p in srv._tree():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "--worker-id" in " ".join(p.cmdline()):
                out.append(p)
        except psutil.Error:
            pass
    return out


def _wait(cond, what: str, deadline: float = 300.0) -> None:
    """Poll ``cond`` until it holds; a request of it that times out (a loaded machine) is one more try."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            if cond():
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_killed_worker_loses_no_acknowledged_decision(cluster, tiny_dataset, backends):
    from amlscore.core.audit_pg import connect, verify_chain_pg

    _, pg_url = backends
    _wait(lambda: len(_workers(cluster)) == 2, "two workers")
    customers = tiny_dataset.customers["customer_id"].astype(str).tolist()
    acked: dict[str, str] = {}  # txn_id -> request_id of a 200 answer
    failed: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    stop = threading.Event()
    sent = [0]

    def client(k: int) -> None:
        # each client its own customers, so time order per customer holds whatever the interleaving; a
        # transaction without an answer is sent again before the next one, as a channel must (sent after a
        # later transaction of its customer it would be refused as late): a connection the killed worker had
        # not accepted yet is reset, not handed to the other worker (each worker listens on its own socket)
        mine = customers[k * 20:(k + 1) * 20]
        i = 0
        while not stop.is_set() and i < 400:
            txn = new_txn(mine[i % len(mine)], f"K{k}-{i}", f"2026-06-01T{(i // 60) % 24:02d}:{i % 60:02d}:00Z",
                          amount=100.0 + i)
            try:
                r = httpx.post(f"{cluster.url}/v1/score", json={"transaction": txn}, headers=CHANNEL, timeout=60)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            with lock:
                sent[0] += 1
                if ok:
                    acked[txn["txn_id"]] = r.json()["request_id"]
                else:
                    failed[txn["txn_id"]] = txn
            if ok:
                i += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    try:
        _wait(lambda: len(acked) >= 40, "40 answered decisions before the kill")
        victim = _workers(cluster)[0]
        victim.send_signal(signal.SIGKILL)
        n_at_kill = len(acked)
        # the other worker keeps answering (the killed one is restarted by BentoML's supervisor meanwhile)
        _wait(lambda: len(acked) >= n_at_kill + 60, "60 more answered decisions after the kill")
    finally:
        stop.set()
        for t in threads:
            t.join(300)
    assert not victim.is_running() or victim.status() == psutil.STATUS_ZOMBIE
    print(f"kill test: {len(acked)} answered, {len(failed)} without an answer at first, killed worker {victim.pid}")

    # every acknowledged decision is in the audit log, under the request id the client got
    conn = connect(pg_url, autocommit=True)
    logged = dict(conn.execute("SELECT txn_id, request_id FROM decisions").fetchall())
    missing = {t: r for t, r in acked.items() if logged.get(t) != r}
    assert not missing, f"{len(missing)} acknowledged decisions are not in the audit log: {list(missing)[:5]}"

    # the ones still without an answer when the clients stopped, sent again, are decided (or replayed when they
    # were decided before the kill)
    for txn_id, txn in failed.items():
        if txn_id in acked:
            continue
        def answered() -> bool:
            try:
                return httpx.post(f"{cluster.url}/v1/score", json={"transaction": txn}, headers=CHANNEL,
                                  timeout=60).status_code == 200
            except httpx.HTTPError:
                return False
        _wait(answered, f"an answer for {txn_id} sent again")
    assert verify_chain_pg(pg_url).intact


def test_the_workers_rows_are_one_state_over_the_shared_log(cluster, tiny_bank, tiny_dataset, backends):
    """Whichever worker decided a transaction, its recorded feature row is the embedded state's over the log order."""
    from amlscore.core.audit_pg import connect
    from amlscore.features.online import OnlineFeatureState, warm_up
    from amlscore.features.redis_store import RedisFeatureStore

    redis_url, pg_url = backends
    customers = tiny_dataset.customers["customer_id"].astype(str).tolist()
    for k in range(30):  # a few more, alternating customers shared by every request
        r = httpx.post(f"{cluster.url}/v1/score", json={"transaction": new_txn(customers[100 + k % 3], f"P-{k}",
                                                                                 f"2026-07-01T00:{k:02d}:00Z")},
                       headers=CHANNEL, timeout=60)
        assert r.status_code == 200, r.text
    conn = connect(pg_url, autocommit=True)
    rows = {t: np.frombuffer(bytes(f), dtype=np.float64) for t, f in conn.execute("SELECT txn_id, features FROM decisions")}
    ref = OnlineFeatureState(tiny_dataset.customers, reports=tiny_dataset.reports)
    warmed = warm_up(ref, tiny_dataset.transactions, 20)
    store = RedisFeatureStore(redis_url)
    checked = 0
    for seq, record in store.events_after(warmed):
        row = ref.update_vector(record)
        if record["txn_id"] in rows:
            np.testing.assert_array_equal(np.nan_to_num(row, nan=-7.0), np.nan_to_num(rows[record["txn_id"]], nan=-7.0))
            checked += 1
    assert checked == len(rows) >= 30


def test_connections_opened_together_spread_over_the_workers(cluster):
    """Each worker listens on a socket of its own (amlscore.serving.listen), so a pool of keep-alive
    connections opened at once reaches both (on one shared socket the first worker awake takes all).
    Runs after the kill above: the restarted worker took a socket of its own too."""
    import socket
    from urllib.parse import urlsplit

    port = urlsplit(cluster.url).port

    def listening(p: Any) -> bool:
        try:
            return any(k.status == psutil.CONN_LISTEN and k.laddr.port == port for k in p.net_connections(kind="tcp"))
        except psutil.Error:
            return False

    # the restarted worker takes its socket when it imports the service: until then the other one's
    # is the only one listening, and rightly gets every connection
    _wait(lambda: len(_workers(cluster)) == 2 and all(listening(p) for p in _workers(cluster)), "two listening workers")
    _wait(lambda: httpx.get(f"{cluster.url}/readyz", timeout=10).status_code == 200, "ready")
    conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(16)]
    try:
        for c in conns:  # one request on each: every connection is accepted by some worker
            c.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(64).startswith(b"HTTP/1.1 200")
        held = [sum(1 for k in w.net_connections(kind="tcp")
                    if k.status == psutil.CONN_ESTABLISHED and k.laddr.port == port)
                for w in _workers(cluster)]
        assert sum(held) == 16
        assert min(held) > 0, held  # all 16 on one worker: probability 2**-15 with the kernel's hash
    finally:
        for c in conns:
            c.close()
