"""Benchmark ``amlscore import amlworld`` on a file the size of AMLworld HI-Small (issue 16).

Usage::

    .venv/bin/python benchmarks/bench_import.py                  # 5,078,345 rows, --bank all
    .venv/bin/python benchmarks/bench_import.py --rows 500000 --bank 70

Generates a file in the ``*_Trans.csv`` format (deterministic per ``--seed``: timestamps over 18
days, 515,000 accounts in 30,000 banks with AMLworld's leading zeros, its 15 currencies and 7
payment formats, 0.1 % laundering) unless ``--keep`` finds it already there, then converts it in a
fresh child process and prints rows/s (source rows over the conversion's wall time) and the child's
peak RSS. Targets: at least 200,000 rows/s and at most 4 GB. The machine is shared, so each line
also gives the CPU time (all threads, and the main thread's: parsing and converting, while Arrow's
reader threads and the writer thread encode alongside) and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from amlscore.adapters.amlworld import HEADER, PAYMENT_FORMATS  # noqa: E402
from amlscore.adapters.currency import AMLWORLD_CURRENCIES  # noqa: E402

HI_SMALL_ROWS = 5_078_345
CHUNK = 1_000_000


def generate(path: Path, rows: int, seed: int, accounts: int = 515_000, banks: int = 30_000) -> None:
    """Write ``rows`` payments in AMLworld's format (chunked: bounded memory)."""
    rng = np.random.default_rng(seed)
    account_text = pa.array([f"{0x800000000 + int(k) * 4099:09X}" for k in rng.permutation(accounts)], pa.string())
    bank_of = rng.integers(1, banks, accounts)
    zeros = rng.integers(0, 3, accounts)
    bank_text = pa.array([("0" * int(z)) + str(int(b)) for b, z in zip(bank_of, zeros)], pa.string())
    currencies = pa.array(list(AMLWORLD_CURRENCIES), pa.string())
    formats = pa.array(list(PAYMENT_FORMATS), pa.string())
    start = np.datetime64("2022-09-01T00:00", "m")
    with path.open("w", encoding="utf-8") as handle:
        handle.write(",".join(HEADER) + "\n")
    done = 0
    while done < rows:
        n = min(CHUNK, rows - done)
        payer = pa.array(rng.integers(0, accounts, n))
        payee = pa.array(rng.integers(0, accounts, n))
        minutes = np.sort(rng.integers(0, 18 * 24 * 60, n))
        stamp = pc.strftime(pa.array((start + minutes).astype("datetime64[s]")), format="%Y/%m/%d %H:%M")
        paid = np.round(rng.lognormal(7.0, 2.0, n), 2) + 0.01
        cur = pa.array(np.where(rng.random(n) < 0.7, 0, rng.integers(0, len(currencies), n)))
        fx = rng.random(n) < 0.02
        rcur = pa.array(np.where(fx, rng.integers(0, len(currencies), n), cur.to_numpy()))
        received = np.where(fx, np.round(paid * rng.uniform(0.5, 2.0, n), 2) + 0.01, paid)
        table = pa.table({
            "Timestamp": stamp, "From Bank": bank_text.take(payer), "Account": account_text.take(payer),
            "To Bank": bank_text.take(payee), "Account.1": account_text.take(payee),
            "Amount Received": pa.array(received), "Receiving Currency": currencies.take(rcur),
            "Amount Paid": pa.array(paid), "Payment Currency": currencies.take(cur),
            "Payment Format": formats.take(pa.array(rng.integers(0, len(formats), n))),
            "Is Laundering": pa.array((rng.random(n) < 0.001).astype(np.int64)),
        })
        with path.open("ab") as handle:
            pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none"))
        done += n


def convert_in_child(src: Path, out: Path, bank: str, seed: int) -> dict:
    """Run the conversion in a fresh interpreter; return its wall time, CPU time, rows and peak RSS."""
    code = (
        "import json, sys, time, resource\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from amlscore.adapters import import_data\n"
        "t0 = time.perf_counter(); c0 = time.process_time(); m0 = time.thread_time()\n"
        f"s = import_data('amlworld', {str(src)!r}, {str(out)!r}, bank={bank!r}, seed={seed})\n"
        "print(json.dumps({'wall': time.perf_counter() - t0, 'cpu': time.process_time() - c0,\n"
        "  'main_thread_cpu': time.thread_time() - m0,\n"
        "  'rows': s.source_rows, 'transactions': s.transactions, 'customers': s.customers,\n"
        "  'laundering': s.laundering_transactions, 'reports': s.reports,\n"
        "  'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=HI_SMALL_ROWS)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bank", default="all")
    ap.add_argument("--work", type=Path, default=None, help="Folder for the source file and the output (default: a temporary one).")
    ap.add_argument("--keep", action="store_true", help="Keep (and reuse) the generated source file.")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="bench-import-"))
    work.mkdir(parents=True, exist_ok=True)
    src = work / f"bench_{args.rows}_{args.seed}_Trans.csv"
    if not (args.keep and src.is_file()):
        t0 = time.perf_counter()
        generate(src, args.rows, args.seed)
        print(f"generated {args.rows:,} rows ({src.stat().st_size / 1e6:,.0f} MB) in {time.perf_counter() - t0:.1f} s")
    r = convert_in_child(src, work / "out", args.bank, args.seed)
    rate = r["rows"] / r["wall"]
    print(f"import amlworld --bank {args.bank}: {r['rows']:,} rows -> {r['transactions']:,} transactions, "
          f"{r['customers']:,} customers, {r['laundering']:,} laundering, {r['reports']:,} reports")
    print(f"  wall {r['wall']:.1f} s, CPU {r['cpu']:.1f} s (main thread {r['main_thread_cpu']:.1f} s), {rate:,.0f} rows/s (target >= 200,000), "
          f"peak RSS {r['peak_rss_mb']:,.0f} MB (target <= 4,096); load average {os.getloadavg()[0]:.2f}")
    if not args.keep:
        import shutil

        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
