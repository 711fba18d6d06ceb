"""The debit is the hot path (every usage event pays through it): keep it lean on purpose."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from pytest_django.fixtures import Settings

from ledger.models import CreditBucket
from ledger.selectors import BUCKETS_EMBEDDED, available_get, balance_get, ledger_verify
from ledger.services import ledger_debit
from tenants.events import balance_changed, receivers_replaced
from tenants.models import Tenant
from tests.ledger.factories import bucket_make
from tests.ledger.helpers import seed_due_buckets

pytestmark = pytest.mark.django_db


def test_a_debit_is_one_statement_inside_a_callers_transaction_too(
    tenant: Tenant, settings: Settings
) -> None:
    # The ledger's own statements only: listeners belong to the apps that register them.
    bucket_make(tenant=tenant, credits=100)
    bucket_make(tenant=tenant, credits=100, policy=CreditBucket.Policy.PERMANENT, price_minor=900)

    with (
        receivers_replaced(balance_changed),
        transaction.atomic(),
        CaptureQueriesContext(connection) as queries,
    ):
        ledger_debit(tenant=tenant, amount=Decimal("150"), idempotency_key="hot-1")

    statements = [q["sql"] for q in queries.captured_queries]
    # The ledger's SQL function locks, replays, draws and writes in one call, whether the
    # debit splits across buckets or not; no savepoint (it writes nothing before a refusal).
    assert len(statements) == 1, "\n".join(statements)
    assert statements[0].startswith("SELECT * FROM ledger_debit_batch(")
    assert available_get(tenant=tenant) == Decimal("50")


def test_a_balance_read_costs_the_same_statements_at_1_and_1000_live_buckets(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    now = timezone.now()
    seed_due_buckets([tenant], 1, granted=now, expires=now + timedelta(days=30))
    seed_due_buckets([other_tenant], 1000, granted=now, expires=now + timedelta(days=30))
    assert ledger_verify() == []
    counts = []
    for who in (tenant, other_tenant):
        with CaptureQueriesContext(connection) as queries:
            balance = balance_get(tenant=who)
        counts.append(len(queries.captured_queries))
    # The numbers in one statement (ledger.selectors._BALANCE), the first buckets in another.
    assert counts == [2, 2]
    assert (balance.available, balance.by_policy["monthly_reset"]) == (Decimal(3000), Decimal(3000))
    assert len(balance.buckets) == BUCKETS_EMBEDDED


def test_ledger_verify_checks_the_account_totals(tenant: Tenant) -> None:
    bucket_make(tenant=tenant, credits=10)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_creditaccount SET permanent_total = 12 WHERE tenant_id = %s",
            [tenant.pk],
        )

    (mismatch,) = ledger_verify()

    assert (mismatch.what, mismatch.cached, mismatch.computed) == (
        "account permanent_total",
        Decimal("12.0000"),
        Decimal("10.0000"),
    )


def _updates(table: str) -> tuple[int, int]:
    """This transaction's updates of `table` so far, and how many of them were HOT."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [table],
        )
        (row,) = cursor.fetchall()
    return row


def test_a_debit_updates_its_bucket_and_account_without_touching_their_indexes(
    tenant: Tenant,
) -> None:
    # HOT updates (ledger/migrations/0012): no new index entries, no dead ones left behind for
    # the next debit's index scans to walk. A debit that spends a bucket's last credit flips
    # its `unspent` and may not be HOT; one that leaves credits in it must be.
    bucket_make(tenant=tenant, credits=100)
    with receivers_replaced(balance_changed), transaction.atomic():
        buckets, accounts = _updates("ledger_creditbucket"), _updates("ledger_creditaccount")
        for n in range(3):
            ledger_debit(tenant=tenant, amount=Decimal("10"), idempotency_key=f"hot-{n}")
        after = _updates("ledger_creditbucket"), _updates("ledger_creditaccount")

    changed = [(a[0] - b[0], a[1] - b[1]) for a, b in zip(after, (buckets, accounts), strict=True)]
    assert changed == [(3, 3), (3, 3)]
    assert available_get(tenant=tenant) == Decimal("70")


def test_a_balance_read_before_the_sweep_leaves_out_what_expired_in_every_policy(
    tenant: Tenant,
) -> None:
    now = timezone.now()
    month, year = CreditBucket.Policy.MONTHLY_RESET, CreditBucket.Policy.ROLLING_12M
    for policy, credits, expires in (
        (month, 10, now - timedelta(days=1)),  # expired, not swept
        (month, 20, now + timedelta(days=3)),
        (year, 30, now - timedelta(hours=1)),  # expired, not swept
        (year, 40, now + timedelta(days=3)),  # expires with the monthly one: the next expiry
        (year, 50, now + timedelta(days=9)),
    ):
        bucket_make(
            tenant=tenant,
            credits=credits,
            policy=policy,
            granted_at=now - timedelta(days=20),
            expires_at=expires,
        )
    bucket_make(tenant=tenant, credits=5)  # permanent

    balance = balance_get(tenant=tenant, at=now)

    assert balance.by_policy == {"monthly_reset": 20, "permanent": 5, "rolling_12m": 90}
    assert (balance.available, balance.next_expiry_amount) == (115, 60)
    assert balance.next_expiry_at == now + timedelta(days=3)
    assert [b.remaining for b in balance.buckets] == [20, 40, 50, 5]
