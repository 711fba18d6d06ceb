"""Issue 13's rule for the vendor console: every report page answers in < 500 ms (median of 20
warm requests, load average noted), with statements per page not growing with the data, for
1,000 tenants and a year of daily rollup rows for them.

    .venv/bin/python bench/console_bench.py [--quick | --tiny] [--keep]

Creates `creditline_bench_<pid>` (bench/common.py; dropped at the end, also on Ctrl-C),
migrates it and seeds the **small** set: 10 tenants (a pack each through `ledger_grant`), a
staff user, three plans and a live subscription per tenant, two active contracts (one pinned
to the example card's first version while a second is in force), a draft third version and a
pending simulation of it, and 30 days of the rollups the console reads (bench/console_seed.py:
MarginDay, ValueDay, UsageDay, DebitDay, UsageRefusalDay, set-based SQL). Every GET page of
insights/urls.py (read from the URLconf, real ids), and a year's
range of the pages that take one, is requested as the staff user through Django's test Client,
in-process. Then the **large** set is added: 990 more tenants (1,000), their subscriptions, a
contract for every 20th (half pinned), and 365 days of rollups for all of them; the same URLs
again. Per page: the statements of one request at each size and the median of 20 warm
requests (after 2 warm-ups; at most 30 s a page) at each size.
`--quick`: 100 tenants and 90 days, 5 requests a page; `--tiny`: 20 tenants and 40 days, 2
requests (smoke runs: the times are only indicative). `--trap-events N`: with the large set,
N usage events of the last 30 days for each pinned contract's tenant (bench/portal_seed.py),
which the contract pages' rate-card trap reads (none by default).
"""

import argparse
import logging
import re
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import loadavg
from bench.portal_bench import PLAIN_STATIC, PortalConfig, measure_page

TARGET_MS = 500.0
_KWARG = re.compile(r"<(?:[^>:]+:)?(\w+)>")
CONSOLE_URLCONFS = ("insights.urls",)


@dataclass(frozen=True)
class ConsoleConfig:
    small_tenants: int = 10
    small_days: int = 30
    large_tenants: int = 1000
    large_days: int = 365
    contract_every: int = 20  # a contract for every n-th tenant of the large set
    # Usage events of the last 30 days for every pinned contract's tenant, seeded with the
    # large set (--trap-events): the rate-card trap reads them.
    trap_events: int = 0
    # Requests a page (20), warm-ups (2), at most 30 s a page: the portal bench's.
    timing: PortalConfig = field(default_factory=PortalConfig)


FULL = ConsoleConfig()
QUICK = ConsoleConfig(large_tenants=100, large_days=90, timing=PortalConfig(requests=5))
TINY = ConsoleConfig(
    small_tenants=3, small_days=7, large_tenants=20, large_days=40, contract_every=5,
    timing=PortalConfig(requests=2, warmup=1),
)  # fmt: skip


@dataclass(frozen=True)
class Measured:
    ms: float
    statements: int
    status: int
    requests: int


@dataclass(frozen=True)
class PageResult:
    page: str
    small: Measured
    large: Measured

    @property
    def passed(self) -> bool:
        return (
            self.large.status < 400
            and self.large.ms < TARGET_MS
            and self.large.statements <= self.small.statements
        )


def console_pages() -> Iterator[str]:
    """Every URL template of the console's URLconfs whose view answers GET, with its prefix
    (/console/) as config/urls.py includes it."""
    from django.urls import URLPattern, URLResolver, get_resolver

    def walk(patterns: list[Any], prefix: str, inside: bool) -> Iterator[str]:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                module = getattr(entry.urlconf_module, "__name__", "")
                yield from walk(
                    entry.url_patterns,
                    prefix + str(entry.pattern),
                    inside or module in CONSOLE_URLCONFS,
                )
            elif isinstance(entry, URLPattern) and inside:
                view = getattr(entry.callback, "view_class", None)
                methods = getattr(view, "http_method_names", ["get"])
                if "get" in methods and (view is None or hasattr(view, "get")):
                    yield prefix + str(entry.pattern)

    yield from walk(get_resolver().url_patterns, "", False)


@dataclass
class Seeded:
    staff: int
    ids: dict[str, str]
    card: Any = None
    pinned_to: Any = None
    plans: Any = None


def _tenants(count: int, prefix: str, now: Any) -> list[Any]:
    from bench.seed import seed_tenants

    return seed_tenants(
        count, prefix=prefix, credits=10_000_000, granted_at=now - timedelta(days=400)
    )


def seed_small(cfg: ConsoleConfig, report: Callable[[str], None]) -> Seeded:
    from django.contrib.auth.models import User
    from django.utils import timezone

    from bench.console_seed import seed_contracts, seed_plans, seed_rollups, seed_subscriptions
    from bench.seed import analyze
    from insights.models import Simulation
    from ratecards.services import (
        ratecard_seed_example,
        ratecard_version_create_draft,
        ratecard_version_publish,
    )

    now = timezone.now()
    began = time.monotonic()
    card = ratecard_seed_example()
    first = card.versions.order_by("number").first()
    # In force from now on: the pinned contracts' trap is figured against it.
    ratecard_version_publish(
        version=ratecard_version_create_draft(rate_card=card, notes="bench: in force"),
        effective_from=now,
    )
    draft = ratecard_version_create_draft(rate_card=card, notes="bench: draft")
    simulation = Simulation.objects.create(
        version=draft, since=now - timedelta(days=90), until=now, created_at=now
    )
    staff = User.objects.create_user(
        "console-staff", email="staff@bench.test", is_staff=True, is_superuser=True
    )
    tenants = _tenants(cfg.small_tenants, "small", now)
    plans = seed_plans()
    seed_subscriptions(tenants=tenants, plans=plans, now=now)
    contracts = seed_contracts(tenants=tenants[:2], card=card, pinned_to=first, now=now)
    rows = seed_rollups(tenant_ids=[t.pk for t in tenants], days=cfg.small_days, today=now.date())
    analyze()
    report(f"small set: {cfg.small_tenants} tenants, {cfg.small_days} days, {rows} in "
           f"{time.monotonic() - began:.1f} s")  # fmt: skip
    return Seeded(
        staff=staff.pk,
        ids={
            "tenant_id": str(tenants[0].pk),
            "contract_id": str(contracts[0].pk),  # the pinned one: its page figures the trap
            "version_id": str(draft.pk),
            "simulation_id": str(simulation.pk),
        },
        card=card,
        pinned_to=first,
        plans=plans,
    )


def seed_large(cfg: ConsoleConfig, seeded: Seeded, report: Callable[[str], None]) -> None:
    from django.utils import timezone

    from bench.console_seed import seed_contracts, seed_rollups, seed_subscriptions
    from bench.seed import analyze
    from tenants.models import Tenant

    now = timezone.now()
    began = time.monotonic()
    more = _tenants(cfg.large_tenants - cfg.small_tenants, "large", now)
    report(f"{len(more)} more tenants in {time.monotonic() - began:.1f} s")
    seed_subscriptions(tenants=more, plans=seeded.plans, now=now)
    seed_contracts(
        tenants=more[:: cfg.contract_every], card=seeded.card, pinned_to=seeded.pinned_to, now=now
    )
    if cfg.trap_events:
        seed_trap_events(cfg.trap_events, now, report)
    began = time.monotonic()
    rows = seed_rollups(
        tenant_ids=list(Tenant.objects.values_list("pk", flat=True)),
        days=cfg.large_days,
        today=now.date(),
    )
    analyze()
    report(f"large set: {cfg.large_tenants} tenants, {cfg.large_days} days, {rows} in "
           f"{time.monotonic() - began:.1f} s")  # fmt: skip


def seed_trap_events(events: int, now: Any, report: Callable[[str], None]) -> None:
    """`events` charged events over the last 30 days for each pinned contract's tenant
    (bench/portal_seed.py: priced by the example card's first version, quantity 1, the card's
    four actions, a tenth at turbo), which the rate-card trap re-prices under the current one."""
    from bench.portal_seed import seed_usage
    from bench.seed import analyze
    from billing.models import Contract

    began = time.monotonic()
    pinned = Contract.objects.filter(rate_card_mode=Contract.RateCardMode.PINNED)
    tenant_ids = sorted(set(pinned.values_list("tenant_id", flat=True)))
    for tenant_id in tenant_ids:
        seed_usage(tenant_id=tenant_id, events=events, days=30, prefix=f"trap-{tenant_id}", now=now)
    analyze()
    report(f"{events:,} events for each of {len(tenant_ids)} pinned tenants in "
           f"{time.monotonic() - began:.1f} s")  # fmt: skip


def hourly_jobs(report: Callable[[str], None]) -> None:
    """What the console's hourly jobs store, which its pages show: a reconciliation run (its
    differences are the seed's: the rollups disagree with the ledger by design) and the
    pinned contracts' rate-card traps."""
    from django.utils import timezone

    from insights.models import ReconciliationRun
    from insights.reconcile import reconciliation_run
    from insights.trap import contract_traps_store

    run, _ = reconciliation_run(trigger=ReconciliationRun.Trigger.COMMAND, update_rollups=False)
    report(f"reconciliation run: {run.duration_ms} ms, {run.differences} differences (stored)")
    began = time.monotonic()
    stored = contract_traps_store(now=timezone.now())
    report(f"rate-card traps: {stored} stored in {(time.monotonic() - began) * 1000:.0f} ms")


def urls(ids: dict[str, str], cfg: ConsoleConfig) -> list[tuple[str, str]]:
    """(name, url) of every page, and the pages that take a range over the large set's year
    (`<year>`: its first day), and over ranges with the most days outside whole months (the
    customers and margin by customer read a partial month at either end as its days or as the
    month less the days outside, whichever are fewer: insights.selectors.range_plan):
    `<edges>`, from the 16th of the year's second month to the 15th of the month before this
    one (~15 days read at each end, the most a range reads), and `<mid>`, 30 days across a
    month's end (none of them in a whole month)."""
    from django.utils import timezone

    pages = [(t, "/" + _KWARG.sub(lambda m: ids[m.group(1)], t)) for t in sorted(console_pages())]
    today = timezone.now().date()
    year = today - timedelta(days=cfg.large_days - 1)
    before = today.replace(day=1) - timedelta(days=1)
    second = (year.replace(day=1) + timedelta(days=32)).replace(day=16)
    edges = f"start={second}&end={before.replace(day=15)}"
    mid = f"start={before.replace(day=16)}&end={before.replace(day=16) + timedelta(days=29)}"
    for extra in (
        "console/?start=<year>",
        "console/?start=<year>&sort=margin&dir=desc",
        "console/?<edges>&sort=margin&dir=desc",
        "console/?<mid>&sort=margin&dir=desc",
        "console/margin/?by=day&start=<year>",
        "console/margin/?by=tenant&start=<year>",
        "console/margin/?by=tenant&<edges>",
        "console/margin/?by=tenant&start=<year>&format=csv",
        "console/customers/<tenant_id>/?start=<year>",
        "console/breakage/?start=<year>",
        "console/weights/?start=<year>",
    ):
        url = (
            extra.replace("<year>", year.isoformat())
            .replace("<edges>", edges)
            .replace("<mid>", mid)
            .replace("<tenant_id>", ids["tenant_id"])
        )
        pages.append((extra, "/" + url))
    return pages


def measure(client: Any, pages: list[tuple[str, str]], cfg: ConsoleConfig,
            report: Callable[[str], None]) -> dict[str, Measured]:  # fmt: skip
    from django.test import override_settings

    out = {}
    with override_settings(STORAGES=PLAIN_STATIC):
        for name, url in pages:
            ms, statements, status, made = measure_page(client, url, cfg.timing)
            out[name] = Measured(ms, statements, status, made)
            report(f"{name}: {ms:.1f} ms, {statements} statements, {status}")
    return out


def run(cfg: ConsoleConfig, report: Callable[[str], None]) -> list[PageResult]:
    """Seed and measure in the database Django is set up on."""
    from django.contrib.auth.models import User
    from django.test import Client

    # The reconciliation logs an ERROR per tenant whose rollup disagrees with the ledger (all
    # of them here, by construction): counted on its page, not printed 1,000 times a request.
    logging.getLogger("insights.reconcile").setLevel(logging.CRITICAL)
    seeded = seed_small(cfg, report)
    hourly_jobs(report)
    client = Client(SERVER_NAME="127.0.0.1", raise_request_exception=False)
    client.force_login(User.objects.get(pk=seeded.staff))
    pages = urls(seeded.ids, cfg)
    small = measure(client, pages, cfg, report)
    seed_large(cfg, seeded, report)
    hourly_jobs(report)
    large = measure(client, pages, cfg, report)
    return [PageResult(name, small[name], large[name]) for name, _ in pages]


def format_results(results: list[PageResult]) -> str:
    lines = [
        "| page | median ms, large (small) | statements small / large | status | < 500 ms |",
        "|---|---:|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| `/{r.page}` | {r.large.ms:,.1f} ({r.small.ms:,.1f}) "
            f"| {r.small.statements} / {r.large.statements} | {r.large.status} "
            f"| {'PASS' if r.passed else 'FAIL'} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100 tenants, 90 days, 5 requests")
    size.add_argument("--tiny", action="store_true", help="20 tenants, 40 days, 2 requests")
    parser.add_argument("--keep", action="store_true", help="leave the database behind")
    parser.add_argument(
        "--trap-events",
        type=int,
        default=0,
        metavar="N",
        help="with the large set, N usage events of the last 30 days for each pinned tenant",
    )
    args = parser.parse_args()
    cfg = TINY if args.tiny else QUICK if args.quick else FULL
    cfg = replace(cfg, trap_events=args.trap_events)
    from bench.harnesses import django_bench_database

    start_load = loadavg()
    print(f"console pages ({cfg.small_tenants}/{cfg.large_tenants} tenants, "
          f"{cfg.small_days}/{cfg.large_days} days): load average {start_load}")  # fmt: skip
    with django_bench_database(keep=args.keep):
        results = run(cfg, lambda line: print(f"  {line}", flush=True))
    print()
    print(format_results(results))
    print(f"\nload average at start {start_load}, at end {loadavg()}")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
