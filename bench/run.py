"""Issue 9's target table, measured in one run.

    .venv/bin/python bench/run.py [--quick] [--keep]

Creates `creditline_bench_<pid>` on the local PostgreSQL (127.0.0.1:5432, user postgres),
migrates and seeds it (ANALYZE after every seed), then runs each harness of bench/harnesses.py
for 3 rounds, each ratio the median of its rounds, and prints the table with the load average
at the start and the end. Drops the database at the end, also on Ctrl-C and SIGTERM. Load
only on loopback, every phase bounded in time and count. `--quick`: a smoke run of every
harness (seconds per phase, small counts; the ratios are only indicative).
"""

import argparse
import os
import shutil
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import Row, Wrk, bench_env, format_table, gunicorn, loadavg
from bench.harnesses import (
    FULL,
    QUICK,
    Config,
    django_bench_database,
    growth_rounds,
    hot_tenant_rounds,
    http_rounds,
    sweep_rounds,
)


def at_least(target: float) -> Callable[[float], bool]:
    return lambda value: value >= target


def at_most(target: float) -> Callable[[float], bool]:
    return lambda value: value <= target


def report(line: str) -> None:
    print(f"  {line}", flush=True)


def http_rows(env: dict[str, str], key: str, cfg: Config) -> list[Row]:
    with gunicorn(env, workers=cfg.workers) as port:
        rounds = http_rounds(
            Wrk(port=port, key=key, connections=cfg.connections, workers=cfg.workers), cfg, report
        )
    errors = sum(
        r.errors for rnd in rounds for r in (rnd.single, rnd.ceiling, rnd.replay, rnd.batch)
    )
    new_on_replay = sum(rnd.replay.created for rnd in rounds)
    single = tuple(r.single.per_second() / r.ceiling.per_second() for r in rounds)
    batch = tuple(r.batch.per_second(1000) / r.raw_batch.per_second(1000) for r in rounds)
    replay = tuple(r.replay.per_second() / r.single.per_second() for r in rounds)
    note = f"{errors} errors" if errors else ""
    return [
        Row("single events/s ÷ bare-debit req/s", single, "≥ 0.60", at_least(0.60), note=note),
        Row("batch events/s ÷ raw-batch rows/s", batch, "≥ 0.25", at_least(0.25), note=note),
        Row(
            "replayed key ÷ new event (events/s)",
            replay,
            "≥ 1.9",
            at_least(1.9),
            note=f"{new_on_replay} new keys in replay rounds" if new_on_replay else note,
        ),
    ]


def hot_rows(db: str, cfg: Config) -> list[Row]:
    rounds = hot_tenant_rounds(db, cfg, report)
    ratios = tuple(debits / row for debits, row in rounds)
    return [
        Row(
            f"hot tenant: `ledger_debit` from {cfg.processes} processes ÷ hot-row tx/s",
            ratios,
            "≥ 0.15",
            at_least(0.15),
        )
    ]


def growth_rows(cfg: Config) -> list[Row]:
    rounds = growth_rounds(cfg, report)
    return [
        Row(
            f"CPU per {what}, {cfg.live_buckets:,} live buckets ÷ 1",
            tuple(r[i] for r in rounds),
            "≤ 1.2x",
            at_most(1.2),
            unit="x",
        )
        for i, what in enumerate(("single event", "balance read"))
    ]


def sweep_rows(cfg: Config) -> list[Row]:
    rounds = tuple(sweep_rounds(cfg, report))
    return [
        Row(
            f"expiry sweep, {cfg.sweep_due:,} due buckets over {cfg.sweep_tenants:,} tenants",
            rounds,
            "≤ 10 s quiet",
            at_most(10),
            unit="s",
            note="≥ 5x today's: against the run before the rewrite",
        )
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run of everything")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    missing = [tool for tool in ("wrk", "psql") if shutil.which(tool) is None]
    if missing:
        print(f"missing: {missing} (apt-get install wrk postgresql-client)", file=sys.stderr)
        return 2

    start_load = loadavg()
    print(
        f"issue 9 targets{' (--quick)' if args.quick else ''}: {os.cpu_count()} CPUs, "
        f"load average at start {start_load}",
        flush=True,
    )
    rows: list[Row] = []
    failed = False
    with django_bench_database(keep=args.keep) as db:
        from bench.seed import seed_ingest

        env = bench_env(db)
        key = seed_ingest()
        harnesses: list[tuple[str, Callable[[], list[Row]]]] = [
            ("HTTP against the ceilings", lambda: http_rows(env, key, cfg)),
            ("hot tenant against the hot row", lambda: hot_rows(db, cfg)),
            ("bucket growth", lambda: growth_rows(cfg)),
            ("expiry sweep", lambda: sweep_rows(cfg)),
        ]
        for name, harness in harnesses:
            print(f"{name}:", flush=True)
            try:
                rows.extend(harness())
            except Exception as error:  # one broken harness must not hide the others
                failed = True
                traceback.print_exc()
                rows.append(Row(name, (), "", note=f"failed: {error}"[:120]))

    print()
    print(format_table(rows))
    print(f"\nload average at start {start_load}, at end {loadavg()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
