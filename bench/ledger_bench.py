"""Ledger benchmark (not a test): debits/s on one hot tenant and over 1,000 tenants, and the
expiry sweep's time for 100,000 due buckets.

    .venv/bin/python bench/ledger_bench.py [--threads 8] [--debits 2000] [--due 100000]

Creates `creditline_bench` on the local PostgreSQL (127.0.0.1:5432, user postgres), migrates
it, runs, and drops it. Every row is written through ledger/services/. Balance listeners are
switched off, so the numbers are the ledger's alone. Debits run in THREADS worker threads, each
with its own database connection; each scenario runs 3 times and the median is reported.
"""

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
DB = "creditline_bench"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def recreate_database() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")


def drop_database() -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def in_threads(threads: int, work: Callable[[int], None]) -> float:
    """Run work(i) in `threads` threads (own connections); return the wall time."""
    from django.db import connections

    errors: list[BaseException] = []
    start = threading.Barrier(threads + 1)

    def run(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in pool:
        t.join(600)
    elapsed = time.perf_counter() - began
    if errors:
        raise errors[0]
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--debits", type=int, default=2000, help="debits per run")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--due", type=int, default=100_000, help="due buckets for the sweep")
    args = parser.parse_args()

    recreate_database()
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["NAME"] = DB
    settings.CREDITLINE_BALANCE_LISTENERS = []
    settings.CREDITLINE_EVENT_LISTENERS = []
    from django.core.management import call_command
    from django.db import connections
    from django.utils import timezone

    from ledger.selectors import ledger_verify
    from ledger.services import ledger_debit, ledger_expire_due, ledger_grant
    from tenants.services import tenant_create

    try:
        call_command("migrate", verbosity=0)
        per_thread = args.debits // args.threads
        one = Decimal("1")

        def grant(tenant: object, credits: int, ref: str, **kw: object) -> None:
            ledger_grant(
                tenant=tenant,
                credits=credits,
                policy="permanent",  # type: ignore[arg-type]
                source="topup",
                external_reference=ref,
                **kw,
            )

        # 1. One hot tenant: every debit serializes on its account row.
        hot = tenant_create(name="Hot", slug="hot")
        grant(hot, 10**9, "hot-pack", price_minor=10**9)
        hot_rates = []
        for run in range(3):

            def debit_hot(i: int, run: int = run) -> None:
                for n in range(per_thread):
                    ledger_debit(tenant=hot, amount=one, idempotency_key=f"h{run}-{i}-{n}")

            hot_rates.append(per_thread * args.threads / in_threads(args.threads, debit_hot))

        # 2. Spread over many tenants: they never block each other.
        tenants = [tenant_create(name=f"T{n}", slug=f"t{n}") for n in range(args.tenants)]
        for n, tenant in enumerate(tenants):
            grant(tenant, 10**6, f"pack-{n}")
        spread_rates = []
        for run in range(3):

            def debit_spread(i: int, run: int = run) -> None:
                for n in range(per_thread):
                    tenant = tenants[(i * per_thread + n) * 7919 % len(tenants)]
                    ledger_debit(tenant=tenant, amount=one, idempotency_key=f"s{run}-{i}-{n}")

            spread_rates.append(per_thread * args.threads / in_threads(args.threads, debit_spread))

        # 3. The sweep: `due` buckets already past their expiry, spread over the tenants.
        now = timezone.now()
        per_tenant = max(1, args.due // len(tenants))

        def seed_due(i: int) -> None:
            for tenant in tenants[i :: args.threads]:
                for n in range(per_tenant):
                    ledger_grant(
                        tenant=tenant,
                        credits=5,
                        policy="monthly_reset",
                        source="subscription",
                        external_reference=f"due-{n}",
                        granted_at=now - timedelta(days=40),
                        expires_at=now - timedelta(days=9),
                    )

        seeded_in = in_threads(args.threads, seed_due)
        began = time.perf_counter()
        expired = ledger_expire_due()
        sweep_s = time.perf_counter() - began
        began = time.perf_counter()
        mismatches = ledger_verify()
        verify_s = time.perf_counter() - began

        print(
            f"threads: {args.threads} (own connections), {per_thread * args.threads} debits "
            f"of 1 credit per run, median of 3 runs; {os.cpu_count()} CPUs"
        )
        print(
            f"hot tenant:   {statistics.median(hot_rates):8.0f} debits/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in hot_rates)})"
        )
        print(
            f"{len(tenants)} tenants: {statistics.median(spread_rates):8.0f} debits/s  "
            f"(runs: {', '.join(f'{r:.0f}' for r in spread_rates)})"
        )
        print(
            f"sweep: {expired} due buckets over {len(tenants)} tenants expired in "
            f"{sweep_s:.1f} s ({expired / sweep_s:.0f} buckets/s; seeding took "
            f"{seeded_in:.0f} s)"
        )
        print(f"ledger_verify: {len(mismatches)} differences in {verify_s:.1f} s")
    finally:
        connections.close_all()
        drop_database()


if __name__ == "__main__":
    main()
