"""Ingest benchmark: usage events through the real stack, against the ceiling of the machine.

    .venv/bin/python bench/ingest_bench.py [--duration 15] [--workers 4] [--connections 8]

1. Creates a PostgreSQL database `creditline_bench_<pid>`, migrates it, seeds a tenant with a
   billion bought credits and the example rate card (bench/ingest_seed.py).
2. Starts gunicorn (config.wsgi, DEBUG off, settings bench.ingest_settings) on 127.0.0.1.
3. From a separate process (wrk, bench/ingest.lua) with 8 connections on loopback, drives in
   turn, each for `--duration` seconds after a short warm-up:
   (a) single events: POST /api/v1/usage-events, a unique key each;
   (b) batches: POST /api/v1/usage-events/batch with 1,000 unique events each;
   (c) the ceiling: POST /bench/ceiling, a bare DRF view (same auth, JSON) doing one raw-SQL
       debit (UPDATE one hot balance row ... RETURNING), mounted only by the bench settings.
4. Prints events/s, p50 and p99 of each, and single / ceiling; stops gunicorn, drops the
   database. Every step is bounded in time.
"""

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = "postgres://postgres@127.0.0.1:5432"
TARGET_RATIO = 0.60
TARGET_P99_MS = 50.0
TARGET_BATCH_EPS = 20_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def psql(sql: str) -> None:
    subprocess.run(
        ["psql", f"{PG}/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],
        check=True,
        timeout=60,
        capture_output=True,
    )


def run_wrk(mode: str, key: str, prefix: str, port: int, duration: int, conns: int) -> dict:
    cmd = [
        "wrk",
        "-t",
        "2",
        "-c",
        str(conns),
        "-d",
        f"{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(ROOT / "bench" / "ingest.lua"),
        f"http://127.0.0.1:{port}",
        "--",
        mode,
        key,
        prefix,
    ]
    out = subprocess.run(cmd, check=True, timeout=duration + 60, capture_output=True, text=True)
    match = re.search(r"RESULT (.*)", out.stdout)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")
    result = {k: int(v) for k, v in (pair.split("=") for pair in match.group(1).split())}
    return result


def summarize(name: str, r: dict, per_request: int) -> dict:
    seconds = r["duration_us"] / 1e6
    eps = r["requests"] * per_request / seconds
    row = {
        "name": name,
        "requests": r["requests"],
        "events_per_s": eps,
        "p50_ms": r["p50_us"] / 1000,
        "p99_ms": r["p99_us"] / 1000,
        "errors": r["errors_status"] + r["errors_other"],
    }
    print(
        f"{name:<28} {eps:>10,.0f} events/s   p50 {row['p50_ms']:7.1f} ms   "
        f"p99 {row['p99_ms']:7.1f} ms   requests {r['requests']:>7}   errors {row['errors']}",
        flush=True,
    )
    return row


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

    db = f"creditline_bench_{os.getpid()}"
    env = {
        **os.environ,
        "DATABASE_URL": f"{PG}/{db}",
        "DJANGO_SETTINGS_MODULE": "bench.ingest_settings",
        "PYTHONPATH": str(ROOT),
    }
    python = str(ROOT / ".venv" / "bin" / "python")
    port = free_port()
    server = None
    psql(f"CREATE DATABASE {db}")
    try:
        subprocess.run(
            [python, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300
        )
        seeded = subprocess.run(
            [python, "bench/ingest_seed.py"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
            capture_output=True,
            text=True,
        )
        key = seeded.stdout.strip().splitlines()[-1]
        if args.profile:
            subprocess.run(
                [python, "bench/ingest_profile.py", key], cwd=ROOT, env=env, check=True, timeout=600
            )
            return 0
        server = subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                str(args.workers),
                "--worker-class",
                "sync",
                "--no-control-socket",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("gunicorn did not come up") from None
                time.sleep(0.3)

        print(
            f"gunicorn {args.workers} sync workers on 127.0.0.1:{port}; wrk 2 threads, "
            f"{args.connections} connections, {args.duration} s each; "
            f"{os.cpu_count()} CPUs",
            flush=True,
        )
        rows = {}
        for mode, per_request, label in (
            ("single", 1, "single events"),
            ("batch", 1000, "batches of 1,000"),
            ("ceiling", 1, "ceiling (raw-SQL debit)"),
        ):
            run_wrk(mode, key, f"w{mode}", port, args.warmup, args.connections)
            result = run_wrk(mode, key, f"m{mode}", port, args.duration, args.connections)
            rows[mode] = summarize(label, result, per_request)

        ratio = rows["single"]["events_per_s"] / rows["ceiling"]["events_per_s"]
        print(f"single / ceiling             {ratio:10.1%}  (target >= {TARGET_RATIO:.0%})")
        checks = [
            ("single >= 60% of ceiling", ratio >= TARGET_RATIO),
            (f"single p99 < {TARGET_P99_MS:.0f} ms", rows["single"]["p99_ms"] < TARGET_P99_MS),
            (
                f"batches >= {TARGET_BATCH_EPS:,} events/s",
                rows["batch"]["events_per_s"] >= TARGET_BATCH_EPS,
            ),
            ("no errors", all(r["errors"] == 0 for r in rows.values())),
        ]
        for name, ok in checks:
            print(f"  {'PASS' if ok else 'MISS'}  {name}")
        return 0
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=5)
        if args.keep:
            print(f"kept database {db}")
        else:
            psql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


if __name__ == "__main__":
    sys.exit(main())
