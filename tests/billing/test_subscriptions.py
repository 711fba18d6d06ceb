"""Subscriptions through the gateway (the fake plays Stripe Billing's lifecycle): a period's
credits come when its invoice is paid, never before; a declined renewal goes past_due and,
after the grace days, refuses new workflow runs; upgrades and added seats grant their prorated
credits when paid; downgrades and fewer seats wait for the period end."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.gateways.fake import FakeGateway
from billing.models import CreditPack, Plan, PlanPrice, Subscription, SubscriptionInvoice
from billing.services.subscriptions import (
    subscription_cancel,
    subscription_change,
    subscription_create,
    subscription_renew_due,
)
from ledger.models import CreditBucket, LedgerTransaction
from ledger.selectors import balance_get
from tenants.models import Tenant
from tests.billing.conftest import grant
from tests.metering.test_workflow_past_due import past_due_body


def at(year: int, month: int, day: int, hour: int = 10) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


def available(tenant: Tenant) -> Decimal:
    return balance_get(tenant=tenant).available


def buckets(tenant: Tenant) -> list[tuple[str, Decimal]]:
    return list(
        CreditBucket.objects.filter(tenant=tenant, source="subscription")
        .order_by("id")
        .values_list("external_reference", "granted")
    )


@pytest.fixture
def priced(plans: dict[str, Plan]) -> dict[str, Plan]:
    """The catalogue with USD prices, and a per-seat plan: 100 credits + 50 per seat."""
    team = Plan.objects.create(
        slug="team",
        name="Team",
        price_minor=2_000,
        included_credits=Decimal("100"),
        credits_per_seat=Decimal("50"),
    )
    plans = {**plans, "team": team}
    for plan in plans.values():
        PlanPrice.objects.create(
            plan=plan,
            currency="USD",
            base_minor=plan.price_minor,
            per_seat_minor=1_000 if plan.slug == "team" else 0,
        )
    return plans


def fail_payments(sub: Subscription, fail: bool = True) -> None:
    FakeGateway.payments_fail(reference=sub.gateway_reference, fail=fail)


@pytest.mark.django_db(transaction=True)
def test_a_paid_first_invoice_grants_the_period(tenant: Tenant, priced: dict[str, Plan]) -> None:
    with time_machine.travel(at(2026, 1, 31), tick=False):
        sub = subscription_create(tenant=tenant, plan=priced["pro"])

    assert (sub.status, sub.gateway, sub.seats) == (Subscription.Status.ACTIVE, "fake", 1)
    assert (sub.current_period_start, sub.current_period_end) == (at(2026, 1, 31), at(2026, 2, 28))
    assert buckets(tenant) == [(f"sub:{sub.pk}:0", Decimal("750.0000"))]
    invoice = SubscriptionInvoice.objects.get(subscription=sub)
    assert (invoice.kind, invoice.status, invoice.amount_minor, invoice.credits) == (
        "period",
        "paid",
        7_900,
        Decimal("750.0000"),
    )
    grant = LedgerTransaction.objects.get(tenant=tenant, kind="grant")
    assert grant.memo == "Pro x 1 seat(s): period 1 (2026-01-31 to 2026-02-28)"


@pytest.mark.django_db(transaction=True)
def test_a_declined_first_invoice_grants_nothing(tenant: Tenant, priced: dict[str, Plan]) -> None:
    from billing.services.topups import billing_customer_save

    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id="pm_fake_declined"
    )
    with time_machine.travel(at(2026, 1, 10), tick=False):
        sub = subscription_create(tenant=tenant, plan=priced["pro"])

    assert sub.status == Subscription.Status.INCOMPLETE
    assert buckets(tenant) == []
    assert available(tenant) == Decimal("0")


@pytest.mark.django_db(transaction=True)
def test_renewal_with_a_failing_gateway_grants_nothing_then_once_when_paid(
    tenant: Tenant, priced: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 31), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["pro"])
        fail_payments(sub)

        clock.move_to(at(2026, 2, 28, 11))  # the period ended; its renewal is declined
        assert subscription_renew_due() == 0
        assert subscription_renew_due() == 0
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.PAST_DUE
        assert sub.past_due_since == at(2026, 2, 28, 11)
        assert available(tenant) == Decimal("0")  # period 0's credits expired, none granted
        assert buckets(tenant) == [(f"sub:{sub.pk}:0", Decimal("750.0000"))]
        renewal = SubscriptionInvoice.objects.get(subscription=sub, period_index=1)
        assert (renewal.status, renewal.credits) == ("failed", None)
        tenant.refresh_from_db()
        assert tenant.runs_refused_from == at(2026, 3, 3, 11)  # three grace days

        clock.move_to(at(2026, 3, 2))  # the customer pays the open invoice
        FakeGateway.invoice_pay(reference=sub.gateway_reference, invoice=renewal.gateway_reference)
        assert subscription_renew_due() == 1
        assert subscription_renew_due() == 0

    sub.refresh_from_db()
    tenant.refresh_from_db()
    assert (sub.status, sub.past_due_since, tenant.runs_refused_from) == ("active", None, None)
    assert buckets(tenant) == [
        (f"sub:{sub.pk}:0", Decimal("750.0000")),
        (f"sub:{sub.pk}:1", Decimal("750.0000")),
    ]
    with time_machine.travel(at(2026, 3, 2), tick=False):
        assert available(tenant) == Decimal("750")


@pytest.mark.django_db(transaction=True)
def test_past_due_beyond_grace_refuses_a_workflow_start(
    tenant: Tenant, priced: dict[str, Plan], api_client: APIClient
) -> None:
    grant(tenant, 1000, "promo-1")  # the tenant has credits to spend meanwhile
    with time_machine.travel(at(2026, 1, 31), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["pro"])
        fail_payments(sub)
        clock.move_to(at(2026, 2, 28, 11))
        subscription_renew_due()

        clock.move_to(at(2026, 3, 3, 10))  # within the grace days: it keeps spending
        started = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
        assert started.status_code == 201, started.json()

        clock.move_to(at(2026, 3, 3, 11))  # grace over
        refused = api_client.post("/api/v1/workflows", {"external_id": "job-2"}, format="json")
        assert refused.status_code == 402
        assert refused.json() == past_due_body("2026-03-03T11:00:00+00:00")

        renewal = SubscriptionInvoice.objects.get(subscription=sub, period_index=1)
        FakeGateway.invoice_pay(reference=sub.gateway_reference, invoice=renewal.gateway_reference)
        assert subscription_renew_due() == 1
        again = api_client.post("/api/v1/workflows", {"external_id": "job-2"}, format="json")
        assert again.status_code == 201, again.json()


@pytest.mark.django_db(transaction=True)
def test_seats_times_credits_per_seat(tenant: Tenant, priced: dict[str, Plan]) -> None:
    team = priced["team"]
    with time_machine.travel(at(2026, 4, 1, 0), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=team, seats=3)
        assert buckets(tenant) == [(f"sub:{sub.pk}:0", Decimal("250.0000"))]  # 100 + 3 x 50

        clock.move_to(at(2026, 4, 16, 0))  # half of April's 30 days left
        sub = subscription_change(tenant=tenant, plan=team, seats=5)
        assert sub.seats == 5
        change = SubscriptionInvoice.objects.get(subscription=sub, kind="change")
        assert (change.status, change.fraction, change.credits) == (
            "paid",
            Decimal("0.500000"),
            Decimal("50.0000"),  # 2 seats x 50 x 1/2
        )
        assert change.amount_minor == 1_000  # 2 seats x $10 x 1/2

        clock.move_to(at(2026, 4, 20, 0))  # fewer seats wait for the period end
        sub = subscription_change(tenant=tenant, plan=team, seats=2)
        assert (sub.seats, sub.next_seats) == (5, 2)

        clock.move_to(at(2026, 5, 1, 1))
        assert subscription_renew_due() == 1

    sub.refresh_from_db()
    assert (sub.seats, sub.next_seats, sub.gateway_schedule) == (2, None, "")
    assert buckets(tenant) == [
        (f"sub:{sub.pk}:0", Decimal("250.0000")),
        (f"sub:{sub.pk}:0:change:{change.pk}", Decimal("50.0000")),
        (f"sub:{sub.pk}:1", Decimal("200.0000")),  # 100 + 2 x 50
    ]


@pytest.mark.django_db(transaction=True)
def test_an_unpaid_upgrade_changes_nothing_until_paid(
    tenant: Tenant, priced: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 1, 0), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["starter"])
        fail_payments(sub)
        clock.move_to(at(2026, 1, 11, 0))  # 21 of January's 31 days left
        sub = subscription_change(tenant=tenant, plan=priced["pro"], seats=1)
        assert sub.plan == priced["starter"]
        change = SubscriptionInvoice.objects.get(subscription=sub, kind="change")
        assert change.status == "failed"
        assert buckets(tenant) == [(f"sub:{sub.pk}:0", Decimal("250.0000"))]

        FakeGateway.invoice_pay(reference=sub.gateway_reference, invoice=change.gateway_reference)
        fail_payments(sub, fail=False)
        assert subscription_renew_due() == 1
        assert subscription_renew_due() == 0
        assert available(tenant) == Decimal("588.7095")

    sub.refresh_from_db()
    change.refresh_from_db()
    assert sub.plan == priced["pro"]
    # (750 - 250) x 21/31 (0.677419, rounded down), rounded down
    assert change.credits == Decimal("338.7095")


@pytest.mark.django_db(transaction=True)
def test_pro_starter_pro_in_one_period_grants_pro_once(
    tenant: Tenant, priced: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 10), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["pro"])
        clock.move_to(at(2026, 1, 12))
        sub = subscription_change(tenant=tenant, plan=priced["starter"], seats=1)
        assert (sub.plan, sub.next_plan) == (priced["pro"], priced["starter"])
        clock.move_to(at(2026, 1, 14))
        sub = subscription_change(tenant=tenant, plan=priced["pro"], seats=1)
        assert (sub.plan, sub.next_plan, sub.gateway_schedule) == (priced["pro"], None, "")
        assert available(tenant) == Decimal("750")
        clock.move_to(at(2026, 2, 10, 11))
        assert subscription_renew_due() == 1
        assert available(tenant) == Decimal("750")  # Pro again, not Starter


@pytest.mark.django_db(transaction=True)
def test_cancel_ends_at_the_period_end_and_grants_no_more(
    tenant: Tenant, priced: dict[str, Plan]
) -> None:
    with time_machine.travel(at(2026, 1, 10), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["pro"])
        sub = subscription_cancel(tenant=tenant)
        assert (sub.status, sub.cancel_at_period_end) == ("active", True)
        assert available(tenant) == Decimal("750")  # the paid period runs to its end
        clock.move_to(at(2026, 2, 10, 11))
        assert subscription_renew_due() == 0
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.CANCELED
        assert available(tenant) == Decimal("0")
        assert buckets(tenant) == [(f"sub:{sub.pk}:0", Decimal("750.0000"))]


@pytest.mark.django_db(transaction=True)
def test_an_old_subscription_renews_as_before_until_linked(
    tenant: Tenant, priced: dict[str, Plan]
) -> None:
    from django.core.management import call_command

    from billing.gateways.base import SubscriptionItems
    from billing.services.subscriptions import subscription_start

    with time_machine.travel(at(2026, 1, 10), tick=False) as clock:
        sub = subscription_start(tenant=tenant, plan=priced["pro"])  # unlinked: no fee
        clock.move_to(at(2026, 2, 10, 11))
        assert subscription_renew_due() == 1  # as before: granted by the sweep alone

        # The vendor made a gateway subscription for it, billing from this period on.
        made = FakeGateway().subscription_create(
            tenant_id=tenant.pk,
            subscription_id=sub.pk,
            customer_id="fcus_old",
            payment_method_id="pm_fake_declined",
            items=SubscriptionItems(plan=priced["pro"], price=priced["pro"].prices.get(), seats=1),
            idempotency_key="link-test",
        )
        call_command("subscriptions_link", tenant=tenant.slug, reference=made.reference)
        sub.refresh_from_db()
        assert (sub.gateway, sub.gateway_reference) == ("fake", made.reference)
        # Its first (declined) invoice is for the period already granted: nothing twice.
        assert buckets(tenant) == [
            (f"sub:{sub.pk}:0", Decimal("750.0000")),
            (f"sub:{sub.pk}:1", Decimal("750.0000")),
        ]

        clock.move_to(at(2026, 3, 10, 11))  # linked: a declined renewal grants nothing
        assert subscription_renew_due() == 0
        sub.refresh_from_db()
        assert sub.status == Subscription.Status.PAST_DUE
        renewal = SubscriptionInvoice.objects.get(subscription=sub, period_index=2)
        FakeGateway.invoice_pay(reference=made.reference, invoice=renewal.gateway_reference)
        assert subscription_renew_due() == 0  # asked the gateway minutes ago: not again yet
        clock.move_to(at(2026, 3, 10, 11) + timedelta(minutes=15))
        assert subscription_renew_due() == 1
        assert subscription_renew_due() == 0
    assert [ref for ref, _ in buckets(tenant)] == [f"sub:{sub.pk}:{i}" for i in range(3)]


@pytest.mark.django_db(transaction=True)
def test_auto_top_up_waits_for_a_renewal_within_the_grace_days(
    tenant: Tenant, priced: dict[str, Plan], pack: CreditPack
) -> None:
    from billing.models import TopUp
    from billing.services import auto_topup_policy_update, auto_topup_start, billing_customer_save

    with time_machine.travel(at(2026, 1, 31), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["pro"])
        billing_customer_save(
            tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id="pm_fake_visa"
        )
        auto_topup_policy_update(
            tenant=tenant,
            enabled=True,
            threshold=Decimal("100"),
            pack=pack,
            monthly_cap_minor=100_000,
        )
        fail_payments(sub)
        clock.move_to(at(2026, 2, 28, 11))  # period 0's credits expired; the renewal declined
        assert subscription_renew_due() == 0
        assert auto_topup_start(tenant=tenant).reason == "renewal_pending"

        clock.move_to(at(2026, 3, 3, 11))  # grace over: the credits are not coming
        assert auto_topup_start(tenant=tenant).reason == "started"
    assert TopUp.objects.filter(tenant=tenant, auto=True).count() == 1
