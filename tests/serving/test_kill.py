"""``kill -9`` of the real service while a batch and single requests are in flight (issue #14).

The service (``bentoml serve``, a small saved model set through ``AML_MODEL_DIR``, its own state
folder) is killed at a fixed point, reached without any sleep as synchronisation:

* before the kill, a single and a batch are **acknowledged** (their 200 received);
* one single is **committed but not acknowledged**: sent on a raw socket whose answer is never read,
  and the test waits until the audit log holds its decision;
* one batch and three singles are **counted but not decided**: the test holds the audit database's
  write lock (``BEGIN IMMEDIATE`` on a connection of its own), so their decisions wait for the commit
  in the service's audit writer; it sends them and waits until the online state's event log holds
  every one of their transactions, then kills every process of the service (its worker included).

Then it restarts the service, resends every request without an answer, unchanged, and checks what
docs/serving.md promises: every acknowledged decision is in the audit log with the request id and
the score the client was told; the committed one comes back ``replayed`` with its request id; the
counted ones are decided now, from the feature rows the state kept, without being counted again
(per customer, the state's transactions equal the audit log's decisions and the transactions sent;
in memory, ``/v1/health``'s counts keep their difference; each decision's own 24-hour count is its
rank in the customer's stream); every batch_id of the audit log holds its whole batch; ``amlscore
audit verify`` passes after the kill and at the end.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from amlscore.features.catalogue import FEATURE_NAMES

from fakes import save_small_model_set
from serving_helpers import CHANNEL, COMPLIANCE, KEYS

httpx = pytest.importorskip("httpx")
psutil = pytest.importorskip("psutil")

from servers import free_port  # noqa: E402
from test_e2e import ROOT, Server  # noqa: E402 - the same real server (start, wait ready, kill the whole tree)

pytestmark = pytest.mark.slow
DEADLINE = 180.0  # seconds for anything the test waits for; generous: a loaded CI machine is slow, never wrong
PREFIX = "KT"


def wait_until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` until it holds (a deadline, not a sleep, is what the test relies on)."""
    t0 = time.monotonic()
    while not check():
        if time.monotonic() - t0 > DEADLINE:
            raise AssertionError(f"{what}: not seen within {DEADLINE:.0f} s")
        time.sleep(0.01)


def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def decided(state: Path) -> dict[str, tuple[str, str, float, str | None, np.ndarray]]:
    """txn_id -> (request_id, customer_id, score, batch_id, feature row) of the test's decisions in the audit log."""
    db = _ro(state / "audit.sqlite")
    try:
        rows = db.execute("SELECT txn_id, request_id, customer_id, suspicion_score, batch_id, features FROM decisions "
                          "WHERE txn_id LIKE ?", (PREFIX + "-%",)).fetchall()
    finally:
        db.close()
    return {t: (r, c, float(s), b, np.frombuffer(f, dtype=np.float64)) for t, r, c, s, b, f in rows}


def counted(state: Path) -> dict[str, str]:
    """txn_id -> customer_id of the test's transactions in the online state's event log."""
    db = _ro(state / "features.sqlite")
    try:
        return dict(db.execute("SELECT txn_id, json_extract(record, '$.customer_id') FROM events WHERE txn_id LIKE ?",
                               (PREFIX + "-%",)).fetchall())
    finally:
        db.close()


def audit_verify(state: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "amlscore.cli", "audit", "verify", "--state", str(state)],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)})


class Streams:
    """Each customer's transactions in time order, two days after the data: the n-th (from 1) n minutes in."""

    def __init__(self, customers: list[str], start: Any) -> None:
        self.customers, self.start, self.sent = customers, start, Counter()

    def next(self, customer: str) -> dict[str, Any]:
        import pandas as pd

        self.sent[customer] += 1
        n = self.sent[customer]
        ts = self.start + pd.Timedelta(minutes=n, seconds=self.customers.index(customer))
        incoming = n % 3 != 0
        return {"txn_id": f"{PREFIX}-{customer}-{n:03d}", "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "customer_id": customer, "account_id": f"ACC-{customer}", "direction": "in" if incoming else "out",
                "amount": 900.0 + 37 * n, "channel": "counter",
                "txn_type": "cash_deposit" if incoming else "cash_withdrawal", "counterparty_type": "unknown"}


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, tiny_bank: Path) -> Iterator[Server]:
    """The real service on the tiny bank with a saved model set, in a state folder of its own."""
    from amlscore.serving.auth import write_keys_file

    work = tmp_path_factory.mktemp("kill")
    model_dir = save_small_model_set(work / "model_set")
    state = work / "state"
    write_keys_file(state / "api_keys.yaml", KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(tiny_bank), "AML_STATE_DIR": str(state), "AML_MODEL_DIR": str(model_dir),
           "AML_WARM_UP_DAYS": "5", "AML_MAX_FUTURE_SECONDS": "0", "AML_AUDIT_SYNC": "full",
           "BENTOML_DO_NOT_TRACK": "true",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    srv = Server(env, work / "server.log")
    srv.start()
    srv.state = state
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def streams(tiny_dataset: Any) -> Streams:
    import pandas as pd

    tx = tiny_dataset.transactions
    last = pd.to_datetime(tx["timestamp"], utc=True).max()
    customers = tx["customer_id"].astype(str).value_counts().index[:12].tolist()
    return Streams(customers, last.floor("D") + pd.Timedelta(days=2))


def _answer(r: Any) -> dict[str, tuple[str, float, bool]]:
    """txn_id -> (request_id, score, replayed) of a 200 answer of /v1/score or /v1/score_batch."""
    assert r.status_code == 200, r.text
    doc = r.json()
    items = doc["results"] if "results" in doc else [doc]
    return {d["txn_id"]: (d["request_id"], float(d["suspicion_score"]), bool(d["replayed"])) for d in items}


def _raw_post(port: int, route: str, body: dict[str, Any], headers: dict[str, str]) -> socket.socket:
    """Send a request on a socket of its own and leave its answer unread: the client never acknowledges it."""
    data = json.dumps(body).encode()
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.sendall(f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{head}"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def test_kill_while_a_batch_and_singles_are_in_flight_loses_nothing_and_counts_nothing_twice(
        service: Server, streams: Streams) -> None:
    s = service.state
    c = streams.customers
    health = service.post("/v1/health", {}, CHANNEL).json()
    warm_difference = health["state_transactions"] - health["audit_decisions"]
    sent: list[tuple[str, list[dict[str, Any]]]] = []  # (route, transactions) of every request
    acked: dict[str, tuple[str, float, bool]] = {}

    # 1. acknowledged before the kill: a single of each role and a batch
    for cust, headers in ((c[0], CHANNEL), (c[1], COMPLIANCE)):
        txn = streams.next(cust)
        sent.append(("/v1/score", [txn]))
        acked.update(_answer(service.post("/v1/score", {"transaction": txn}, headers)))
    batch0 = [streams.next(c[k % 4]) for k in range(10)]
    sent.append(("/v1/score_batch", batch0))
    acked.update(_answer(service.post("/v1/score_batch", {"transactions": batch0}, CHANNEL)))

    # 2. committed, never acknowledged: the answer is left unread on its socket
    unread_txn = streams.next(c[4])
    sent.append(("/v1/score", [unread_txn]))
    unread = _raw_post(service.port, "/v1/score", {"transaction": unread_txn}, CHANNEL)
    wait_until(lambda: unread_txn["txn_id"] in decided(s), "the unread single's decision in the audit log")
    unread_request_id = decided(s)[unread_txn["txn_id"]][0]

    # 3. counted, not decided: the audit log's commits wait for the test's write lock. The service's audit
    # writer waits for it up to SQLite's busy timeout (Python's default, 5 s) before failing the commit;
    # the kill comes as soon as the state has counted the four requests, milliseconds after they are sent
    blocker = sqlite3.connect(s / "audit.sqlite", timeout=DEADLINE, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    batch1 = [streams.next(c[5 + k % 4]) for k in range(30)]
    singles = [(streams.next(c[9 + k]), COMPLIANCE if k % 2 else CHANNEL) for k in range(3)]
    in_flight = [("/v1/score_batch", batch1, {"transactions": batch1}, CHANNEL)]
    in_flight += [("/v1/score", [t], {"transaction": t, "explain": True}, h) for t, h in singles]
    sent += [(route, txns) for route, txns, _, _ in in_flight]
    pool = ThreadPoolExecutor(len(in_flight))
    futures = [pool.submit(service.post, route, body, headers) for route, _, body, headers in in_flight]
    pending = {t["txn_id"] for _, txns, _, _ in in_flight for t in txns}
    wait_until(lambda: pending <= set(counted(s)), "the in-flight transactions in the online state")
    service.stop(hard=True)  # SIGKILL to the server, its worker and their children
    blocker.execute("ROLLBACK")
    blocker.close()
    unread.close()
    for f in futures:  # every one of them was cut off by the kill, none answered
        with pytest.raises(httpx.TransportError):
            f.result(timeout=DEADLINE)
    pool.shutdown()

    # what the kill left: the in-flight transactions counted, none decided; the audit chain intact
    after_kill = decided(s)
    assert set(counted(s)) - set(after_kill) == pending
    assert set(after_kill) == set(acked) | {unread_txn["txn_id"]}
    done = audit_verify(s)
    assert done.returncode == 0, done.stdout + done.stderr

    # 4. restart; resend every request without an answer, unchanged
    service.start()
    answers = _answer(service.post("/v1/score", {"transaction": unread_txn}, CHANNEL))
    assert answers[unread_txn["txn_id"]] == (unread_request_id, after_kill[unread_txn["txn_id"]][2], True)
    for route, txns, body, headers in in_flight:
        got = _answer(service.post(route, body, headers))
        assert [got[t["txn_id"]][2] for t in txns] == [False] * len(txns)  # decided now, not replays
        answers.update(got)

    # 5. the invariants
    final = decided(s)
    for txn_id, (request_id, score, _) in {**acked, **answers}.items():
        assert final[txn_id][0] == request_id and final[txn_id][2] == score, txn_id
    sent_per_customer = Counter(t["customer_id"] for _, txns in sent for t in txns)
    assert Counter(counted(s).values()) == Counter(v[1] for v in final.values()) == sent_per_customer
    health = service.post("/v1/health", {}, CHANNEL).json()
    assert health["state_transactions"] - health["audit_decisions"] == warm_difference  # in memory too
    count = [FEATURE_NAMES.index("in_cnt_24h"), FEATURE_NAMES.index("out_cnt_24h")]
    ranks = {txn_id: int(txn_id.rsplit("-", 1)[1]) for txn_id in final}
    assert {t: int(v[4][count].sum()) for t, v in final.items()} == ranks  # nothing counted twice or lost
    by_batch: dict[str, set[str]] = defaultdict(set)
    for txn_id, v in final.items():
        if v[3] is not None:
            by_batch[v[3]].add(txn_id)
    assert sorted(map(sorted, by_batch.values())) == sorted(sorted(t["txn_id"] for t in b) for b in (batch0, batch1))
    done = audit_verify(s)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_worker_left_running_by_a_kill_of_the_servers_group_keeps_the_state_folder_to_itself(
        service: Server, tmp_path: Path) -> None:
    """BentoML's process manager starts its worker in a session of its own, so ``kill -9`` of ``bentoml
    serve``'s process group leaves the worker running, answering on the socket it inherited. A service
    started again on the same state folder must then refuse to start (naming that worker), not run a
    second engine beside it: each would count and chain the audit log from its own view of the folder."""
    import signal

    procs = service._tree()
    os.killpg(service.proc.pid, signal.SIGKILL)
    service.proc.wait()
    service._logf.close()
    service.proc = None
    left = [p for p in procs[1:] if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    try:
        if not left:
            pytest.skip("the worker died with its server's process group: nothing is left holding the state folder")
        assert httpx.get(f"{service.url}/readyz", timeout=DEADLINE).status_code == 200  # the orphan still serves
        log, port = tmp_path / "second.log", free_port()
        with open(log, "w") as out:
            second = subprocess.Popen(
                [sys.executable, "-m", "bentoml", "serve", "amlscore.serving.service:AmlScoring", "--host", "127.0.0.1",
                 "--port", str(port), "--working-dir", str(ROOT)],
                env=service.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            def ready() -> bool:
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(lambda: "is in use by process" in log.read_text(errors="replace") or second.poll() is not None
                       or ready(), "the second service's refusal, exit or readiness")
            assert not ready(), "a second service started on the state folder the worker holds"
            text = log.read_text(errors="replace")
            assert any(f"is in use by process {p.pid}" in text for p in left), text[-3000:]
        finally:
            tree = [psutil.Process(second.pid)] if second.poll() is None else []
            try:
                tree += tree[0].children(recursive=True) if tree else []
            except psutil.Error:
                pass
            for p in tree:
                p.kill()
            psutil.wait_procs(tree, timeout=60)
            second.wait(timeout=60)
    finally:
        for p in left:
            try:
                p.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=60)
    service.start()  # on the same state: the folder is free once the worker is gone
    assert service.post("/v1/health", {}, CHANNEL).json()["ready"]
