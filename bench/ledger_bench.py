"""Ledger benchmark (not a test): debits/s on one hot tenant and over many tenants, and the
expiry sweep's time, through the ledger's public entry points.

    .venv/bin/python bench/ledger_bench.py [--processes 8] [--debits 4000] [--seconds 15]
                                           [--tenants 1000] [--due 100000]

Creates `creditline_bench_<pid>` on the local PostgreSQL (127.0.0.1:5432, user postgres),
migrates it, runs, and drops it (also on Ctrl-C). Balance listeners are off, so the numbers
are the ledger's alone. Debits run in `--processes` spawned processes, each with its own
connection, bounded by `--debits` and `--seconds`; each scenario runs 3 rounds, median
reported. The sweep's due buckets are seeded in SQL (bench/seed.py), checked with
`ledger_verify()` before and after. bench/run.py puts the hot tenant against the hot row.
"""

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import median
from bench.harnesses import FULL, debits_per_second, django_bench_database, sweep_rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=FULL.processes)
    parser.add_argument("--debits", type=int, default=FULL.hot_debits, help="per round, at most")
    parser.add_argument("--seconds", type=int, default=FULL.duration, help="per round, at most")
    parser.add_argument("--tenants", type=int, default=FULL.sweep_tenants)
    parser.add_argument("--due", type=int, default=FULL.sweep_due, help="due buckets per sweep")
    args = parser.parse_args()
    cfg = replace(FULL, sweep_tenants=args.tenants, sweep_due=args.due)

    with django_bench_database():
        from bench.seed import analyze, seed_tenants

        def rates(tenant_ids: list[int], tag: str) -> list[float]:
            return [
                debits_per_second(
                    tenant_ids,
                    processes=args.processes,
                    debits=args.debits,
                    seconds=args.seconds,
                    tag=f"{tag}{r}",
                )
                for r in range(3)
            ]

        hot = seed_tenants(1, prefix="hot", credits=10**9)
        spread = seed_tenants(args.tenants, prefix="spread")
        analyze()
        hot_rates = rates([t.pk for t in hot], "hot")
        spread_rates = rates([t.pk for t in spread], "spread")
        sweeps = sweep_rounds(cfg, lambda line: print(f"  {line}", flush=True))

    print(f"{args.processes} processes (own connections), 1 credit a debit; {os.cpu_count()} CPUs")
    for name, runs in (("hot tenant", hot_rates), (f"{args.tenants} tenants", spread_rates)):
        shown = ", ".join(f"{r:.0f}" for r in runs)
        print(f"{name:<14} {median(runs):8.0f} debits/s  (rounds: {shown})")
    shown = ", ".join(f"{s:.1f}" for s in sweeps)
    print(f"sweep of {args.due:,} due buckets: {median(sweeps):.1f} s (rounds: {shown})")


if __name__ == "__main__":
    main()
