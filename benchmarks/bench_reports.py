"""Benchmark case-report generation (issue 7: "under 5 seconds for any alert of the default run").

Usage::

    .venv/bin/python benchmarks/bench_reports.py                       # data/default, champion, 6 alerts
    .venv/bin/python benchmarks/bench_reports.py --alerts 10 --lang zh
    .venv/bin/python benchmarks/bench_reports.py --no-model            # before a model set is trained

It opens the data set's case store (building it first if needed, timed apart: a one-off per data
set), loads the model set once, lists the alerts (the service's audit log when ``--audit`` is
given, else the champion's batch alerts, cached) and then, for several alerts spread over the
list, times one case report each: facts, charts, narrative and HTML written to a file. Finally it
times one whole command in a fresh process (``amlscore report case --alert ...`` or ``--txn ...``),
interpreter start, imports and model loading included. Figures go into docs/reports.md by hand, with the date and
the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "default")
    parser.add_argument("--alerts", type=int, default=6, help="How many alerts to time.")
    parser.add_argument("--lang", default="en", choices=("en", "zh"))
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--audit", type=Path, default=None, help="Time alerts of this audit log (by request id).")
    parser.add_argument("--no-model", action="store_true", help="Rule score only.")
    parser.add_argument("--no-cli", action="store_true", help="Skip the fresh-process command timing.")
    args = parser.parse_args()

    from reports import write_case_report
    from reports.alerts import list_alerts
    from reports.sources import load_registered_model, open_audit
    from reports.store import CaseStore

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; data {args.data}")
    t = time.perf_counter()
    store = CaseStore.open(args.data)
    print(f"case store: {time.perf_counter() - t:6.2f} s ({store.meta['transactions']:,} transactions; "
          f"built once per data set in {store.meta.get('build_seconds', '?')} s)")
    model = None
    if not args.no_model:
        t = time.perf_counter()
        model = load_registered_model(alias=args.alias, tracking_uri=args.tracking_uri)
        print(f"model set: {time.perf_counter() - t:6.2f} s (aml-model-set v{model.version} @{args.alias})")
    audit = open_audit(args.audit) if args.audit else None
    t = time.perf_counter()
    alerts = list_alerts(store, model=model, audit=audit, limit=None)
    print(f"alerts: {len(alerts):,} listed in {time.perf_counter() - t:6.2f} s "
          f"({'audit log' if audit else 'batch scores, cached per model' if model else 'rules only'})")
    if not len(alerts):
        sys.exit("no alert to report on")
    k = min(args.alerts, len(alerts))
    picks = sorted({round(i * (len(alerts) - 1) / max(k - 1, 1)) for i in range(k)})
    seconds = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, i in enumerate(picks):
            a = alerts.iloc[i]
            out = Path(tmp) / f"case_{n}.html"
            t = time.perf_counter()
            if audit is not None:
                write_case_report(out, args.data, alert=a["request_id"], audit=audit, model=model, store=store, lang=args.lang)
            else:
                write_case_report(out, args.data, txn=a["txn_id"], model=model, store=store, lang=args.lang)
            s = time.perf_counter() - t
            seconds.append(s)
            print(f"  alert {n + 1}: txn {a['txn_id']} customer {a['customer_id']} score {a['suspicion_score']:5.1f} "
                  f"-> {s:5.2f} s ({out.stat().st_size / 1024:,.0f} KiB)")
        print(f"case report, in process: median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s "
              f"over {len(seconds)} alerts")
        if not args.no_cli:
            a = alerts.iloc[picks[0]]
            which = ["--alert", str(a["request_id"]), "--audit", str(args.audit)] if audit is not None else ["--txn", str(a["txn_id"])]
            cmd = [sys.executable, "-c", "from amlscore.commands.report import report_app; report_app()", "case", *which,
                   "--data", str(args.data), "--lang", args.lang, "--out", str(Path(tmp) / "cli.html")]
            if args.no_model:
                cmd.append("--no-model")
            else:
                cmd += ["--alias", args.alias] + (["--tracking-uri", args.tracking_uri] if args.tracking_uri else [])
            t = time.perf_counter()
            run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            s = time.perf_counter() - t
            if run.returncode != 0:
                print(run.stderr[-2000:])
            print(f"case report, whole command in a fresh process: {s:.2f} s (start-up, imports, model loading included)")


if __name__ == "__main__":
    main()
