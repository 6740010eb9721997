"""What the shared online state (Valkey/Redis) holds after a stream of transactions, trimmed or not, and
what the trimming costs.

Usage::

    flock /tmp/heavy.lock .venv/bin/python benchmarks/bench_redis_trim.py --out trim.json   # ~6-8 min, 2 cores

A synthetic bank (``--customers``, ``--days``; 3,000 and 120 give ~270,000 transactions) is counted, in
time order, by one online state over a fresh ``redis-server`` (the tests' helper, AOF ``everysec``),
twice: with trimming off (``TrimPolicy(trim=False, keep_snapshots=1)``: what the store kept before
trimming existed) and on (the defaults: two snapshots kept, feature rows and txn ids for one hour of
transaction time). Snapshots every ``--snapshot-every`` transactions from a forked child, as the
service writes them. For each run it records:

* Redis ``used_memory``, ``MEMORY USAGE`` of each key, and the entry counts (log entries, feature rows, txn ids, expiry-queue
  entries, snapshot blobs and their bytes), after the synchronous snapshot a service writes when it
  stops (so that they do not depend on how far the background snapshots got on a busy machine);
* the commands the counting process sent to Redis per transaction (its client's calls, counted), so
  that trimming adds no round trip to a request: the trim runs in the snapshot writer;
* what the trim held Redis for: every command slower than ``--slowlog-us`` from ``SLOWLOG``,
  grouped by script (the claim, the snapshot pointer, the rows' trim chunks) or command (the log's
  ``XTRIM`` chunks);
* the counting process's CPU time per transaction, and the rating-window rows the state keeps
  (count, pickled bytes per row).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "tests"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))


def _sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


def _bank(customers: int, days: int, seed: int) -> tuple[Any, list[dict[str, Any]]]:
    from amlscore.contract import load_dataset
    from amlscore.features.events import transaction_records
    from amlscore.features.offline import ordered_transactions
    from amlscore.synth import SynthConfig, generate_bank, write_bank

    folder = Path(tempfile.mkdtemp(prefix="aml-trim-bank-")) / "data"
    write_bank(generate_bank(SynthConfig(customers=customers, days=days, seed=seed)), folder)
    dataset = load_dataset(folder, require_reports=False)
    return dataset.customers, list(transaction_records(ordered_transactions(dataset.transactions)))


def _run(url: str, customers: Any, records: list[dict[str, Any]], policy: Any, every: int, slowlog_us: int) -> dict[str, Any]:
    import redis

    from amlscore.features import redis_store as rs
    from amlscore.features.online import OnlineFeatureState
    from amlscore.models.rules import load_rules_config
    from amlscore.serving.state import rating_window_spec

    client = redis.Redis.from_url(url)
    client.flushall()
    client.config_set("slowlog-log-slower-than", slowlog_us)
    client.config_set("slowlog-max-len", 100_000)
    client.slowlog_reset()
    client.config_resetstat()
    state = OnlineFeatureState(customers, store=rs.RedisFeatureStore(url, trim=policy), snapshot_every=every,
                               recent_rows=rating_window_spec(load_rules_config()))
    calls = [0]
    real = state.store._r.execute_command  # type: ignore[attr-defined]

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return real(*args, **kwargs)

    state.store._r.execute_command = counted  # type: ignore[attr-defined]
    t0, c0 = time.perf_counter(), time.process_time()
    for record in records:
        state.update_vector(record)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sent = calls[0]
    # the last background snapshot (and its trim) done, then the one a service writes when it stops: the
    # store as a restart finds it, whatever the children managed meanwhile on a busy machine
    state.snapshots.wait()
    state.snapshot()
    keys = rs._keys()
    _until_freed(client)  # an unlinked snapshot blob is freed by a background thread
    info = client.info("memory")
    blobs = list(client.scan_iter(match=keys["snap"] + ":blob:*"))
    by_key = {name: int(client.memory_usage(keys[name], samples=0) or 0)
              for name in ("log", "feat", "txn", "tq", "last", "snaps", "meta")}
    scripts = {_sha(rs._CLAIM): "claim", _sha(rs._SNAPSHOT): "snapshot pointer", _sha(rs._TRIM_ROWS): "rows trim chunk",
               _sha(rs._PUT_ROW): "store row", _sha(rs._ORPHAN): "orphan check"}
    slow: dict[str, dict[str, float]] = {}
    for entry in client.slowlog_get(100_000):
        cmd = entry["command"].decode(errors="replace").split()
        name = scripts.get(cmd[1], cmd[1][:12]) if cmd and cmd[0].upper() == "EVALSHA" and len(cmd) > 1 else (cmd[0] if cmd else "?")
        s = slow.setdefault(name, {"count": 0, "max_ms": 0.0, "total_ms": 0.0})
        s["count"] += 1
        s["max_ms"] = max(s["max_ms"], entry["duration"] / 1000)
        s["total_ms"] += entry["duration"] / 1000
    recent = state.recent
    recent_bytes = len(pickle.dumps(recent, protocol=pickle.HIGHEST_PROTOCOL)) if recent is not None else 0
    out = {
        "policy": {"trim": policy.trim, "keep_snapshots": policy.keep_snapshots, "retry_hours": policy.retry_hours},
        "transactions": len(records),
        "used_memory_bytes": int(info["used_memory"]),
        "used_memory_dataset_bytes": int(info.get("used_memory_dataset", 0)),
        "memory_usage_by_key_bytes": by_key,
        "log_entries": int(client.xlen(keys["log"])),
        "feature_rows": int(client.hlen(keys["feat"])),
        "txn_ids": int(client.hlen(keys["txn"])),
        "expiry_queue": int(client.llen(keys["tq"])),
        "customers_latest": int(client.hlen(keys["last"])),
        "snapshot_blobs": len(blobs),
        "snapshot_bytes": int(sum(client.strlen(b) for b in blobs)),
        "log_trimmed_at": int(client.hget(keys["meta"], "trimmed") or 0),
        "commands_per_txn": round(sent / len(records), 3),
        "wall_s": round(wall, 1),
        "cpu_ms_per_txn": round(cpu * 1000 / len(records), 4),
        "slowlog_over_us": slowlog_us,
        "slowlog": {k: {"count": int(v["count"]), "max_ms": round(v["max_ms"], 2), "total_ms": round(v["total_ms"], 1)}
                    for k, v in sorted(slow.items())},
        "rating_window_rows": len(recent) if recent is not None else 0,
        "rating_window_pickled_bytes_per_row": round(recent_bytes / max(len(recent), 1), 1) if recent is not None else 0,
    }
    state.store.close()
    return out


def _until_freed(client: Any, deadline_s: float = 60.0) -> None:
    """Wait (polling INFO) until Redis's lazy-free thread has no object left to free."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and int(client.info("memory").get("lazyfree_pending_objects", 0)):
        time.sleep(0.1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--customers", type=int, default=3000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--snapshot-every", type=int, default=50_000)
    ap.add_argument("--slowlog-us", type=int, default=500)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()

    from amlscore.features.redis_store import TrimPolicy
    from servers import redis_server

    started = datetime.now(timezone.utc)
    customers, records = _bank(args.customers, args.days, args.seed)
    print(f"bank: {len(customers):,} customers, {len(records):,} transactions", flush=True)
    runs = {}
    with redis_server() as url:
        import redis

        redis.Redis.from_url(url).config_set("appendfsync", "everysec")
        for name, policy in (("untrimmed", TrimPolicy(trim=False, keep_snapshots=1)), ("trimmed", TrimPolicy())):
            runs[name] = _run(url, customers, records, policy, args.snapshot_every, args.slowlog_us)
            print(name, json.dumps(runs[name], indent=1), flush=True)
    result = {"started_utc": started.isoformat(timespec="seconds"),
              "finished_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "load_average_at_end": os.getloadavg(), "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
