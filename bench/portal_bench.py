"""Issue 12's rule for the portal: every page answers in < 150 ms of server time (median of 20
warm requests) for a tenant with 1,000,000 usage events and 1,000 buckets, with as many SQL
statements as for a small tenant.

    .venv/bin/python bench/portal_bench.py [--quick] [--keep]

Creates `creditline_bench_<pid>` (bench/common.py; dropped at the end, also on Ctrl-C),
migrates it, seeds two tenants with the same fixed extras (an owner, a billing member, an API
key, a webhook endpoint, a pending top-up, a usage export, one live workflow run) and different
histories: small (1,000 events, 10 buckets) and large (1,000,000 events, 1,000 buckets; bench/
portal_seed.py, set-based SQL), checks the ledger (`ledger_verify`), builds the rollups with
their own jobs (`usage_rollup_backfill`, `debit_days_update`) and ANALYZEs. Then every GET
page of portal/urls.py (read from the URLconf, so a new page is measured too) is requested
as the owner through Django's test Client, in-process: the median of 20 warm requests (after
2 warm-ups; at most `page_seconds` a page) and the SQL statements of one request, per tenant.
`--quick`: 20,000 events and 100 buckets, 5 requests a page (a smoke run; the times are only
indicative).
"""

import argparse
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import loadavg

TARGET_MS = 150.0
_KWARG = re.compile(r"<(?:[^>:]+:)?(\w+)>")


@dataclass(frozen=True)
class PortalConfig:
    small_events: int = 1000
    small_buckets: int = 10
    large_events: int = 1_000_000
    large_buckets: int = 1000
    days: int = 90
    requests: int = 20
    warmup: int = 2
    page_seconds: float = 30.0  # at most this long measuring one page of one tenant


FULL = PortalConfig()
QUICK = PortalConfig(large_events=20_000, large_buckets=100, requests=5)
TINY = PortalConfig(
    small_events=20, small_buckets=2, large_events=200, large_buckets=5, requests=2, warmup=1
)


@dataclass(frozen=True)
class PageResult:
    page: str
    median_ms: float  # the large tenant's
    statements_small: int
    statements_large: int
    requests: int
    status: int
    small_ms: float = 0.0  # the small tenant's median, to tell the data's cost from the load's

    @property
    def passed(self) -> bool:
        return (
            self.status < 400
            and self.median_ms < TARGET_MS
            and self.statements_large <= self.statements_small
        )


def portal_pages(patterns: list[Any] | None = None, prefix: str = "") -> Iterator[str]:
    """Every URL template of portal/urls.py whose view answers GET."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for entry in get_resolver("portal.urls").url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            yield from portal_pages(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            view = getattr(entry.callback, "view_class", None)
            if view is None or hasattr(view, "get"):
                yield prefix + str(entry.pattern)


# Pages measured without an id of their own: why.
SKIPPED = {
    "team/join/<str:token>/": "the invitee's page (a signed invitation), not the owner's",
    "buy/receipts/<int:top_up_id>/": "a paid top-up's receipt redirects to the gateway's page",
}


@dataclass(frozen=True)
class Seeded:
    tenant_slug: str
    owner: int  # user id
    ids: dict[str, str]


def seed_extras(tenant: Any, prefix: str) -> Seeded:
    """What every tenant gets alike, so the two differ only in their history."""
    from django.contrib.auth.models import User
    from django.utils import timezone

    from billing.models import CreditPack
    from billing.services import topup_create, webhook_endpoint_create
    from metering.exports import usage_export_request
    from metering.models import UsageExport
    from metering.workflows import workflow_start
    from tenants.models import Membership
    from tenants.services import api_key_create, membership_add

    owner = User.objects.create_user(f"{prefix}-owner", email=f"{prefix}-owner@bench.test")
    membership_add(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    billing = User.objects.create_user(f"{prefix}-billing", email=f"{prefix}-billing@bench.test")
    membership_add(tenant=tenant, user=billing, role=Membership.Role.BILLING)
    api_key_create(tenant=tenant, name="bench key")
    endpoint = webhook_endpoint_create(tenant=tenant, url="https://hooks.bench.example/in")
    pack, _ = CreditPack.objects.get_or_create(
        slug="bench-pack",
        defaults={"name": "Bench pack", "credits": Decimal(1000), "price_minor": 1000},
    )
    top_up = topup_create(tenant=tenant, pack=pack, gateway="fake")
    today = timezone.now().date()
    export = usage_export_request(
        tenant=tenant, kind=UsageExport.Kind.DAYS, since=today - timedelta(days=30), until=today,
        user_id=owner.pk,
    )  # fmt: skip
    run, _ = workflow_start(tenant=tenant, external_id=f"{prefix}-live", name="Answer tickets")
    # A seeded run with its 10 steps is the one whose page is measured (the live run has none).
    from metering.models import WorkflowRun

    seeded_run = (
        WorkflowRun.objects.filter(tenant=tenant, steps_charged__gt=0).order_by("pk").first()
    )
    return Seeded(
        tenant_slug=tenant.slug,
        owner=owner.pk,
        ids={
            "endpoint_id": str(endpoint.pk),
            "top_up_id": str(top_up.pk),
            "export_id": str(export.pk),
            "workflow_id": str((seeded_run or run).pk),
        },
    )


def seed_tenant(prefix: str, *, events: int, buckets: int, days: int) -> Seeded:
    """A tenant with `events` past usage events and `buckets` buckets in all (its pack, and
    rolling_12m grants made after the events), then its extras."""
    from django.utils import timezone

    from bench.portal_seed import seed_usage
    from bench.seed import seed_buckets, seed_tenants

    now = timezone.now()
    (tenant,) = seed_tenants(
        1, prefix=prefix, credits=100_000_000, granted_at=now - timedelta(days=days + 1)
    )
    seed_usage(tenant_id=tenant.pk, events=events, days=days, prefix=prefix, now=now)
    if buckets > 1:
        seed_buckets(
            tenant_ids=[tenant.pk],
            per_tenant=buckets - 1,
            credits=1000,
            policy="rolling_12m",
            source="contract",
            reference=f"{prefix}-grant",
            granted_at=now - timedelta(hours=1),
            expires_at=now + timedelta(days=300),
            step=timedelta(minutes=1),
        )
    return seed_extras(tenant, prefix)


def seed_all(cfg: PortalConfig, report: Callable[[str], None]) -> tuple[Seeded, Seeded]:
    from bench.seed import analyze
    from billing.services import balance_evaluate
    from ledger.rollup import debit_days_update
    from ledger.selectors import ledger_verify
    from metering.rollup import usage_rollup_backfill
    from ratecards.services import ratecard_seed_example
    from tenants.models import Tenant

    ratecard_seed_example()
    began = time.monotonic()
    small = seed_tenant("small", events=cfg.small_events, buckets=cfg.small_buckets, days=cfg.days)
    large = seed_tenant("large", events=cfg.large_events, buckets=cfg.large_buckets, days=cfg.days)
    report(f"seeded {cfg.small_events:,} + {cfg.large_events:,} events in "
           f"{time.monotonic() - began:.1f} s")  # fmt: skip
    mismatches = ledger_verify()
    if mismatches:
        raise RuntimeError(f"ledger_verify after seeding: {len(mismatches)}, {mismatches[:3]}")
    began = time.monotonic()
    rows = usage_rollup_backfill()
    while debit_days_update():
        pass
    for slug in (small.tenant_slug, large.tenant_slug):
        # What the worker does after a grant: set the watch level (no worker runs here).
        balance_evaluate(tenant=Tenant.objects.get(slug=slug))
    analyze()
    report(f"rollups built ({rows:,} usage rows) and ANALYZEd in {time.monotonic() - began:.1f} s")
    return small, large


def _url(template: str, ids: dict[str, str]) -> str:
    return "/" + _KWARG.sub(lambda m: ids[m.group(1)], template)


def _drain(response: Any) -> None:
    if getattr(response, "streaming", False):
        for _ in response.streaming_content:
            pass


def measure_page(client: Any, url: str, cfg: PortalConfig) -> tuple[float, int, int, int]:
    """(median ms, statements of one request, status, requests timed) for one page; the
    warm-ups and timed requests stop at `page_seconds` (a slow page is timed fewer times, its
    first request at least)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    deadline = time.monotonic() + cfg.page_seconds
    began = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        _drain(response)
    first = (time.perf_counter() - began) * 1000
    statements = len(queries.captured_queries)
    for _ in range(cfg.warmup - 1):
        if time.monotonic() < deadline:
            _drain(client.get(url))
    times: list[float] = []
    while len(times) < cfg.requests and time.monotonic() < deadline:
        began = time.perf_counter()
        _drain(client.get(url))
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times or [first]), statements, response.status_code, len(times)


# The static files' plain storage: the manifest one (production's, after collectstatic) looks
# names up in a dict; this bench does not run collectstatic.
PLAIN_STATIC = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


def measure_all(small: Seeded, large: Seeded, cfg: PortalConfig) -> list[PageResult]:
    from django.test import override_settings

    with override_settings(STORAGES=PLAIN_STATIC):
        return _measure_all(small, large, cfg)


def _measure_all(small: Seeded, large: Seeded, cfg: PortalConfig) -> list[PageResult]:
    from django.test import Client
    from django.utils import timezone

    clients = {}
    for seeded in (small, large):
        client = Client(SERVER_NAME="127.0.0.1", raise_request_exception=False)
        client.force_login(_user(seeded.owner))
        client.get(f"/?tenant={seeded.tenant_slug}")  # the session remembers the tenant
        clients[seeded.tenant_slug] = client
    results = []
    pages = [(t, _url(t, small.ids), _url(t, large.ids)) for t in sorted(portal_pages())
             if t not in SKIPPED]  # fmt: skip
    # The statement's CSV of a whole history is refused past STATEMENT_EXPORT_MAX entries
    # (a 400 page): one day's export is measured too (~11,000 entries of the large tenant).
    day = (timezone.now() - timedelta(days=2)).date().isoformat()
    one_day = f"statement.csv?since={day}&until={day}"
    pages.append((one_day, "/" + one_day, "/" + one_day))
    for name, small_url, large_url in pages:
        small_ms, small_statements, _, _ = measure_page(clients[small.tenant_slug], small_url, cfg)
        median_ms, large_statements, status, made = measure_page(
            clients[large.tenant_slug], large_url, cfg
        )
        results.append(
            PageResult(
                "/" + name, median_ms, small_statements, large_statements, made, status, small_ms
            )
        )
    return results


def _user(pk: int) -> Any:
    from django.contrib.auth.models import User

    return User.objects.get(pk=pk)


def format_results(results: list[PageResult]) -> str:
    lines = [
        "| page | median ms large (small) | requests | statements small / large | status | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        verdict = "PASS" if r.passed else "FAIL"
        lines.append(
            f"| `{r.page}` | {r.median_ms:.1f} ({r.small_ms:.1f}) | {r.requests} "
            f"| {r.statements_small} / {r.statements_large} "
            f"| {r.status} | {verdict} |"
        )
    return "\n".join(lines)


def run(cfg: PortalConfig, report: Callable[[str], None]) -> list[PageResult]:
    """Seed and measure in the database Django is set up on."""
    small, large = seed_all(cfg, report)
    return measure_all(small, large, cfg)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 events, 5 requests a page")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    args = parser.parse_args()
    cfg = QUICK if args.quick else FULL
    from bench.harnesses import django_bench_database

    start_load = loadavg()
    print(f"portal pages{' (--quick)' if args.quick else ''}: load average {start_load}")
    with django_bench_database(keep=args.keep):
        results = run(cfg, lambda line: print(f"  {line}", flush=True))
    print()
    print(format_results(results))
    print(f"\nskipped: {SKIPPED}")
    print(f"load average at start {start_load}, at end {loadavg()}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
