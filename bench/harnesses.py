"""The harnesses of issue 9's target table. Each returns its rounds; bench/run.py pairs them
with their ceilings and prints the table.

They call only public entry points (HTTP endpoints, `ledger_debit`, `ledger_expire_due`,
`ledger_verify`, `ledger_grant` through bench/seed.py), so they keep working while the ledger
and metering internals change. Django is imported inside the functions: the module can be
imported (and its pieces tested) before `django.setup()`.
"""

import multiprocessing
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from bench.common import (
    ROOT,
    Wrk,
    WrkResult,
    bench_database,
    bench_env,
    proc_cpu_seconds,
    run_pgbench,
)
from bench.seed import analyze, seed_buckets, seed_tenants

HOT_ROW_SCRIPT = ROOT / "bench" / "hot_row.sql"


@dataclass(frozen=True)
class Config:
    rounds: int = 3
    duration: int = 15  # seconds of each wrk / pgbench / hot-tenant phase
    warmup: int = 3
    workers: int = 4  # gunicorn sync workers
    connections: int = 8  # wrk connections
    replay_keys: int = 50  # keys each wrk thread replays
    processes: int = 8  # hot tenant: processes, each its own connection
    hot_debits: int = 4000  # hot tenant: debits per round at most (all processes)
    live_buckets: int = 1000  # bucket growth: live buckets of the "many" tenant
    growth_requests: int = 200  # bucket growth: requests per measurement
    sweep_tenants: int = 1000
    sweep_due: int = 100_000  # due buckets per sweep round


FULL = Config()
QUICK = Config(
    duration=4,
    warmup=2,
    replay_keys=10,
    hot_debits=400,
    growth_requests=20,
    sweep_tenants=10,
    sweep_due=1000,
)


@contextmanager
def django_bench_database(*, keep: bool = False) -> Iterator[str]:
    """The bench database (bench.common.bench_database), Django set up on it in this process
    (and, through the environment, in every process it starts), migrated."""
    with bench_database(keep=keep) as db:
        os.environ.update(bench_env(db))
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        try:
            call_command("migrate", verbosity=0)
            yield db
        finally:
            connections.close_all()


class SeedMismatch(RuntimeError):
    """ledger_verify() found differences right after bench/seed.py wrote its rows."""


@contextmanager
def listeners_off() -> Iterator[None]:
    """The ledger's numbers alone: no balance or event receivers."""
    from tenants.events import balance_changed, domain_event, receivers_replaced

    with receivers_replaced(balance_changed), receivers_replaced(domain_event):
        yield


def verify_clean(when: str) -> None:
    from ledger.selectors import ledger_verify

    mismatches = ledger_verify()
    if mismatches:
        raise SeedMismatch(f"ledger_verify {when}: {len(mismatches)} differences, {mismatches[:3]}")


# --- HTTP: single, batch, replay against the ceilings (wrk on gunicorn) ---------------------


@dataclass(frozen=True)
class HttpRound:
    single: WrkResult
    ceiling: WrkResult
    replay: WrkResult
    batch: WrkResult
    raw_batch: WrkResult


def http_rounds(wrk: Wrk, cfg: Config, report: Callable[[str], None]) -> list[HttpRound]:
    """Per round, in turn: single events (a new key each), the bare debit, replays of a key
    set made in the warm-up, batches of 1,000, raw batches of 1,000."""
    for mode in ("single", "ceiling", "batch", "rawbatch"):
        wrk.run(mode, prefix=f"warm-{mode}", duration=cfg.warmup, warmup=True)
    made = wrk.post_keys("replay", cfg.replay_keys)
    report(f"replay key set: {made} keys made")
    rounds = []
    for r in range(cfg.rounds):
        # What autovacuum's ANALYZE does on a server that runs it (this machine's does not):
        # statistics that know the tables grew, and the backends' cached plans (foreign-key
        # checks among them) made again, so no plan made for an empty table scans a full one.
        analyze()
        phase = {
            "single": wrk.run("single", prefix=f"s{r}", duration=cfg.duration),
            "ceiling": wrk.run("ceiling", prefix=f"c{r}", duration=cfg.duration),
            "replay": wrk.run(
                "single", prefix="replay", duration=cfg.duration, key_cycle=cfg.replay_keys
            ),
            "batch": wrk.run("batch", prefix=f"b{r}", duration=cfg.duration),
            "raw_batch": wrk.run("rawbatch", prefix=f"r{r}", duration=cfg.duration),
        }
        for name, result in phase.items():
            per = 1000 if "batch" in name else 1
            report(
                f"round {r + 1} {name:<9} {result.per_second(per):>9,.0f} events/s  "
                f"p50 {result.p50_ms:7.1f} ms  p99 {result.p99_ms:7.1f} ms  "
                f"requests {result.requests}  errors {result.errors}  new {result.created}"
            )
        rounds.append(HttpRound(**phase))
    return rounds


# --- Hot tenant: ledger_debit from processes; the hot row: pgbench -------------------------


def _debit_worker(
    tenant_ids: Sequence[int],
    count: int,
    seconds: float,
    tag: str,
    barrier: Any,
    results: Any,
) -> None:
    """One process, its own connection: up to `count` debits of 1 credit within `seconds`."""
    try:
        import django

        django.setup()
        from django.db import connection

        from tenants.events import balance_changed, domain_event

        # The ledger's numbers alone: no receivers in these processes.
        balance_changed.receivers = []
        domain_event.receivers = []
        from ledger.services import ledger_debit
        from tenants.models import Tenant

        tenants = list(Tenant.objects.filter(pk__in=tenant_ids).order_by("pk"))
        connection.ensure_connection()
        one = Decimal(1)
        barrier.wait(timeout=120)
        start = time.monotonic()
        deadline = start + seconds
        done = 0
        while done < count and time.monotonic() < deadline:
            tenant = tenants[done * 7919 % len(tenants)]
            ledger_debit(tenant=tenant, amount=one, idempotency_key=f"{tag}-{done}")
            done += 1
        results.put((start, time.monotonic(), done, ""))
    except BaseException as error:
        barrier.abort()
        results.put((0.0, 0.0, 0, f"{type(error).__name__}: {error}"))


def debits_per_second(
    tenant_ids: Sequence[int], *, processes: int, debits: int, seconds: float, tag: str
) -> float:
    """`debits` single debits (at most; each process stops after `seconds`) from `processes`
    spawned processes over `tenant_ids`; debits per second from the first start to the last
    end."""
    from django.db import connections

    connections.close_all()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_debit_worker,
            args=(list(tenant_ids), debits // processes, seconds, f"{tag}-{i}", barrier, results),
        )
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=180)
        outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    except (queue.Empty, threading.BrokenBarrierError):
        outcomes = [results.get(timeout=5) for _ in workers if not results.empty()]
        raise RuntimeError(f"debit workers failed: {outcomes}") from None
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.terminate()
    errors = [error for *_, error in outcomes if error]
    if errors:
        raise RuntimeError(f"debit worker failed: {errors[0]}")
    total = sum(done for _, _, done, _ in outcomes)
    elapsed = max(end for _, end, _, _ in outcomes) - min(start for start, *_ in outcomes)
    return total / elapsed


def hot_tenant_rounds(
    db: str, cfg: Config, report: Callable[[str], None]
) -> list[tuple[float, float]]:
    """Per round: (ledger_debit/s on one tenant from `processes` processes, pgbench tx/s of
    one `UPDATE ... RETURNING` on one row from as many clients)."""
    (hot,) = seed_tenants(1, prefix="hot", credits=10**9)
    analyze()
    rounds = []
    for r in range(cfg.rounds):
        debits = debits_per_second(
            [hot.pk],
            processes=cfg.processes,
            debits=cfg.hot_debits,
            seconds=cfg.duration,
            tag=f"hot{r}",
        )
        row = run_pgbench(db, script=HOT_ROW_SCRIPT, clients=cfg.processes, duration=cfg.duration)
        report(f"round {r + 1} hot tenant {debits:8.0f} debits/s   hot row {row:8.0f} tx/s")
        rounds.append((debits, row))
    return rounds


# --- Bucket growth: CPU per request, 1,000 live buckets against 1 --------------------------


def _cpu_per_request(send: Callable[[int], int], expected: int, n: int) -> float:
    """Seconds of CPU per request: this process (the Django client and the view, in-process)
    plus its PostgreSQL backend (/proc/<pid>/stat)."""
    from django.db import connection

    send(-1)  # warm: the connection and caches
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend,) = cursor.fetchone()
    python0, pg0 = time.process_time(), proc_cpu_seconds(backend)
    for i in range(n):
        status = send(i)
        if status != expected:
            raise RuntimeError(f"request {i} answered {status}, expected {expected}")
    python1, pg1 = time.process_time(), proc_cpu_seconds(backend)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        if cursor.fetchone()[0] != backend:
            raise RuntimeError("the database connection changed while measuring CPU")
    return (python1 - python0 + pg1 - pg0) / n


def growth_rounds(cfg: Config, report: Callable[[str], None]) -> list[tuple[float, float]]:
    """Per round: (CPU per single event, CPU per balance read), the tenant with
    `live_buckets` live buckets divided by the tenant with one."""
    import json

    from django.test import Client
    from django.utils import timezone

    from tenants.services import api_key_create

    one, many = seed_tenants(2, prefix="growth")
    now = timezone.now()
    seed_buckets(
        tenant_ids=[many.pk],
        per_tenant=cfg.live_buckets - 1,  # and its pack: `live_buckets` in all
        credits=1_000_000,
        policy="rolling_12m",
        source="contract",
        reference="live",
        granted_at=now - timedelta(days=1),
        expires_at=now + timedelta(days=300),
        step=timedelta(minutes=1),
    )
    analyze()
    verify_clean("after seeding live buckets")
    keys = {
        tenant.pk: api_key_create(tenant=tenant, name="bench").plaintext for tenant in (one, many)
    }
    clients = {
        pk: Client(SERVER_NAME="127.0.0.1", headers={"authorization": f"Bearer {key}"})
        for pk, key in keys.items()
    }

    def measure(tenant_pk: int, r: int) -> tuple[float, float]:
        client = clients[tenant_pk]

        def event(i: int) -> int:
            body = json.dumps({"idempotency_key": f"g{r}-{i}", "action": "chat", "quantity": 1})
            return client.post("/api/v1/usage-events", body, "application/json").status_code

        def balance(i: int) -> int:
            return client.get("/api/v1/balance").status_code

        return (
            _cpu_per_request(event, 201, cfg.growth_requests),
            _cpu_per_request(balance, 200, cfg.growth_requests),
        )

    rounds = []
    for r in range(cfg.rounds):
        event_one, balance_one = measure(one.pk, r)
        event_many, balance_many = measure(many.pk, r)
        report(
            f"round {r + 1} CPU per event {event_one * 1000:6.1f} ms (1 bucket) "
            f"{event_many * 1000:6.1f} ms ({cfg.live_buckets}); per balance read "
            f"{balance_one * 1000:6.1f} ms / {balance_many * 1000:6.1f} ms"
        )
        rounds.append((event_many / event_one, balance_many / balance_one))
    return rounds


# --- The expiry sweep ----------------------------------------------------------------------


def sweep_rounds(cfg: Config, report: Callable[[str], None]) -> list[float]:
    """Per round: seed `sweep_due` due buckets over `sweep_tenants` tenants (bench/seed.py),
    check the seed with ledger_verify, time one ledger_expire_due(), check it again."""
    from django.utils import timezone

    from ledger.services import ledger_expire_due

    tenants = seed_tenants(cfg.sweep_tenants, prefix="sweep")
    per_tenant = max(1, cfg.sweep_due // len(tenants))
    rounds = []
    for r in range(cfg.rounds):
        now = timezone.now()
        seeded = seed_buckets(
            tenant_ids=[t.pk for t in tenants],
            per_tenant=per_tenant,
            credits=5,
            policy="monthly_reset",
            source="subscription",
            reference=f"due{r}",
            granted_at=now - timedelta(days=40),
            expires_at=now - timedelta(days=9),
        )
        analyze()
        verify_clean("after seeding due buckets")
        with listeners_off():
            began = time.perf_counter()
            expired = ledger_expire_due(now=timezone.now())
            seconds = time.perf_counter() - began
        verify_clean("after the sweep")
        if expired != seeded:
            raise RuntimeError(f"the sweep expired {expired} buckets of {seeded} due")
        report(f"round {r + 1} sweep of {expired} due buckets: {seconds:.2f} s")
        rounds.append(seconds)
    return rounds
