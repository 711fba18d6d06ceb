"""Ingest benchmark: usage events through the real stack, against the ceilings of the machine.

    .venv/bin/python bench/ingest_bench.py [--duration 15] [--workers 4] [--connections 8]
    .venv/bin/python bench/ingest_bench.py --profile   # cProfile + the SQL of one request

1. Creates a PostgreSQL database `creditline_bench_<pid>`, migrates it, seeds a tenant with a
   billion bought credits and the example rate card (bench/seed.py).
2. Starts gunicorn (config.wsgi, DEBUG off, settings bench.ingest_settings) on 127.0.0.1.
3. From a separate process (wrk, bench/ingest.lua) with 8 connections on loopback, drives in
   turn, each for `--duration` seconds after a short warm-up: single events (a unique key
   each), batches of 1,000, the bare-debit ceiling and the raw-batch ceiling
   (bench/ingest_urls.py).
4. Prints events/s, p50 and p99 of each and the ratios; stops gunicorn, drops the database.
   Every step is bounded in time. bench/run.py measures the same in 3 rounds, with the rest
   of issue 9's table.
"""

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (
    PYTHON,
    ROOT,
    Wrk,
    WrkResult,
    bench_database,
    bench_env,
    gunicorn,
    psql,
)

TARGET_RATIO = 0.60
TARGET_BATCH_RATIO = 0.25
TARGET_P99_MS = 50.0

PHASES = (
    ("single", 1, "single events"),
    ("batch", 1000, "batches of 1,000"),
    ("ceiling", 1, "bare debit (ceiling)"),
    ("rawbatch", 1000, "raw batch (ceiling)"),
)


def summarize(name: str, r: WrkResult, per_request: int) -> float:
    eps = r.per_second(per_request)
    print(
        f"{name:<24} {eps:>10,.0f} events/s   p50 {r.p50_ms:7.1f} ms   "
        f"p99 {r.p99_ms:7.1f} ms   requests {r.requests:>7}   errors {r.errors}",
        flush=True,
    )
    return eps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile in-process requests instead of wrk"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk).", file=sys.stderr)
        return 2

    with bench_database(keep=args.keep) as db:
        env = bench_env(db)

        def run(*argv: str, timeout: int) -> str:
            done = subprocess.run(
                [PYTHON, *argv], cwd=ROOT, env=env, check=True, timeout=timeout,
                capture_output=True, text=True,
            )  # fmt: skip
            return done.stdout

        run("manage.py", "migrate", "-v", "0", timeout=300)
        key = run("bench/ingest_seed.py", timeout=120).strip().splitlines()[-1]
        if args.profile:
            print(run("bench/ingest_profile.py", key, timeout=600))
            return 0
        with gunicorn(env, workers=args.workers) as port:
            print(
                f"gunicorn {args.workers} sync workers on 127.0.0.1:{port}; wrk 2 threads, "
                f"{args.connections} connections, {args.duration} s each; {os.cpu_count()} CPUs",
                flush=True,
            )
            wrk = Wrk(port=port, key=key, connections=args.connections, workers=args.workers)
            eps, results = {}, []
            for mode, per_request, label in PHASES:
                wrk.run(mode, prefix=f"w{mode}", duration=args.warmup)
                psql("ANALYZE", db)  # as autovacuum would (see bench/harnesses.py)
                result = wrk.run(mode, prefix=f"m{mode}", duration=args.duration)
                eps[mode] = summarize(label, result, per_request)
                results.append(result)

    single = eps["single"] / eps["ceiling"]
    batch = eps["batch"] / eps["rawbatch"]
    print(f"single / bare debit {single:10.1%}   batch / raw batch {batch:10.1%}")
    checks = [
        (f"single >= {TARGET_RATIO:.0%} of the bare debit", single >= TARGET_RATIO),
        (f"batch >= {TARGET_BATCH_RATIO:.0%} of the raw batch", batch >= TARGET_BATCH_RATIO),
        (f"single p99 < {TARGET_P99_MS:.0f} ms", results[0].p99_ms < TARGET_P99_MS),
        ("no errors", all(r.errors == 0 for r in results)),
    ]
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
