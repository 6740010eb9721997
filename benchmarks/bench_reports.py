"""Benchmark case-report generation (issue 7: "under 5 seconds for any alert of the default run").

Usage::

    .venv/bin/python benchmarks/bench_reports.py                       # data/default, champion, 6 alerts
    .venv/bin/python benchmarks/bench_reports.py --alerts 10 --lang zh
    .venv/bin/python benchmarks/bench_reports.py --no-model            # before a model set is trained
    .venv/bin/python benchmarks/bench_reports.py --after-registry-change   # also one command that asks MLflow

What the officer runs is one command per alert, ``amlscore report case --txn TXN_ID --out case.html``
(``--alert REQUEST_ID`` for a decision of the service's audit log): the target is that command's
wall-clock time in a fresh process. The benchmark

1. opens the data set's case store and the model set's caches, building what is missing first
   (timed apart: ``amlscore demo`` builds both, see docs/reports.md);
2. lists the alerts (the champion's batch alerts, or the audit log's with ``--audit``) and picks
   ``--alerts`` of them spread over the list, highest to lowest score;
3. **fresh process**: runs the command (the ``amlscore`` console script of this interpreter) once per
   picked alert, one after the other: the first run is the *cold* one (nothing of the command
   imported or read yet in this benchmark), the others *warm* (the operating system's file cache
   holds the libraries and the store); wall-clock and CPU time (user + system) of each, then the
   median (p50) and maximum;
4. **in process**: the same reports through ``reports.write_case_report`` with the store and model
   opened once (what a notebook or a script producing many reports pays per report).

``--after-registry-change`` adds one command after removing the remembered registry resolution
(``<state>/models/aml-model-set.resolved.json``), as after a training run or a promotion: that
command starts MLflow once to resolve the alias. The machine is busy if the CPU time is well below
the wall time. Figures go into docs/reports.md by hand, with the date and the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _command() -> list[str]:
    script = Path(sys.executable).with_name("amlscore")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "amlscore.cli"]


def _summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: -"
    return f"{label}: p50 {statistics.median(values):.2f} s, max {max(values):.2f} s (n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT / "data" / "default")
    parser.add_argument("--alerts", type=int, default=6, help="How many alerts to time.")
    parser.add_argument("--lang", default="en", choices=("en", "zh"))
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--audit", type=Path, default=None, help="Time alerts of this audit log (by request id).")
    parser.add_argument("--no-model", action="store_true", help="Rule score only.")
    parser.add_argument("--no-cli", action="store_true", help="Skip the fresh-process commands.")
    parser.add_argument("--no-in-process", action="store_true", help="Skip the in-process reports.")
    parser.add_argument("--after-registry-change", action="store_true",
                        help="Also time one command after forgetting the registry resolution (MLflow starts once).")
    args = parser.parse_args()

    from amlscore.reports import write_case_report
    from amlscore.reports.alerts import list_alerts
    from amlscore.reports.model_cache import explain_path, prepare_model
    from amlscore.reports.sources import RESOLVED_SUFFIX, default_state_dir, load_registered_model, open_audit
    from amlscore.reports.store import CaseStore

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, Python {platform.python_version()}; data {args.data}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set: every command compiles the project's modules again")
    t = time.perf_counter()
    store = CaseStore.open(args.data)
    print(f"case store: {time.perf_counter() - t:6.2f} s ({store.meta['transactions']:,} transactions; "
          f"built once per data set in {store.meta.get('build_seconds', '?')} s)")
    model = None
    if not args.no_model:
        t = time.perf_counter()
        model = load_registered_model(alias=args.alias, tracking_uri=args.tracking_uri)
        print(f"model set: {time.perf_counter() - t:6.2f} s to open (aml-model-set v{model.version} @{args.alias})")
        if not explain_path(store, model).is_file():
            t = time.perf_counter()
            done = prepare_model(store, model)
            print(f"model caches: built in {time.perf_counter() - t:6.1f} s ({done['alerts']:,} alerts; once per model "
                  "and data set, as `amlscore report prepare --alias` and `amlscore demo` do)")
    audit = open_audit(args.audit) if args.audit else None
    t = time.perf_counter()
    alerts = list_alerts(store, model=model, audit=audit, limit=None)
    print(f"alerts: {len(alerts):,} listed in {time.perf_counter() - t:6.2f} s "
          f"({'audit log' if audit else 'batch scores, cached per model' if model else 'rules only'})")
    if not len(alerts):
        sys.exit("no alert to report on")
    k = min(args.alerts, len(alerts))
    picks = sorted({round(i * (len(alerts) - 1) / max(k - 1, 1)) for i in range(k)})

    def which(a) -> list[str]:  # noqa: ANN001
        if audit is not None:
            return ["--alert", str(a["request_id"]), "--audit", str(args.audit)]
        return ["--txn", str(a["txn_id"])]

    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_cli:
            base = [*_command(), "report", "case", "--data", str(args.data), "--lang", args.lang]
            if args.no_model:
                base.append("--no-model")
            else:
                base += ["--alias", args.alias] + (["--tracking-uri", args.tracking_uri] if args.tracking_uri else [])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)}

            def run(a, out: Path) -> tuple[float, float]:  # noqa: ANN001
                cpu0, t0 = _children_cpu(), time.perf_counter()
                done = subprocess.run([*base, *which(a), "--out", str(out)], cwd=ROOT, capture_output=True, text=True, env=env)
                wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
                if done.returncode != 0:
                    print(done.stderr[-2000:])
                    sys.exit(f"the command failed (exit {done.returncode})")
                return wall, cpu

            print("fresh process, one `amlscore report case` per alert:")
            walls, cpus = [], []
            for n, i in enumerate(picks):
                a = alerts.iloc[i]
                wall, cpu = run(a, Path(tmp) / f"cli_{n}.html")
                walls.append(wall)
                cpus.append(cpu)
                print(f"  {'cold' if n == 0 else 'warm'} {n + 1}: txn {a['txn_id']} customer {a['customer_id']} "
                      f"score {a['suspicion_score']:5.1f} -> {wall:5.2f} s wall, {cpu:5.2f} s CPU")
            print(f"  cold (first command): {walls[0]:.2f} s wall, {cpus[0]:.2f} s CPU")
            print("  " + _summary("warm wall", walls[1:]) + "; " + _summary("CPU", cpus[1:]))
            print("  " + _summary("all commands, wall", walls) + "; " + _summary("CPU", cpus))
            if args.after_registry_change and model is not None:
                book = default_state_dir() / "models" / f"{model.name}{RESOLVED_SUFFIX}"
                book.unlink(missing_ok=True)
                wall, cpu = run(alerts.iloc[picks[0]], Path(tmp) / "cli_registry.html")
                print(f"  after a registry change (alias resolved by MLflow once): {wall:.2f} s wall, {cpu:.2f} s CPU")

        if not args.no_in_process:
            print("in process, store and model opened once:")
            seconds = []
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
            print("  " + _summary("in process", seconds) + " (the first pays the chart library's import)")
            if model is not None and getattr(model.model_set, "is_loaded", False):
                print("  note: the model set was loaded (an explanation was missing from the store)")


if __name__ == "__main__":
    main()
