"""Benchmark the Spark engine beside the local engine on a ~5M-transaction history (issue #18, item 5).

Usage::

    .venv/bin/python benchmarks/bench_spark.py                          # 20,000 customers x 365 days (~5M rows)
    .venv/bin/python benchmarks/bench_spark.py --data DIR --master 'local[2]'

Each engine runs in a fresh child process, from the same data folder (loaded and checked by the contract
loader first, not timed) to a Parquet output: the local engine's ``write_features`` (one file), the Spark
engine's ``write_features_spark`` (a folder; Spark local mode, JVM start-up included). A sampler
thread adds up the CPU time and the resident memory of the child and of every process under it (the
JVM, Spark's Python workers) twice a second, so the CPU figure covers the whole engine; the
peak memory is the highest sum seen. Then every value of both outputs is compared (all rows, every
column, aligned by ``txn_id``): identical or not, and how many differ.

Throughput per core: rows per second of wall time divided by the cores the engine used (the local
engine runs on one core, Spark on the master's), and rows per CPU second (the steadier figure on a
shared machine). Figures go into the README by hand, with the date, the machine and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class _TreeSampler:
    """CPU seconds and peak RSS of a process and its descendants, sampled in a thread."""

    def __init__(self, interval: float = 0.5) -> None:
        import psutil  # noqa: PLC0415

        self._psutil = psutil
        self._root = psutil.Process()
        self._cpu: dict[int, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _sample(self) -> None:
        rss = 0
        for proc in [self._root, *self._root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                self._cpu[proc.pid] = max(self._cpu.get(proc.pid, 0.0), times.user + times.system)
                rss += proc.memory_info().rss
            except self._psutil.Error:
                continue
        self.peak_rss = max(self.peak_rss, rss)

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def __enter__(self) -> _TreeSampler:
        self._sample()
        self._start = dict(self._cpu)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._sample()
        self._stop.set()
        self._thread.join()

    @property
    def cpu_seconds(self) -> float:
        return sum(v - self._start.get(pid, 0.0) for pid, v in self._cpu.items())


def engine_child(engine: str, folder: str, out: str, master: str) -> None:
    """Runs in a child: load the folder, then compute and write the features with one engine; JSON out."""
    from amlscore.contract import load_dataset
    from amlscore.features.params import load_feature_params

    t0 = time.perf_counter()
    dataset = load_dataset(folder, require_reports=False)
    load_s = time.perf_counter() - t0
    params = load_feature_params()
    n = len(dataset.transactions)
    with _TreeSampler() as sampler:
        start = time.perf_counter()
        if engine == "local":
            from amlscore.features.offline import write_features

            write_features(dataset, out, params, chunk_rows=500_000)
            cores = 1
        else:
            from amlscore.features.spark import spark_session, write_features_spark

            spark = spark_session(master, app_name="bench-spark", conf={
                "spark.ui.enabled": "false", "spark.driver.memory": "8g",
                "spark.sql.shuffle.partitions": str(4 * (os.cpu_count() or 2))})
            spark.sparkContext.setLogLevel("ERROR")
            started = time.perf_counter() - start
            write_features_spark(spark, dataset, out, params)
            spark.stop()
            match = re.fullmatch(r"local\[(\d+|\*)\]", master)
            cores = (os.cpu_count() or 1) if match is None or match.group(1) == "*" else int(match.group(1))
        wall = time.perf_counter() - start
    figures = {"engine": engine, "transactions": n, "load_s": round(load_s, 1), "wall_s": round(wall, 1),
               "tx_per_s": round(n / wall), "cores": cores, "tx_per_s_per_core": round(n / wall / cores),
               "cpu_s": round(sampler.cpu_seconds, 1), "tx_per_cpu_s": round(n / max(sampler.cpu_seconds, 1e-9)),
               "peak_rss_gb_tree": round(sampler.peak_rss / 2**30, 2), "load_avg_1m": round(os.getloadavg()[0], 2)}
    if engine == "spark":
        figures["session_start_s"] = round(started, 1)
    print(json.dumps(figures))


def compare(local: Path, spark: Path) -> dict:
    """Every value of the two outputs, aligned by txn_id: identical or not, per column."""
    import numpy as np
    import pyarrow.parquet as pq

    from amlscore.features.catalogue import FEATURE_NAMES

    local_file, spark_folder = pq.ParquetFile(local), pq.ParquetDataset(spark)
    local_ids = local_file.read(columns=["txn_id"]).column(0).to_numpy(zero_copy_only=False).astype(str)
    spark_ids = spark_folder.read(columns=["txn_id"]).column(0).to_numpy(zero_copy_only=False).astype(str)
    if len(local_ids) != len(spark_ids):
        return {"identical": False, "rows": [len(local_ids), len(spark_ids)]}
    lo, so = np.argsort(local_ids, kind="stable"), np.argsort(spark_ids, kind="stable")
    if not (local_ids[lo] == spark_ids[so]).all():
        return {"identical": False, "reason": "different txn_id sets"}
    differing: dict[str, int] = {}
    for name in ("customer_id", "timestamp", *FEATURE_NAMES):
        a = local_file.read(columns=[name]).column(0).to_numpy(zero_copy_only=False)[lo]
        b = spark_folder.read(columns=[name]).column(0).to_numpy(zero_copy_only=False)[so]
        if name == "timestamp":
            a, b = a.astype("datetime64[us]").astype(np.int64), b.astype("datetime64[us]").astype(np.int64)
        if a.dtype.kind == "f":
            same = (a == b) | (np.isnan(a) & np.isnan(b))
        else:
            same = a.astype(str) == b.astype(str) if a.dtype.kind == "O" else a == b
        if not same.all():
            differing[name] = int((~same).sum())
    return {"identical": not differing, "rows": len(local_ids), "columns_compared": 2 + len(FEATURE_NAMES),
            "differing": differing}


def _run_child(engine: str, folder: Path, out: Path, master: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", engine, str(folder), str(out), master],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{engine} engine failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        engine_child(*sys.argv[2:6])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, help="data folder (default: generated, 20,000 customers x 365 days)")
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2]: this machine's cores)")
    parser.add_argument("--work", type=Path, help="folder for the outputs (default: a temporary folder)")
    args = parser.parse_args()

    folder = args.data or ROOT / "data" / f"bench_{args.customers}x{args.days}"
    if not (folder / "transactions.parquet").exists():
        subprocess.run([sys.executable, "-m", "amlscore.cli", "generate", "--out", str(folder), "--customers",
                        str(args.customers), "--days", str(args.days), "--seed", "7"], check=True, cwd=ROOT)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; data {folder}")
    with tempfile.TemporaryDirectory(dir=args.work) as tmp:
        local_out, spark_out = Path(tmp) / "local.parquet", Path(tmp) / "spark"
        for engine, out in (("local", local_out), ("spark", spark_out)):
            print(f"{engine}:", json.dumps(_run_child(engine, folder, out, args.master)), flush=True)
        t0 = time.perf_counter()
        result = compare(local_out, spark_out)
        print(f"values ({time.perf_counter() - t0:.0f} s to compare):", json.dumps(result))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
