"""Property-based run of the HTTP API against its OpenAPI 3.1 document, at scale (schemathesis).

Usage::

    .venv/bin/python benchmarks/bench_fuzz.py                 # 50,000 requests (both roles, every /v1/ route)
    .venv/bin/python benchmarks/bench_fuzz.py --cases 100000

The same check as ``tests/serving/test_fuzz_openapi.py`` with many more requests: a synthetic bank
(200 customers, 30 days), the real service app (gate, engine, audit log, online state) with the tests'
stand-in model set, served by uvicorn on loopback; schemathesis generates requests from ``/docs.json``
for each route with the channel and the compliance key, and every answer must be documented (status,
content type, body) and none a 5xx. Hypothesis is derandomized (a failure repeats); it stops a route
early when it has generated every distinct request it can (the bodyless routes). Prints the requests
sent per role and route, the statuses and the rate; the first failure stops the run with its reproduction.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "serving")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50_000, help="requests in all (both roles, every route)")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)  # the service logs every refused request: 50,000 lines of them

    from amlscore.synth import SynthConfig, generate_bank, write_bank
    from serving_helpers import CHANNEL, COMPLIANCE
    from test_fuzz_openapi import fuzz, served

    routes = 8
    per_route = max(1, args.cases // (2 * routes))
    with tempfile.TemporaryDirectory(prefix="bench-fuzz-") as tmp:
        data = Path(tmp) / "data"
        write_bank(generate_bank(SynthConfig(customers=200, days=30, seed=11)), data)
        state = Path(tmp) / "state"
        state.mkdir()
        statuses: dict[int, int] = {}
        sent: dict[str, int] = {}
        with served(data, state) as url:
            started = time.perf_counter()
            for role, headers in (("channel", CHANNEL), ("compliance", COMPLIANCE)):
                for route, n in fuzz(url, headers, per_route, statuses).items():
                    sent[f"{role} {route}"] = n
            elapsed = time.perf_counter() - started
    total = sum(sent.values())
    print(f"requests: {total:,} in {elapsed:.0f} s ({total / elapsed:.0f}/s), no failure")
    for key, n in sorted(sent.items()):
        print(f"  {key:<32} {n:>7,}")
    print("statuses: " + ", ".join(f"{s}: {n:,}" for s, n in sorted(statuses.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
