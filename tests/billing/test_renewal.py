"""Plan renewal: one monthly_reset bucket per subscription and period, anchor on the 31st."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import Plan, Subscription
from billing.services import subscription_renew_due, subscription_start
from ledger.models import CreditBucket
from ledger.selectors import balance_get
from ledger.services import ledger_expire_due
from tenants.models import Tenant
from tests.billing.conftest import run_concurrently


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def buckets(tenant: Tenant) -> list[tuple[str, Decimal, datetime | None]]:
    return list(
        CreditBucket.objects.filter(tenant=tenant, source="subscription")
        .order_by("granted_at", "id")
        .values_list("external_reference", "granted", "expires_at")
    )


@pytest.mark.django_db
def test_anchor_on_the_31st_grants_one_bucket_per_period(
    tenant: Tenant, plans: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 31), tick=False) as clock:
        sub = subscription_start(tenant=tenant, plan=plans["pro"])
        assert (sub.current_period_start, sub.current_period_end) == (
            at(2026, 1, 31),
            at(2026, 2, 28),
        )
        assert balance_get(tenant=tenant).available == Decimal("750")

        for moment in [at(2026, 2, 1), at(2026, 2, 28, 9)]:
            clock.move_to(moment)
            assert subscription_renew_due() == 0

        clock.move_to(at(2026, 2, 28))
        assert subscription_renew_due() == 1
        assert subscription_renew_due() == 0  # a second run in the same period grants nothing
        clock.move_to(at(2026, 3, 31))
        assert subscription_renew_due() == 1
        clock.move_to(at(2026, 4, 30, 11))
        assert subscription_renew_due() == 1
        assert subscription_renew_due() == 0

        ref = f"sub:{sub.pk}"
        assert buckets(tenant) == [
            (f"{ref}:0", Decimal("750.0000"), at(2026, 2, 28)),
            (f"{ref}:1", Decimal("750.0000"), at(2026, 3, 31)),
            (f"{ref}:2", Decimal("750.0000"), at(2026, 4, 30)),
            (f"{ref}:3", Decimal("750.0000"), at(2026, 5, 31)),
        ]
        # Only the current period's bucket is spendable; the sweep expires the others once.
        assert balance_get(tenant=tenant).available == Decimal("750")
        assert ledger_expire_due() == 3
        assert ledger_expire_due() == 0
        sub.refresh_from_db()
        assert (sub.current_period_start, sub.current_period_end) == (
            at(2026, 4, 30),
            at(2026, 5, 31),
        )


@pytest.mark.django_db
def test_a_missed_month_grants_only_the_current_period(
    tenant: Tenant, plans: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 15), tick=False) as clock:
        sub = subscription_start(tenant=tenant, plan=plans["starter"])
        clock.move_to(at(2026, 3, 20))  # renewal did not run for two months
        assert subscription_renew_due() == 1
        assert [r for r, _, _ in buckets(tenant)] == [f"sub:{sub.pk}:0", f"sub:{sub.pk}:2"]
        assert balance_get(tenant=tenant).available == Decimal("250")


@pytest.mark.django_db
def test_changing_plan_keeps_the_old_bucket_and_grants_the_new_plan(
    tenant: Tenant, plans: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 10), tick=False):
        first = subscription_start(tenant=tenant, plan=plans["starter"])
        assert subscription_start(tenant=tenant, plan=plans["starter"]).pk == first.pk
        second = subscription_start(tenant=tenant, plan=plans["pro"])
        assert balance_get(tenant=tenant).available == Decimal("1000")
    first.refresh_from_db()
    assert first.status == Subscription.Status.CANCELED
    assert second.status == Subscription.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_two_renewal_runs_at_once_grant_once(tenant: Tenant, plans: dict[str, Plan]) -> None:
    with time_machine.travel(at(2026, 1, 31), tick=False) as clock:
        sub = subscription_start(tenant=tenant, plan=plans["pro"])
        clock.move_to(at(2026, 2, 28, 12))
        results = run_concurrently(2, lambda _: subscription_renew_due())
    assert sorted(results) == [0, 1]
    assert [r for r, _, _ in buckets(tenant)] == [f"sub:{sub.pk}:0", f"sub:{sub.pk}:1"]
