"""Benchmark: ``kill -9`` of the scoring service while single requests and batches are in flight.

Usage::

    .venv/bin/python benchmarks/bench_kill.py                           # 3 rounds x 400 requests, 1 kill each
    .venv/bin/python benchmarks/bench_kill.py --rounds 5 --kills 2 --requests 600 --seed 11

What it does:

1. generates a synthetic bank (``--customers`` x ``--days``, ``--seed``) as the service's data folder,
   trains a small model set on it into a private MLflow registry (or serves ``--tracking-uri``'s
   ``champion``), warms the online state up and starts the real service (``bentoml serve``, one
   worker, ``AML_AUDIT_SYNC=full``) in a process group of its own;
2. per round, ``--clients`` threads send ``--requests`` requests between them: single transactions
   (half with the channel key, half explained with the compliance key) and batches of
   ``--batch-min``..``--batch-max`` transactions (channel or compliance key). Every transaction has a
   new txn_id; each client owns its customers and sends each customer's transactions in time order,
   one request at a time, so the service never sees a customer's transactions out of order;
3. ``--kills`` times per round, once a random share (15-85 %, seeded) of the round's requests is
   answered plus a random 0-30 ms, it SIGKILLs every process of the service (the server, its worker,
   which BentoML starts in a session of its own, and their children), looks at what the
   kill left (requests in flight, transactions the online state counted whose decision was not
   committed, batches with only part of their decisions in the audit log, ``amlscore audit
   verify``), restarts the service and lets the clients resend every request they got no answer to,
   unchanged (same txn_ids): the service must return the committed decision (``replayed``) or decide
   it now, from the feature row the state kept, without counting it again;
4. after every round, with the service running, checks:

   * every acknowledged decision (a 200 the client received) is in the audit log, once, with the
     request_id and the score the client was told (``lost`` counts the others, must be 0);
   * no transaction was decided twice (``duplicates``: a txn_id answered with two request ids, or
     with another one than the audit log's, must be 0);
   * per customer, the online state's transactions (``features.sqlite``, the events the state is
     rebuilt from) equal the audit log's decisions, and equal the transactions sent; in memory, the
     service's ``/v1/health`` state count minus its decision count is still the warm-up's;
   * each decision's own count feature (``in_cnt_24h + out_cnt_24h``: the customer's transactions
     in the 24 hours up to and including this one; the load starts two days after the history, one
     transaction per customer every ``--spacing`` seconds) is the transaction's rank in the
     customer's stream: a transaction counted twice by a restarted state, or lost from it, shows;
   * no batch is half applied: every batch_id of the audit log holds all the transactions of the
     batch that produced it (a batch's decisions are committed together: docs/serving.md);
   * ``amlscore audit verify`` exits 0;

5. prints a table per round and the totals, and writes the figures as JSON (``--out``, default
   ``benchmarks/results/kill/<UTC time>.json``). The exit code is 1 when any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (str(ROOT), str(ROOT / "benchmarks")):
    if p not in sys.path:
        sys.path.insert(0, p)

import bench_serving as bs  # noqa: E402

PREFIX = "KILL"  # every txn_id of the load starts with it: the warm-up's are the data folder's own
CHANNEL = {"Authorization": "Bearer bench-channel-key"}
COMPLIANCE = {"Authorization": "Bearer bench-compliance-key"}
COUNT_FEATURES = ("in_cnt_24h", "out_cnt_24h")


# -- the load --------------------------------------------------------------------------------------
@dataclass
class Request:
    """One request of the load and what became of it."""

    rid: int
    round: int
    kind: str  # "single" or "batch"
    role: str  # "channel" or "compliance"
    txns: list[dict[str, Any]]
    attempts: int = 0
    failed_at_kill: list[int] = field(default_factory=list)  # service generations whose kill it was in flight at
    errors: list[str] = field(default_factory=list)  # non-200 answers (must stay empty)
    answer: dict[str, tuple[str, float, bool]] | None = None  # txn_id -> (request_id, score, replayed)

    @property
    def route(self) -> str:
        return "/v1/score" if self.kind == "single" else "/v1/score_batch"

    def body(self) -> bytes:
        if self.kind == "single":
            doc: dict[str, Any] = {"transaction": self.txns[0], "explain": self.role == "compliance"}
        else:
            doc = {"transactions": self.txns}
        return json.dumps(doc).encode()

    def headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json", **(COMPLIANCE if self.role == "compliance" else CHANNEL)}


class Streams:
    """Each customer's transactions in time order: the n-th (from 1) at ``start + n * spacing`` (+ the customer's offset)."""

    def __init__(self, customers: list[str], start_ns: int, spacing_s: float) -> None:
        self.customers = customers
        self.start_ns = start_ns
        self.spacing_ns = int(spacing_s * 1e9)
        self.sent: Counter[str] = Counter()

    def next(self, customer: str) -> dict[str, Any]:
        import pandas as pd

        self.sent[customer] += 1
        n = self.sent[customer]
        offset = self.customers.index(customer) * 1_000_000_000  # one second apart between customers
        ts = pd.Timestamp(self.start_ns + n * self.spacing_ns + offset, unit="ns", tz="UTC")
        incoming = n % 3 != 0
        return {"txn_id": f"{PREFIX}-{customer}-{n:05d}", "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "customer_id": customer, "account_id": f"ACC-{customer}", "direction": "in" if incoming else "out",
                "amount": round(500.0 + (n * 7919 + offset // 1_000_000) % 4_000_000 / 100, 2), "channel": "counter",
                "txn_type": "cash_deposit" if incoming else "cash_withdrawal", "counterparty_type": "unknown"}


def plan_round(rnd: int, n_requests: int, clients: list[list[str]], streams: Streams, rng: random.Random,
               batch_share: float, batch_min: int, batch_max: int) -> list[list[Request]]:
    """The round's requests, per client; a client's transactions come from its own customers only."""
    plans: list[list[Request]] = [[] for _ in clients]
    for i in range(n_requests):
        c = i % len(clients)
        customers = clients[c]
        if rng.random() < batch_share:
            size = rng.randint(batch_min, batch_max)
            txns = [streams.next(rng.choice(customers)) for _ in range(size)]
            plans[c].append(Request(i, rnd, "batch", rng.choice(("channel", "compliance")), txns))
        else:
            plans[c].append(Request(i, rnd, "single", "channel" if rng.random() < 0.5 else "compliance",
                                    [streams.next(rng.choice(customers))]))
    return plans


# -- the service ------------------------------------------------------------------------------------
class Service:
    """The real service in its own process group: start, SIGKILL the group, restart; clients follow its URL."""

    def __init__(self, env: dict[str, str], work: Path) -> None:
        self.env, self.work = env, work
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.generation = 0
        self.up = threading.Event()
        self.cond = threading.Condition()
        self.starts: list[float] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> float:
        self.port = bs.free_port()
        self.proc = bs.start_server("amlscore.serving.service:AmlScoring", self.port, self.env,
                                    self.work / f"server-{self.generation + 1}.log")
        ready = bs.wait_ready(self.port, self.proc)
        with self.cond:
            self.generation += 1
            self.up.set()
            self.cond.notify_all()
        self.starts.append(ready)
        return ready

    def tree(self) -> list[Any]:
        """The service's processes now: the server, its worker and their children (a snapshot writer)."""
        import psutil

        assert self.proc is not None
        root = psutil.Process(self.proc.pid)
        return [root] + root.children(recursive=True)

    def kill(self, procs: list[Any]) -> None:
        """SIGKILL every process of the service (:meth:`tree`, listed just before), then its group.

        Not only the process group: BentoML's process manager (circus) starts each worker in a session of
        its own, so ``kill -9 -PGID`` of ``bentoml serve`` leaves the worker running, still answering on the
        listening socket it inherited and holding the state folder. The clients are told only afterwards
        (``up`` cleared): until the signal, they go on sending as they were.
        """
        import psutil

        assert self.proc is not None
        for p in procs:
            try:
                p.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.up.clear()
        self.proc.wait()
        gone, alive = psutil.wait_procs(procs, timeout=60)
        if alive:
            raise RuntimeError(f"processes {[p.pid for p in alive]} of the service survived SIGKILL for 60 s")

    def stop(self) -> None:
        self.up.clear()
        if self.proc is not None:
            bs.stop_server(self.proc)

    def wait_past(self, generation: int, timeout: float = 900) -> None:
        """Wait for a service newer than ``generation`` (a restart); return at once if the same one is still up
        after a short while (the error was not a kill's)."""
        with self.cond:
            self.cond.wait_for(lambda: self.generation > generation and self.up.is_set(), timeout=2.0)
            if self.generation > generation or (self.proc is not None and self.proc.poll() is None and self.up.is_set()):
                return
            self.cond.wait_for(lambda: self.generation > generation and self.up.is_set(), timeout=timeout)


class Progress:
    """Answered requests of the round; the killer waits on it."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.answered = 0
        self.in_flight: dict[int, Request] = {}

    def begin(self, req: Request) -> None:
        with self.cond:
            self.in_flight[req.rid] = req

    def end(self, req: Request, answered: bool) -> None:
        with self.cond:
            self.in_flight.pop(req.rid, None)
            if answered:
                self.answered += 1
                self.cond.notify_all()


def run_client(plan: list[Request], svc: Service, progress: Progress) -> None:
    import httpx

    with httpx.Client(timeout=httpx.Timeout(300.0, connect=10.0)) as http:
        for req in plan:
            body, headers = req.body(), req.headers()
            while req.answer is None:
                svc.up.wait()
                generation, url = svc.generation, svc.url
                req.attempts += 1
                progress.begin(req)
                try:
                    r = http.post(url + req.route, content=body, headers=headers)
                except httpx.TransportError:
                    progress.end(req, answered=False)
                    req.failed_at_kill.append(generation)
                    svc.wait_past(generation)
                    continue
                if r.status_code != 200:
                    progress.end(req, answered=False)
                    req.errors.append(f"{r.status_code}: {r.text[:300]}")
                    if len(req.errors) >= 5:
                        return  # reported: the round's checks fail
                    time.sleep(0.5)
                    continue
                doc = r.json()
                items = [doc] if req.kind == "single" else doc["results"]
                answer = {}
                for txn, item in zip(req.txns, items):
                    if "request_id" not in item:
                        req.errors.append(f"item {txn['txn_id']}: {item}")
                        continue
                    answer[item["txn_id"]] = (item["request_id"], float(item["suspicion_score"]), bool(item["replayed"]))
                req.answer = answer
                progress.end(req, answered=True)


# -- what the state folder holds ------------------------------------------------------------------------
def _ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)


def audit_rows(state: Path) -> dict[str, tuple[str, str, float, str | None, bytes]]:
    """txn_id -> (request_id, customer_id, score, batch_id, features) of the load's decisions."""
    db = _ro(state / "audit.sqlite")
    try:
        rows = db.execute("SELECT txn_id, request_id, customer_id, suspicion_score, batch_id, features FROM decisions "
                          "WHERE txn_id LIKE ?", (PREFIX + "-%",)).fetchall()
    finally:
        db.close()
    out = {}
    for txn_id, request_id, customer_id, score, batch_id, feats in rows:
        if txn_id in out:
            raise AssertionError(f"txn_id {txn_id} has two decisions")  # the UNIQUE constraint forbids it
        out[txn_id] = (request_id, customer_id, float(score), batch_id, feats)
    return out


def state_events(state: Path) -> dict[str, str]:
    """txn_id -> customer_id of the load's transactions in the online state's event log."""
    db = _ro(state / "features.sqlite")
    try:
        rows = db.execute("SELECT txn_id, json_extract(record, '$.customer_id') FROM events WHERE txn_id LIKE ?",
                          (PREFIX + "-%",)).fetchall()
    finally:
        db.close()
    return dict(rows)


def audit_verify(state: Path) -> tuple[bool, str]:
    """``amlscore audit verify --state STATE``: (exit code 0, its last line)."""
    done = subprocess.run([sys.executable, "-m", "amlscore.cli", "audit", "verify", "--state", str(state)],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=600)
    text = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, text[-1] if text else ""


def after_kill(state: Path, in_flight: list[Request]) -> dict[str, Any]:
    """What a kill left: counted-but-undecided transactions, partial batches, ``audit verify``.

    ``in_flight`` are the requests sent and not answered just before the kill (a few may have been
    answered in between: :func:`in_flight_at` tells them apart once the round is over)."""
    decided = audit_rows(state)
    counted = state_events(state)
    partial = 0
    for req in in_flight:
        if req.kind == "batch":
            n = sum(t["txn_id"] in decided for t in req.txns)
            partial += 0 < n < len(req.txns)
    ok, line = audit_verify(state)
    return {"in_flight_committed_txns": sum(t["txn_id"] in decided for r in in_flight for t in r.txns),
            "counted_undecided": len(set(counted) - set(decided)),
            "decided_not_counted": len(set(decided) - set(counted)),
            "partial_batches": partial, "verify_ok": ok, "verify": line}


def in_flight_at(kill: dict[str, Any], requests: list[Request]) -> dict[str, int]:
    """The requests a kill cut off: in flight just before it and failed on that service generation."""
    cut = [r for r in requests if r.rid in kill["rids"] and kill["generation"] in r.failed_at_kill]
    return {"in_flight_singles": sum(r.kind == "single" for r in cut), "in_flight_batches": sum(r.kind == "batch" for r in cut),
            "in_flight_txns": sum(len(r.txns) for r in cut)}


def check(state: Path, requests: list[Request], streams: Streams, health: dict[str, Any], warm_base: int) -> dict[str, Any]:
    """The invariants over every request sent so far (the service running, every request answered)."""
    import numpy as np

    from amlscore.features.catalogue import FEATURE_NAMES

    decided = audit_rows(state)
    counted = state_events(state)
    lost = duplicates = 0
    for req in requests:
        for txn in req.txns:
            got = (req.answer or {}).get(txn["txn_id"])
            row = decided.get(txn["txn_id"])
            if got is None:
                continue
            if row is None or row[2] != got[1]:
                lost += 1
            elif row[0] != got[0]:
                duplicates += 1
    sent = {t["txn_id"]: t["customer_id"] for r in requests for t in r.txns}
    per_state, per_audit, per_sent = Counter(counted.values()), Counter(v[1] for v in decided.values()), Counter(sent.values())
    customers = set(per_state) | set(per_audit) | set(per_sent)
    count_mismatch = sum(per_state[c] != per_audit[c] or per_audit[c] != per_sent[c] for c in customers)
    idx = [FEATURE_NAMES.index(f) for f in COUNT_FEATURES]
    rank_mismatch = 0
    for txn_id, row in decided.items():
        rank = int(txn_id.rsplit("-", 1)[1])
        x = np.frombuffer(row[4], dtype=np.float64)
        rank_mismatch += int(round(float(x[idx].sum()))) != rank
    by_batch: dict[str, set[str]] = defaultdict(set)
    for txn_id, row in decided.items():
        if row[3] is not None:
            by_batch[row[3]].add(txn_id)
    batch_sets = {frozenset(t["txn_id"] for t in r.txns) for r in requests if r.kind == "batch"}
    half_batches = sum(frozenset(s) not in batch_sets for s in by_batch.values())
    in_memory = int(health["state_transactions"]) - int(health["audit_decisions"])
    return {"decisions": len(decided), "state_events": len(counted), "lost": lost, "duplicates": duplicates,
            "count_mismatch_customers": count_mismatch, "rank_mismatch": rank_mismatch, "half_batches": half_batches,
            "in_memory_difference": in_memory, "in_memory_ok": in_memory == warm_base,
            "unanswered": sum(r.answer is None for r in requests), "errors": sum(len(r.errors) for r in requests)}


# -- setup ------------------------------------------------------------------------------------------
def train_small(work: Path, data: Path, seed: int) -> str:
    """A small model set (the figures here do not depend on its quality) made champion in a private registry."""
    from amlscore.core.registry import process_wide_mlflow_uri
    from amlscore.training.pipeline import train_and_register
    from amlscore.training.tracking import set_alias
    from amlscore.training.train import TrainConfig

    uri = f"sqlite:///{work / 'mlflow.db'}"
    with process_wide_mlflow_uri(uri):
        t = time.perf_counter()
        result = train_and_register(TrainConfig(data=data, seed=seed, max_train_negatives=5000,
                                                max_valid_negatives=5000, anomaly_fit_rows=5000))
        set_alias("champion", result.model_version)
        print(f"model: version {result.model_version} trained in {time.perf_counter() - t:.0f} s", flush=True)
    return uri


def load_start(data: Path) -> tuple[int, list[str]]:
    """Two days after the data folder's last transaction (ns), and the customers table's ids."""
    import pandas as pd

    from amlscore.contract import load_dataset

    ds = load_dataset(data, require_reports=False)
    last = pd.to_datetime(ds.transactions["timestamp"], utc=True).max()
    start = (last.floor("D") + pd.Timedelta(days=2)).value
    return int(start), ds.customers["customer_id"].astype(str).tolist()


def print_table(rows: list[dict[str, Any]]) -> None:
    cols = ["round", "requests", "txns", "acked", "lost", "resent", "replayed", "decided_on_resend", "duplicates",
            "kills", "in_flight", "counted_undecided", "half_batches", "count_mismatch", "rank_mismatch", "verify",
            "restart_s"]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c, "")).rjust(widths[c]) for c in cols))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=300, help="Synthetic bank size (customers).")
    parser.add_argument("--days", type=int, default=60, help="Days of history (the model trains on them).")
    parser.add_argument("--warm-up-days", type=int, default=20, help="History replayed into the online state.")
    parser.add_argument("--seed", type=int, default=7, help="Bank, model, load and kill moments.")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=400, help="Requests per round.")
    parser.add_argument("--kills", type=int, default=1, help="SIGKILLs per round.")
    parser.add_argument("--clients", type=int, default=6, help="Concurrent clients.")
    parser.add_argument("--load-customers", type=int, default=48, help="Customers the load's transactions belong to.")
    parser.add_argument("--batch-share", type=float, default=0.3, help="Share of requests that are batches.")
    parser.add_argument("--batch-min", type=int, default=5)
    parser.add_argument("--batch-max", type=int, default=40)
    parser.add_argument("--spacing", type=float, default=20.0,
                        help="Seconds between a customer's transactions (all of a customer's must fit in 24 h).")
    parser.add_argument("--tracking-uri", default=None, help="Serve this registry's champion instead of training one.")
    parser.add_argument("--data", type=Path, default=None, help="Data folder for --tracking-uri (default: generate).")
    parser.add_argument("--work", type=Path, default=None, help="Working folder (default: a temporary one).")
    parser.add_argument("--out", type=Path, default=None, help="JSON results (default benchmarks/results/kill/<time>.json).")
    args = parser.parse_args(argv)

    from amlscore.serving.auth import write_keys_file
    from amlscore.serving.config import Settings
    from amlscore.serving.state import prepare_state

    began = datetime.now(timezone.utc)
    work = args.work or Path(tempfile.mkdtemp(prefix="amlscore-bench-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    if args.data is not None:
        data = args.data
    else:
        data, _ = bs.prepare_data(work, args.customers, args.days, 1, args.seed)
    uri = args.tracking_uri or train_small(work, data, args.seed)
    start_ns, all_customers = load_start(data)
    load_customers = rng.sample(all_customers, min(args.load_customers, len(all_customers)))
    max_per_customer = args.rounds * args.requests * (args.batch_share * args.batch_max + 1) / len(load_customers) * 3
    if max_per_customer * args.spacing > 20 * 3600:
        parser.error(f"--spacing {args.spacing} s: a customer's transactions could spread beyond 24 h")
    streams = Streams(load_customers, start_ns, args.spacing)
    clients = [load_customers[c::args.clients] for c in range(args.clients)]

    state = work / "state"
    write_keys_file(state / "api_keys.yaml", bs.KEYS)
    env = {**os.environ, "AML_DATA_DIR": str(data), "AML_STATE_DIR": str(state), "AML_WARM_UP_DAYS": str(args.warm_up_days),
           "MLFLOW_TRACKING_URI": uri, "AML_MODEL_ALIAS": "champion", "AML_AUDIT_SYNC": "full",
           "AML_MAX_FUTURE_SECONDS": "0", "BENTOML_DO_NOT_TRACK": "true",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    in_state, _ = prepare_state(Settings.from_env(env))
    print(f"warm-up: {in_state:,} transactions in the online state; load: {len(load_customers)} customers, "
          f"{args.clients} clients, {args.rounds} rounds x {args.requests} requests, {args.kills} kill(s) a round",
          flush=True)
    import httpx

    svc = Service(env, work)
    ready = svc.start()
    print(f"service ready in {ready:.1f} s (logs: {work})", flush=True)
    health = httpx.post(f"{svc.url}/v1/health", headers=CHANNEL, timeout=30).json()
    warm_base = int(health["state_transactions"]) - int(health["audit_decisions"])

    every: list[Request] = []
    rows: list[dict[str, Any]] = []
    kills: list[dict[str, Any]] = []
    failed = False
    try:
        for rnd in range(1, args.rounds + 1):
            plans = plan_round(rnd, args.requests, clients, streams, rng, args.batch_share, args.batch_min, args.batch_max)
            requests = sorted((r for p in plans for r in p), key=lambda r: r.rid)
            every.extend(requests)
            targets = sorted(int(args.requests * rng.uniform(0.15, 0.85)) for _ in range(args.kills))
            delays = [rng.uniform(0.0, 0.03) for _ in targets]
            progress = Progress()
            threads = [threading.Thread(target=run_client, args=(plan, svc, progress), daemon=True) for plan in plans]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            round_kills = []
            for target, delay in zip(targets, delays):
                with progress.cond:
                    progress.cond.wait_for(lambda: progress.answered >= target or not any(t.is_alive() for t in threads),
                                           timeout=3600)
                time.sleep(delay)  # a random moment after the target (the load never pauses)
                procs = svc.tree()
                with progress.cond:
                    in_flight = list(progress.in_flight.values())
                generation = svc.generation
                svc.kill(procs)
                seen = after_kill(state, in_flight)
                seen.update(generation=generation, rids=sorted(r.rid for r in in_flight))
                seen["restart_s"] = round(svc.start(), 1)
                seen.update(round=rnd, after_answered=target, delay_ms=round(delay * 1000, 1))
                round_kills.append(seen)
                print(f"  round {rnd}: kill after {target} answers (+{delay * 1000:.0f} ms), {len(in_flight)} requests in "
                      f"flight: {json.dumps({k: v for k, v in seen.items() if k != 'rids'})}", flush=True)
            for t in threads:
                t.join()
            for k in round_kills:
                k.update(in_flight_at(k, requests))
            elapsed = time.perf_counter() - t0
            health = httpx.post(f"{svc.url}/v1/health", headers=CHANNEL, timeout=30).json()
            checked = check(state, every, streams, health, warm_base)
            ok, line = audit_verify(state)
            resent = [r for r in requests if r.attempts > 1]
            replayed = sum(v[2] for r in resent for v in (r.answer or {}).values())
            row = {"round": rnd, "requests": len(requests), "txns": sum(len(r.txns) for r in requests),
                   "singles": sum(r.kind == "single" for r in requests),
                   "batches": sum(r.kind == "batch" for r in requests),
                   "acked": sum(r.answer is not None for r in requests), "lost": checked["lost"], "resent": len(resent),
                   "resent_txns": sum(len(r.txns) for r in resent), "replayed": replayed,
                   "decided_on_resend": sum(len(r.txns) for r in resent) - replayed,
                   "duplicates": checked["duplicates"], "kills": len(round_kills),
                   "in_flight": "/".join(f"{k['in_flight_singles']}s+{k['in_flight_batches']}b" for k in round_kills),
                   "counted_undecided": sum(k["counted_undecided"] for k in round_kills),
                   "half_batches": checked["half_batches"] + sum(k["partial_batches"] for k in round_kills),
                   "count_mismatch": checked["count_mismatch_customers"] + int(not checked["in_memory_ok"]),
                   "rank_mismatch": checked["rank_mismatch"],
                   "verify": "ok" if ok and all(k["verify_ok"] for k in round_kills) else "BROKEN",
                   "restart_s": "/".join(str(k["restart_s"]) for k in round_kills),
                   "seconds": round(elapsed, 1), "checks": checked, "verify_line": line}
            rows.append(row)
            kills.extend(round_kills)
            bad = (row["lost"] or row["duplicates"] or row["half_batches"] or row["count_mismatch"] or row["rank_mismatch"]
                   or row["verify"] != "ok" or checked["unanswered"] or checked["errors"]
                   or any(k["decided_not_counted"] for k in round_kills))
            failed = failed or bool(bad)
            print(f"round {rnd}: {json.dumps({k: v for k, v in row.items() if k != 'checks'})} checks={json.dumps(checked)}",
                  flush=True)
    finally:
        svc.stop()
    ok, line = audit_verify(state)
    failed = failed or not ok
    print()
    print_table(rows)
    totals = {k: sum(r[k] for r in rows) for k in ("requests", "txns", "acked", "lost", "resent", "replayed",
                                                   "decided_on_resend", "duplicates", "kills", "counted_undecided",
                                                   "half_batches", "count_mismatch", "rank_mismatch")}
    print("total  " + "  ".join(f"{k}={v}" for k, v in totals.items()))
    print(f"amlscore audit verify after the final stop: {line}")
    summary = {
        "date": began.strftime("%Y-%m-%d %H:%M UTC"),
        "command": "benchmarks/bench_kill.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "load_average_at_end": os.getloadavg(),
        "settings": vars(args) | {"work": str(work), "data": str(data), "out": str(args.out) if args.out else None},
        "warm_up_transactions": in_state, "first_ready_s": round(ready, 1),
        "rounds": rows, "kills": kills, "totals": totals, "final_verify": {"ok": ok, "line": line},
        "passed": not failed,
    }
    out = args.out or ROOT / "benchmarks" / "results" / "kill" / f"{began.strftime('%Y%m%dT%H%MZ')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")
    print("PASSED: no acknowledged decision lost, nothing counted twice, no batch half applied" if not failed
          else "FAILED: see the rows above")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
