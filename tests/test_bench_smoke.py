"""The benchmark's cheap pieces (no load here): the table, the wrk and pgbench commands and
their parsers, and the SQL seeder, which must write exactly what `ledger_grant` writes."""

import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from bench.common import (
    Row,
    Wrk,
    bench_db_name,
    format_table,
    parse_pgbench_tps,
    parse_wrk,
    pgbench_command,
    proc_cpu_seconds,
)
from bench.harnesses import FULL, QUICK
from bench.seed import account_total_expressions, seed_buckets, seed_tenants
from ledger.models import CreditAccount, CreditBucket, LedgerEntry, LedgerTransaction
from ledger.selectors import ledger_verify
from ledger.services import ledger_grant


def test_the_table_shows_median_rounds_target_and_verdict() -> None:
    rows = [
        Row("single ÷ bare debit", (0.2, 0.1, 0.3), "≥ 0.60", lambda v: v >= 0.6),
        Row("CPU, 1,000 ÷ 1", (1.0, 1.3, 1.1), "≤ 1.2x", lambda v: v <= 1.2, unit="x"),
        Row("sweep", (12.0, 9.5, 9.0), "≤ 10 s", lambda v: v <= 10, unit="s"),
        Row("hot tenant", (), "", note="failed: boom"),
    ]
    assert format_table(rows).splitlines() == [
        "| path | median | rounds | target | | note |",
        "|---|---:|---|---:|---|---|",
        "| single ÷ bare debit | 0.20 | 0.20, 0.10, 0.30 | ≥ 0.60 | MISS |  |",
        "| CPU, 1,000 ÷ 1 | 1.10x | 1.00x, 1.30x, 1.10x | ≤ 1.2x | PASS |  |",
        "| sweep | 9.5 s | 12.0 s, 9.5 s, 9.0 s | ≤ 10 s | PASS |  |",
        "| hot tenant | — | — |  | — | failed: boom |",
    ]


def test_wrk_command_and_its_result() -> None:
    wrk = Wrk(port=8123, key="cl_k", connections=8)
    command = wrk.command("single", prefix="replay", duration=15, key_cycle=50)
    assert command[:9] == ["wrk", "-t", "2", "-c", "8", "-d", "15s", "--timeout", "30s"]
    assert command[9:11] == ["-s", str(Path(__file__).resolve().parents[1] / "bench/ingest.lua")]
    assert command[11:] == ["http://127.0.0.1:8123", "--", "single", "cl_k", "replay", "50"]
    result = parse_wrk(
        "Running 15s test\nRESULT requests=300 duration_us=15000000 p50_us=20000 "
        "p99_us=45500 errors_status=1 errors_other=2 created=297 replayed=0\n"
    )
    assert (result.requests, result.errors, result.created, result.p99_ms) == (300, 3, 297, 45.5)
    assert result.per_second() == 20.0
    assert result.per_second(1000) == 20_000.0


def test_pgbench_command_and_its_tps() -> None:
    command = pgbench_command(
        "creditline_bench_7", script=Path("/x/hot_row.sql"), clients=8, duration=15
    )
    assert Path(command[0]).name == "pgbench"
    assert command[1:] == [
        "-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-n", "-f", "/x/hot_row.sql",
        "-c", "8", "-j", "2", "-T", "15", "creditline_bench_7",
    ]  # fmt: skip
    out = "latency average = 2.3 ms\ntps = 3456.789012 (without initial connection time)\n"
    assert parse_pgbench_tps(out) == pytest.approx(3456.789012)


def test_names_configs_and_cpu() -> None:
    assert bench_db_name(4242) == "creditline_bench_4242"
    assert (FULL.rounds, FULL.sweep_due, FULL.sweep_tenants, FULL.live_buckets) == (
        3,
        100_000,
        1000,
        1000,
    )
    assert QUICK.rounds == 3
    assert QUICK.duration < FULL.duration
    import os

    before = proc_cpu_seconds(os.getpid())
    start = time.process_time()
    while time.process_time() - start < 0.2:
        pass
    assert proc_cpu_seconds(os.getpid()) - before >= 0.1


def test_account_totals_only_for_columns_that_exist() -> None:
    assert account_total_expressions(["overdraft_limit", "reserved", "soft_cap"]) == {}
    assert account_total_expressions(
        [
            "reserved",
            "monthly_reset_total",
            "permanent_total",
            "rolling_12m_total",
            "overdraft_used",
        ]
    ) == {
        "monthly_reset_total": "s.live_monthly_reset",
        "permanent_total": "s.live_permanent",
        "rolling_12m_total": "s.live_rolling_12m",
        "overdraft_used": "-s.overdraft",
    }


def _rows(tenant_id: int) -> dict[str, list[dict[str, Any]]]:
    """A tenant's ledger rows, without ids, tenant and timestamps."""
    drop = {"id", "tenant_id", "created_at", "transaction_id", "bucket_id"}

    def clean(rows: Any) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k not in drop} for row in rows]

    return {
        "buckets": clean(CreditBucket.objects.filter(tenant_id=tenant_id).order_by("id").values()),
        "transactions": clean(
            LedgerTransaction.objects.filter(tenant_id=tenant_id).order_by("id").values()
        ),
        "entries": clean(LedgerEntry.objects.filter(tenant_id=tenant_id).order_by("id").values()),
        "account": clean(CreditAccount.objects.filter(tenant_id=tenant_id).values()),
    }


@pytest.mark.django_db
def test_the_seeder_writes_what_ledger_grant_writes() -> None:
    # Given two tenants with a pack each, the ledger's own account rows
    now = timezone.now()
    by_service, by_seed = seed_tenants(2, prefix="seedcheck", credits=100, granted_at=now)
    day, minute = timedelta(days=1), timedelta(minutes=1)
    grants = [  # per tenant, credits, policy, source, reference, granted at, expires at, step
        (2, 5, "monthly_reset", "subscription", "due", now - 40 * day, now - 9 * day, 0 * day),
        (3, 7, "rolling_12m", "contract", "live", now - day, now + 30 * day, minute),
    ]
    seeded = []
    # When one gets 2 due and 3 live grants through ledger_grant, the other through the seeder
    for per, credits, policy, source, reference, granted_at, expires_at, step in grants:
        for n in range(per):
            ledger_grant(
                tenant=by_service,
                credits=credits,
                policy=policy,
                source=source,
                external_reference=f"{reference}-{n}",
                granted_at=granted_at,
                expires_at=expires_at + n * step,
            )
        seeded.append(
            seed_buckets(
                tenant_ids=[by_seed.pk],
                per_tenant=per,
                credits=credits,
                policy=policy,
                source=source,
                reference=reference,
                granted_at=granted_at,
                expires_at=expires_at,
                step=step,
            )
        )
    # Then the rows are the same, the balances after each grant included, and the ledger agrees
    assert seeded == [2, 3]
    assert _rows(by_seed.pk) == _rows(by_service.pk)
    balances = [e["balance_after"] for e in _rows(by_seed.pk)["entries"]]
    assert balances == [
        Decimal(100),
        Decimal(100),
        Decimal(100),
        Decimal(107),
        Decimal(114),
        Decimal(121),
    ]
    assert ledger_verify() == []


@pytest.mark.django_db
def test_the_seeder_refuses_a_tenant_without_its_account_row() -> None:
    from tenants.services import tenant_create

    tenant = tenant_create(name="No account", slug="no-account")
    now = timezone.now()
    with pytest.raises(ValueError, match="account row"):
        seed_buckets(
            tenant_ids=[tenant.pk],
            per_tenant=1,
            credits=5,
            policy="monthly_reset",
            source="subscription",
            reference="due",
            granted_at=now - timedelta(days=40),
            expires_at=now - timedelta(days=9),
        )
    assert not CreditBucket.objects.filter(tenant=tenant).exists()


def test_the_replayed_keys_are_posted_with_the_body_wrk_sends() -> None:
    # A replay is the same key with the same body: bench/ingest.lua formats it this way.
    lua = (Path(__file__).resolve().parents[1] / "bench" / "ingest.lua").read_text()
    assert '\'{"idempotency_key":"%s-%d-%d","action":"chat","quantity":1,\'' in lua
    assert '\'"input_tokens":1200,"output_tokens":300,"labels":{"project":"bench"}}\'' in lua
    assert Wrk(port=1, key="k").event("replay", 2, 7) == (
        b'{"idempotency_key":"replay-2-7","action":"chat","quantity":1,'
        b'"input_tokens":1200,"output_tokens":300,"labels":{"project":"bench"}}'
    )


@pytest.mark.django_db(transaction=True)
def test_the_portal_bench_walks_every_page_at_a_tiny_size() -> None:
    # bench/portal_bench.py at 20 and 200 events: seeded, the ledger clean, the rollups built,
    # every GET page of portal/urls.py answered, with no more statements for more data.
    from bench.portal_bench import SKIPPED, TINY, portal_pages, run

    results = run(TINY, lambda line: None)

    measured = {r.page for r in results}
    assert measured >= {"/" + p for p in portal_pages() if p not in SKIPPED}
    assert [(r.page, r.status) for r in results if r.status >= 400] == []
    assert [
        (r.page, r.statements_small, r.statements_large)
        for r in results
        if r.statements_large > r.statements_small
    ] == []
    assert all(r.requests == TINY.requests for r in results)
