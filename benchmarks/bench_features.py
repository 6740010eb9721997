"""Benchmark the feature pipelines (issue 3): offline throughput and peak memory, online latency.

Usage::

    .venv/bin/python benchmarks/bench_features.py                       # default data set, online latency
    .venv/bin/python benchmarks/bench_features.py --big-customers 20000 # also a ~5M-transaction history
    .venv/bin/python benchmarks/bench_features.py --pauses --skip-offline --skip-online  # worst pauses only

``--pauses`` streams the default data set through the online state (SQLite store) far enough to cross
two periodic snapshots (by default 100,000 transactions of warm-up, then 110,000 measured with a
snapshot every 47,000 instead of the service's 50,000: at 141,000 and 188,000, apart from the
state's sweeps of idle identifier windows every 10,000) and reports the worst calls of ``update_vector``:
max and p99.9 of wall and CPU time (the calling thread's, ``time.thread_time``: the store's
checkpoint thread and the snapshot child are not the request path), which calls they were, the
RSS steps, and the CPU of the process and of its children. ``--sync-snapshots`` measures the
synchronous fallback. To compare with an earlier version, run the same command with that version's
``features`` package first on the path, e.g. ``git archive <commit> features | tar -x -C /tmp/before``
then ``PYTHONPATH=/tmp/before .venv/bin/python benchmarks/bench_features.py --pauses ...`` (the
output names the package it measured).

``--growth`` streams the default data set from the start and, once every window is full, measures
what the online state's structures hold every ``--growth-every`` transactions (entries and bytes,
objects counted once, with ``sys.getsizeof``), and reports what each gains per 10,000 transactions.

Each offline measurement runs in a fresh child process so that its peak RSS is its own. Wall-clock
figures need an otherwise idle machine; each line also gives the CPU time and the load average, so a
run on a busy machine can be told apart. Figures go into the README by hand, with the date and the
machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _generate(folder: Path, customers: int, days: int, seed: int) -> None:
    if (folder / "transactions.parquet").exists():
        return
    subprocess.run([sys.executable, "-m", "amlscore.cli", "generate", "--out", str(folder), "--customers",
                    str(customers), "--days", str(days), "--seed", str(seed)], check=True, cwd=ROOT)


def offline_child(folder: str, out: str) -> None:
    """Runs in a child: load, compute features to Parquet, print JSON figures."""
    from amlscore.contract import load_dataset
    from amlscore.features.offline import iter_feature_chunks, ordered_transactions, write_features

    dataset = load_dataset(folder, require_reports=False)
    n = len(dataset.transactions)
    start, cpu = time.perf_counter(), time.process_time()
    txns = ordered_transactions(dataset.transactions)
    for _rows, _part in iter_feature_chunks(txns, dataset.customers, chunk_rows=500_000):
        pass  # compute only: every feature row of every partition, then dropped
    compute, compute_cpu = time.perf_counter() - start, time.process_time() - cpu
    start, cpu = time.perf_counter(), time.process_time()
    write_features(dataset, out, chunk_rows=500_000)  # computes again, and writes (in a second thread)
    written, written_cpu = time.perf_counter() - start, time.process_time() - cpu
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
    idcomp, idcomp_cpu = _idcomp_pass_seconds(dataset, txns)
    print(json.dumps({"transactions": n, "compute_s": round(compute, 2), "compute_tx_per_s": round(n / compute),
                      "idcomp_pass_s": round(idcomp, 2), "idcomp_pass_cpu_s": round(idcomp_cpu, 2),
                      "compute_cpu_s": round(compute_cpu, 2),
                      "with_parquet_write_s": round(written, 2), "with_write_tx_per_s": round(n / written),
                      "with_write_cpu_s": round(written_cpu, 2), "peak_rss_gb": round(peak_gb, 2),
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


def _idcomp_pass_seconds(dataset, txns) -> tuple[float, float]:
    """Wall and CPU seconds of the components-of-shared-identifiers pass alone (part of the compute above),
    compiled beforehand."""
    from amlscore.features.events import TxnColumns
    from amlscore.features.offline import id_component_matrix
    from amlscore.features.params import load_feature_params
    from amlscore.features.registry import CustomerRegistry

    params = load_feature_params()
    registry = CustomerRegistry.from_customers(dataset.customers, params.bank_utc_offset_hours)
    tx = TxnColumns.from_frame(txns)
    cust = registry.codes(txns["customer_id"].astype(str).to_numpy(dtype=object))
    start, cpu = time.perf_counter(), time.process_time()
    id_component_matrix(tx, cust, registry, dataset.reports, params)
    return time.perf_counter() - start, time.process_time() - cpu


def _offline(folder: Path) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run([sys.executable, __file__, "--offline-child", str(folder), str(Path(tmp) / "f.parquet")],
                              check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _online(folder: Path, warmup: int, measured: int) -> dict:
    import numpy as np

    from amlscore.contract import load_dataset
    from amlscore.features.events import transaction_records
    from amlscore.features.online import OnlineFeatureState

    dataset = load_dataset(folder, require_reports=False)
    records = list(transaction_records(dataset.transactions.iloc[: warmup + measured]))
    with tempfile.TemporaryDirectory() as tmp:
        state = OnlineFeatureState(dataset.customers, store=Path(tmp) / "state.sqlite", reports=dataset.reports)
        for r in records[:warmup]:
            state.update_vector(r)
        gc.collect()
        gc.freeze()  # what a long-running service does after start-up: no full collections of old state
        lat = np.empty(measured)
        lat_cpu = np.empty(measured)  # the calling thread's CPU per call: what a busy machine does not inflate
        cpu = time.process_time()
        for i, r in enumerate(records[warmup:]):
            t0, c0 = time.perf_counter(), time.thread_time()
            state.update_vector(r)
            lat[i], lat_cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
        cpu = time.process_time() - cpu
        state.close()
    us = lat * 1e6
    return {"warmup": warmup, "measured": measured, "p50_us": round(float(np.percentile(us, 50))),
            "p99_us": round(float(np.percentile(us, 99))), "mean_us": round(float(us.mean())),
            "p99_9_us": round(float(np.percentile(us, 99.9))), "cpu_us_per_txn": round(cpu / measured * 1e6),
            "thread_cpu_p50_us": round(float(np.percentile(lat_cpu * 1e6, 50))),
            "thread_cpu_p99_us": round(float(np.percentile(lat_cpu * 1e6, 99))),
            "store": "SQLite (WAL, synchronous=NORMAL, commit per transaction)",
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _pauses(folder: Path, warmup: int, measured: int, snapshot_every: int, sync: bool) -> dict:
    """Worst pauses of the online path over a stream that crosses periodic snapshots."""
    import inspect

    import numpy as np

    import amlscore.features
    import amlscore.features.online as online
    from amlscore.contract import load_dataset
    from amlscore.features.events import transaction_records
    from amlscore.features.online import OnlineFeatureState

    dataset = load_dataset(folder, require_reports=False)
    txns = dataset.transactions.iloc[: warmup + measured]
    if len(txns) < warmup + measured:
        raise SystemExit(f"{folder} has only {len(txns):,} transactions; lower --pause-warmup/--pause-measured")
    kwargs = {}
    if "background_snapshots" in inspect.signature(OnlineFeatureState).parameters:
        kwargs["background_snapshots"] = not sync
    elif sync:
        raise SystemExit("this version of features has no background snapshots")
    with tempfile.TemporaryDirectory() as tmp:
        state = OnlineFeatureState(dataset.customers, store=Path(tmp) / "state.sqlite", snapshot_every=snapshot_every,
                                   **kwargs)
        stream = transaction_records(txns)  # lazily: a list of 200k records would weigh ~200 MB
        for _, r in zip(range(warmup), stream):
            state.update_vector(r)
        gc.collect()
        gc.freeze()  # as the service does after start-up (and every 5,000 decisions, below)
        wall, cpu = np.empty(measured), np.empty(measured)
        rss = [(state.processed, _rss_mib())]
        cpu0, children0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        for i, r in enumerate(stream):
            t0, c0 = time.perf_counter(), time.thread_time()
            state.update_vector(r)
            wall[i], cpu[i] = time.perf_counter() - t0, time.thread_time() - c0
            if i % 1000 == 999:
                rss.append((state.processed, _rss_mib()))
            if i % 5000 == 4999:
                gc.freeze()
        process_cpu = time.process_time() - cpu0
        t0 = time.perf_counter()
        state.close()  # waits for a running snapshot child, then writes the final snapshot
        close_s = time.perf_counter() - t0
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        snap = Path(tmp) / "state.sqlite.snapshot"
        snapshot_mb = (snap.stat().st_size if snap.exists() else 0) / 1e6
    first = warmup + 1
    seqs = np.arange(first, first + measured)
    # every _SWEEP_EVERY transactions the state sweeps idle identifier windows (a pause of its own)
    sweep_every = getattr(online, "_SWEEP_EVERY", 0)
    sweeps = (seqs % sweep_every == 0) if sweep_every else np.zeros(measured, dtype=bool)

    def label(seq: int) -> str:
        tags = [t for t, every in (("snapshot", snapshot_every), ("sweep", sweep_every)) if every and seq % every == 0]
        return "+".join(tags) or "-"

    def stats(x: np.ndarray) -> dict:
        return {"max": ms(x.max()), "p99_9": ms(np.percentile(x, 99.9)), "p99": ms(np.percentile(x, 99)),
                "p50": ms(np.percentile(x, 50))}

    worst = np.argsort(wall)[::-1][:8]
    steps = [(b[0], round(b[1] - a[1], 1)) for a, b in zip(rss, rss[1:])]
    steps.sort(key=lambda s: -s[1])
    ms = lambda x: round(float(x) * 1e3, 2)  # noqa: E731
    return {
        "features": str(Path(amlscore.features.__file__).parent),
        "snapshots": "synchronous" if sync or not kwargs else "background (fork)",
        "snapshot_every": snapshot_every, "measured_seq": [first, warmup + measured],
        "wall_ms": stats(wall), "cpu_ms": stats(cpu),
        "wall_ms_without_sweeps": stats(wall[~sweeps]), "cpu_ms_without_sweeps": stats(cpu[~sweeps]),
        "calls_over_10ms": int((wall > 0.010).sum()),
        "worst_calls": [{"seq": int(seqs[i]), "what": label(int(seqs[i])), "wall_ms": ms(wall[i]), "cpu_ms": ms(cpu[i])}
                        for i in worst],
        "snapshot_calls": [{"seq": int(seqs[i]), "wall_ms": ms(wall[i]), "cpu_ms": ms(cpu[i])}
                           for i in np.flatnonzero(seqs % snapshot_every == 0)] if snapshot_every else [],
        "process_cpu_s": round(process_cpu, 2), "children_cpu_s": round(
            children.ru_utime + children.ru_stime - children0.ru_utime - children0.ru_stime, 2),
        "children_max_rss_mib": round(children.ru_maxrss / 1024, 1),  # shared pages included
        "rss_mib": [round(rss[0][1], 1), round(rss[-1][1], 1)], "largest_rss_steps_per_1000": steps[:3],
        "close_s": round(close_s, 2), "snapshot_file_mb": round(snapshot_mb, 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def _deep_size(roots: list, seen: set[int]) -> int:
    """Bytes of the objects reachable from ``roots`` (containers, ``__slots__`` objects, arrays), each
    counted once across calls sharing ``seen``."""
    import sys as _sys
    from collections import deque

    import numpy as np

    total, stack = 0, list(roots)
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        total += _sys.getsizeof(o)  # an array that owns its data includes it
        if isinstance(o, dict):
            stack.extend(o.keys())
            stack.extend(o.values())
        elif isinstance(o, (list, tuple, set, frozenset, deque)):
            stack.extend(o)
        elif isinstance(o, np.ndarray):
            if o.base is not None:
                stack.append(o.base)
        elif hasattr(type(o), "__slots__"):
            stack.extend(getattr(o, name) for name in type(o).__slots__ if hasattr(o, name))
    return total


def _footprint(state) -> dict[str, tuple[int, int]]:
    """(entries, bytes) of each structure of an online state."""
    seen: set[int] = set()
    customers = list(state._customers.values())
    out = {
        "customer event buffers": (sum(c.n - c.head for c in customers),
                                   _deep_size([[c.ts, c.amount, c.is_in, c.cum, c.sq_in, c.sq_out] for c in customers],
                                              seen)),
        "fan-in/out windows": (sum(len(w.events) for c in customers for w in c.fans.values()),
                               _deep_size([c.fans for c in customers], seen)),
        "seen counterparties": (sum(len(c.seen_cps) for c in customers),
                                _deep_size([c.seen_cps for c in customers], seen)),
        "customer objects": (len(customers), _deep_size([state._customers], seen)),
    }
    for (field, w), table in state._entities.tables.items():
        out[f"{field} {w} windows"] = (len(table), _deep_size([table], seen))
    comp = state._idcomp.arrays
    out["id components: customer and identifier slots"] = (
        state._idcomp.next_identifier, comp.cust_ring.nbytes + comp.id_ring[: state._idcomp.next_identifier].nbytes)
    out["id components: identifier numbers"] = (len(state._idcomp.identifiers), _deep_size([state._idcomp.identifiers], seen))
    out["peer-group days"] = (sum(len(d) for d in state._peers.days.values()), _deep_size([state._peers.days], seen))
    out["caches (static, peer)"] = (len(state._peers.static) + len(state._peers.cache),
                                    _deep_size([state._peers.static, state._peers.cache], seen))
    return out


def _growth(folder: Path, start: int, every: int) -> dict:
    """What each structure of the online state gains per 10,000 transactions once the windows are full."""
    import pandas as pd

    from amlscore.contract import load_dataset
    from amlscore.features.events import transaction_records
    from amlscore.features.online import OnlineFeatureState

    dataset = load_dataset(folder, require_reports=False)
    txns = dataset.transactions
    ts = pd.to_datetime(txns["timestamp"], utc=True)
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        state = OnlineFeatureState(dataset.customers, store=Path(tmp) / "state.sqlite", snapshot_every=0)
        for i, r in enumerate(transaction_records(txns), start=1):
            state.update_vector(r)
            if i >= start and (i - start) % every == 0:
                gc.collect()
                points.append((i, ts.iloc[i - 1], _footprint(state), _rss_mib()))
        state.store.close()
    (n0, t0, f0, r0), (n1, t1, f1, r1) = points[0], points[-1]
    per = 10_000 / (n1 - n0)
    rows = {k: {"entries_at_start": f0[k][0], "entries_at_end": f1[k][0], "mib_at_end": round(f1[k][1] / 2**20, 2),
                "entries_per_10k": round((f1[k][0] - f0[k][0]) * per),
                "kib_per_10k": round((f1[k][1] - f0[k][1]) * per / 1024, 1)} for k in f0}
    return {"transactions": [n0, n1], "days": [str(t0.date()), str(t1.date())],
            "first_day": str(ts.iloc[0].date()), "structures": rows,
            "state_kib_per_10k": round(sum(f1[k][1] - f0[k][1] for k in f0) * per / 1024, 1),
            "rss_mib": [round(r0, 1), round(r1, 1)],
            "seen_counterparties_per_10k_by_interval": [
                round((b[2]["seen counterparties"][0] - a[2]["seen counterparties"][0]) * 10_000 / (b[0] - a[0]))
                for a, b in zip(points, points[1:])]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--offline-child":
        offline_child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "default", help="default data set (generated if missing)")
    parser.add_argument("--big-customers", type=int, default=0, help="also measure a big history (20000 gives ~5M transactions)")
    parser.add_argument("--big-days", type=int, default=365)
    parser.add_argument("--warmup", type=int, default=100_000)
    parser.add_argument("--measured", type=int, default=20_000)
    parser.add_argument("--skip-offline", action="store_true", help="only the online latency (and --big-customers)")
    parser.add_argument("--skip-online", action="store_true")
    parser.add_argument("--pauses", action="store_true",
                        help="worst pauses of the online path across periodic snapshots")
    parser.add_argument("--pause-warmup", type=int, default=100_000)
    parser.add_argument("--pause-measured", type=int, default=110_000)
    parser.add_argument("--pause-snapshot-every", type=int, default=47_000,
                        help="not a multiple of the 10,000 between sweeps, so the two pauses can be told apart")
    parser.add_argument("--sync-snapshots", action="store_true", help="with --pauses: the synchronous fallback")
    parser.add_argument("--growth", action="store_true", help="what the online state gains per 10,000 transactions")
    parser.add_argument("--growth-from", type=int, default=200_000, help="first measurement (windows full by then)")
    parser.add_argument("--growth-every", type=int, default=40_000)
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    _generate(args.data, 2000, 365, 42)
    if not args.skip_offline:
        print("offline, default data set:", json.dumps(_offline(args.data)))
    if not args.skip_online:
        print("online, per transaction:", json.dumps(_online(args.data, args.warmup, args.measured)))
    if args.pauses:
        print("online, worst pauses:")
        for key, value in _pauses(args.data, args.pause_warmup, args.pause_measured, args.pause_snapshot_every,
                                  args.sync_snapshots).items():
            print(f"  {key}: {json.dumps(value)}")
    if args.growth:
        print("online state, growth once the windows are full:")
        for key, value in _growth(args.data, args.growth_from, args.growth_every).items():
            if key == "structures":
                for name, row in value.items():
                    print(f"  {name}: {json.dumps(row)}")
            else:
                print(f"  {key}: {json.dumps(value)}")
    if args.big_customers:
        big = ROOT / "data" / f"bench_{args.big_customers}x{args.big_days}"
        t0 = time.perf_counter()
        _generate(big, args.big_customers, args.big_days, 7)
        print(f"generated {big} in {time.perf_counter() - t0:.0f} s")
        print("offline, big history:", json.dumps(_offline(big)))


if __name__ == "__main__":
    main()
