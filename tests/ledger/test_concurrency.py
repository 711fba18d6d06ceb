"""Real threads against PostgreSQL: one tenant's money moves serialize on its account row.

Each thread uses its own database connection and closes it when done; the tests run outside a
wrapping transaction (`transaction=True`) so that the threads see each other's commits.
"""

import contextlib
import threading
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django.db.models import F, Sum
from django.utils import timezone

from ledger.exceptions import InsufficientCredits
from ledger.locks import SWEEP_LOCK_KEY
from ledger.models import CreditBucket, LedgerEntry, LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from ledger.services import ledger_debit, ledger_expire_due, ledger_grant
from tenants.models import Tenant
from tests.ledger.factories import tenant_make
from tests.ledger.helpers import seed_due_buckets

pytestmark = pytest.mark.django_db(transaction=True)

P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal
TIMEOUT = 60


class Workers:
    """Start callables in threads; `join()` fails the test on a hang or an exception."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.errors: list[BaseException] = []

    def start(self, target: Callable[[], None]) -> None:
        def run() -> None:
            try:
                target()
            except BaseException as error:
                self.errors.append(error)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()

    def join(self) -> None:
        for thread in self.threads:
            thread.join(TIMEOUT)
        assert [t for t in self.threads if t.is_alive()] == [], "deadlock or hang"
        assert self.errors == []


def test_eight_threads_never_overspend_one_tenant() -> None:
    tenant = tenant_make()
    for n in range(4):  # four buckets, so debits also split and cross buckets
        ledger_grant(
            tenant=tenant,
            credits=250,
            policy=P.PERMANENT,
            source=S.TOPUP,
            external_reference=f"pack-{n}",
            price_minor=2500,
        )
    accepted: list[int] = []
    refused: list[str] = []
    start = threading.Barrier(8)

    def spender(worker: int) -> Callable[[], None]:
        def spend() -> None:
            start.wait()
            for n in range(200):
                key = f"w{worker}-{n}"
                try:
                    ledger_debit(tenant=tenant, amount=D("1"), idempotency_key=key)
                    accepted.append(1)
                except InsufficientCredits:
                    refused.append(key)

        return spend

    workers = Workers()
    for worker in range(8):
        workers.start(spender(worker))
    workers.join()

    assert (len(accepted), len(refused)) == (1000, 600)
    assert available_get(tenant=tenant) == D("1000") - len(accepted) == D("0")
    # Every refused debit wrote nothing: one transaction and one entry per accepted debit.
    assert LedgerTransaction.objects.filter(tenant=tenant, kind="debit").count() == 1000
    assert LedgerEntry.objects.filter(tenant=tenant, kind="debit").count() == 1000
    assert not LedgerTransaction.objects.filter(idempotency_key__in=refused).exists()
    assert CreditBucket.objects.filter(tenant=tenant, remaining__lt=0).count() == 0
    assert ledger_verify() == []


def test_grants_and_sweeps_run_beside_debits_without_deadlock() -> None:
    now = timezone.now()
    tenants = [tenant_make(), tenant_make()]
    for tenant in tenants:
        ledger_grant(
            tenant=tenant,
            credits=100,
            policy=P.PERMANENT,
            source=S.TOPUP,
            external_reference="pack",
        )
        # Due already, and due while the threads run: the sweeps have work under the debits.
        for n in range(10):
            ledger_grant(
                tenant=tenant,
                credits=5,
                policy=P.MONTHLY_RESET,
                source=S.SUBSCRIPTION,
                external_reference=f"sub-{n}",
                granted_at=now - timedelta(days=30),
                expires_at=now + timedelta(milliseconds=100 * n - 300),
            )
    debits_done = threading.Event()

    def debits(tenant: Tenant, worker: int) -> Callable[[], None]:
        def spend() -> None:
            for n in range(60):
                with contextlib.suppress(InsufficientCredits):
                    ledger_debit(tenant=tenant, amount=D("0.5"), idempotency_key=f"{worker}-{n}")

        return spend

    def grants(tenant: Tenant) -> Callable[[], None]:
        def give() -> None:
            for n in range(40):
                ledger_grant(
                    tenant=tenant,
                    credits=1,
                    policy=P.ROLLING_12M,
                    source=S.CONTRACT,
                    external_reference=f"c-{n}",
                    price_minor=10,
                )

        return give

    def sweep() -> None:
        while not debits_done.is_set():
            ledger_expire_due(exclusive=False)

    sweeps = Workers()
    for _ in range(2):
        sweeps.start(sweep)
    workers = Workers()
    for tenant in tenants:
        for worker in range(3):
            workers.start(debits(tenant, worker))
        workers.start(grants(tenant))
    workers.join()
    debits_done.set()
    sweeps.join()

    ledger_expire_due()
    assert ledger_verify() == []
    for tenant in tenants:
        entries = LedgerEntry.objects.filter(tenant=tenant)
        total = entries.aggregate(total=Sum("amount"))["total"]
        assert (
            total
            == CreditBucket.objects.filter(tenant=tenant).aggregate(total=Sum("remaining"))["total"]
        )
        # Expired credits were never spent, and every bucket past its expiry is empty.
        assert not entries.filter(kind="debit", created_at__gte=F("bucket__expires_at")).exists()
        assert not CreditBucket.objects.filter(
            tenant=tenant, remaining__gt=0, expires_at__lte=timezone.now()
        ).exists()


def _due_buckets(count_tenants: int, per_tenant: int) -> int:
    now = timezone.now()
    for _ in range(count_tenants):
        tenant = tenant_make()
        for n in range(per_tenant):
            ledger_grant(
                tenant=tenant,
                credits=3,
                policy=P.MONTHLY_RESET,
                source=S.SUBSCRIPTION,
                external_reference=f"sub-{n}",
                granted_at=now - timedelta(days=31),
                expires_at=now - timedelta(days=1),
            )
    return count_tenants * per_tenant


def _two_sweeps_at_once(*, exclusive: bool) -> list[int]:
    """Two sweeps started together in threads (chunks of 7 tenants); what each expired."""
    counts: list[int] = []
    start = threading.Barrier(2)

    def sweep() -> None:
        start.wait()
        counts.append(ledger_expire_due(exclusive=exclusive, batch_size=7))

    workers = Workers()
    workers.start(sweep)
    workers.start(sweep)
    workers.join()
    return counts


@pytest.mark.parametrize("exclusive", [True, False])
def test_two_sweeps_at_once_expire_each_bucket_once(exclusive: bool) -> None:
    due = _due_buckets(20, 5)
    counts = _two_sweeps_at_once(exclusive=exclusive)

    assert sum(counts) == due
    assert LedgerEntry.objects.filter(kind="expiry").count() == due
    assert ledger_verify() == []


def test_two_sweeps_at_once_over_10000_due_buckets_expire_each_once() -> None:
    now = timezone.now()
    tenants = [tenant_make() for _ in range(100)]
    due = seed_due_buckets(
        tenants, 100, granted=now - timedelta(days=31), expires=now - timedelta(days=1)
    )
    assert (due, ledger_verify()) == (10_000, [])

    counts = _two_sweeps_at_once(exclusive=False)

    assert sum(counts) == 10_000
    expiries = LedgerEntry.objects.filter(kind="expiry")
    assert expiries.count() == expiries.values("bucket").distinct().count() == 10_000
    assert expiries.aggregate(total=Sum("amount"))["total"] == D("-30000")
    assert CreditBucket.objects.filter(remaining__gt=0).count() == 0
    assert ledger_verify() == []
    assert [available_get(tenant=t) for t in tenants[:3]] == [D(0)] * 3


def test_a_sweep_skips_while_another_holds_the_advisory_lock() -> None:
    due = _due_buckets(3, 2)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [SWEEP_LOCK_KEY])
    try:
        counts: list[int] = []
        workers = Workers()
        workers.start(lambda: counts.append(ledger_expire_due()))
        workers.join()
        assert counts == [0]
        assert LedgerEntry.objects.filter(kind="expiry").count() == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])
    assert ledger_expire_due() == due
