"""Throughput of the contract loader and validator on a large generated data set.

    .venv/bin/python benchmarks/bench_validate.py --rows 5000000 [--fmt csv parquet memory]

Builds N valid transactions (and N/50 customers, N/1000 reports) with numpy, writes them in a
temporary folder, then times ``load_dataset`` (read + every rule + typing + fingerprint) per file
format and, for ``memory``, ``validate_frames`` on the raw string frames. Prints wall-clock and
CPU seconds (on a busy machine the CPU time is the steadier figure). Nothing is kept.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from amlscore.contract.load import load_dataset
from amlscore.contract.validate import validate_frames
from amlscore.contract.schema import CHANNELS, TXN_TYPES


def _text(values: np.ndarray) -> pd.Series:
    return pd.Series(values, dtype=pd.StringDtype("pyarrow"))


def make_tables(n: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Valid raw string tables with ``n`` transactions."""
    rng = np.random.default_rng(seed)
    n_cust = max(n // 50, 10)
    cust_ids = np.char.add("C", np.arange(n_cust).astype(str))
    customers = pd.DataFrame({
        "customer_id": cust_ids, "customer_type": "individual", "birth_or_incorporation_date": "1980-01-01",
        "nationality": "CN", "residence_country": "CN", "home_region": "CN-62", "occupation_or_industry": "salaried",
        "id_document_type": "resident_id", "is_pep": "false", "on_watchlist": "false", "onboarding_channel": "counter",
        "agent_id": "", "phone": "138", "emergency_contact_phone": "", "ownership_layers": "", "refused_cdd": "false",
        "is_resident": "true", "declared_annual_income": "100000", "onboarded_at": "2020-01-01",
    }).astype("string[pyarrow]")
    start = pd.Timestamp("2024-01-01", tz="UTC").value // 10**9
    seconds = np.sort(rng.integers(0, 365 * 86_400, n)) + start
    ts = pc.strftime(pa.array(seconds, pa.timestamp("s", tz="UTC")), format="%Y-%m-%dT%H:%M:%SZ").to_numpy(zero_copy_only=False)
    channel = np.asarray(CHANNELS)[rng.integers(0, len(CHANNELS), n)]
    online = np.isin(channel, ("online_banking", "mobile_banking"))
    terminal = np.isin(channel, ("pos", "atm"))
    txn_ids = np.char.add("T", np.arange(n).astype(str))
    transactions = pd.DataFrame({
        "txn_id": _text(txn_ids),
        "timestamp": _text(np.asarray(ts)),
        "customer_id": _text(cust_ids[rng.integers(0, n_cust, n)]),
        "account_id": _text(np.full(n, "ACC")),
        "direction": _text(np.where(rng.random(n) < 0.5, "in", "out")),
        "amount": _text(np.round(rng.lognormal(6, 2, n), 2).astype(str)),
        "channel": _text(channel),
        "txn_type": _text(np.asarray(TXN_TYPES)[rng.integers(0, len(TXN_TYPES), n)]),
        "counterparty_id": _text(np.full(n, "")),
        "counterparty_type": _text(np.full(n, "unknown")),
        "counterparty_country": _text(np.full(n, "CN")),
        "ip_address": _text(np.where(online, "10.0.0.1", "")),
        "ip_country": _text(np.where(online, "CN", "")),
        "ip_region": _text(np.full(n, "")),
        "device_id": _text(np.where(online, "DEV1", "")),
        "terminal_id": _text(np.where(terminal, "TERM1", "")),
        "terminal_region": _text(np.full(n, "")),
        "operator_id": _text(np.full(n, "")),
    })
    picked = rng.choice(n, size=max(n // 1000, 1), replace=False)
    reports = pd.DataFrame({
        "report_id": _text(np.char.add("R", np.arange(picked.size).astype(str))),
        "customer_id": transactions["customer_id"].to_numpy()[picked],
        "txn_id": txn_ids[picked],
        "period_start": "", "period_end": "", "report_date": "2025-06-30", "label": "suspicious", "typology": "",
    }).astype("string[pyarrow]")
    return {"customers": customers, "transactions": transactions, "reports": reports}


def write(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> None:
    for name, frame in tables.items():
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if fmt == "csv":
            pacsv.write_csv(table, folder / f"{name}.csv")
        else:
            pq.write_table(table, folder / f"{name}.parquet")


def _timed(label: str, rows: int, run: Callable[[], object]) -> None:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{label}: {wall:.1f} s wall ({cpu:.1f} s CPU), {rows / wall:,.0f} transactions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--fmt", nargs="+", choices=("csv", "parquet", "memory"), default=["csv", "parquet", "memory"])
    args = parser.parse_args()
    t0 = time.perf_counter()
    tables = make_tables(args.rows)
    print(f"generated {args.rows:,} transactions in {time.perf_counter() - t0:.1f} s")
    for fmt in args.fmt:
        if fmt == "memory":
            def check() -> None:
                report = validate_frames(tables["customers"], tables["transactions"], tables["reports"])
                assert report.ok, str(report)

            _timed("validate_frames (raw strings in memory)", args.rows, check)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            write(tables, Path(tmp), fmt)
            _timed(f"load_dataset ({fmt}: read + validate + type + fingerprint)", args.rows, lambda: load_dataset(tmp))


if __name__ == "__main__":
    main()
