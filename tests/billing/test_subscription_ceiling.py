"""The ceiling rule, proven over random change sequences: whatever plan and seat changes a
tenant makes inside one period, in whatever order, paid or declined, paid late or never, the
credits granted for that period never exceed the highest allowance it held in it."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.gateways.fake import FakeGateway
from billing.models import Plan, PlanPrice, SubscriptionInvoice
from billing.services.subscriptions import (
    subscription_change,
    subscription_create,
    subscription_reconcile,
)
from ledger.models import CreditBucket
from tenants.services import tenant_create

START = datetime(2026, 3, 1, 0, tzinfo=UTC)  # a 31-day period
CATALOGUE = {
    # slug: (included, per seat, base fee, seat fee)
    "starter": ("250", "0", 2_900, 0),
    "pro": ("750", "0", 7_900, 0),
    "enterprise": ("5000", "0", 49_900, 0),
    "team": ("100", "50", 2_000, 1_000),
}

config = st.sampled_from(sorted(CATALOGUE)).flatmap(
    lambda slug: st.tuples(st.just(slug), st.integers(1, 6) if slug == "team" else st.just(1))
)
step = st.tuples(
    st.integers(0, 30 * 24 - 1),  # hours into the period
    config,
    st.booleans(),  # the change's invoice is paid at once
    st.booleans(),  # a declined one is paid later, before the period ends
)


def catalogue() -> dict[str, Plan]:
    plans = {}
    for slug, (included, per_seat, base, seat) in CATALOGUE.items():
        plan, created = Plan.objects.get_or_create(
            slug=slug,
            defaults={
                "name": slug.title(),
                "price_minor": base,
                "included_credits": Decimal(included),
                "credits_per_seat": Decimal(per_seat),
            },
        )
        if created:
            PlanPrice.objects.create(
                plan=plan, currency="USD", base_minor=base, per_seat_minor=seat
            )
        plans[slug] = plan
    return plans


@pytest.mark.django_db(transaction=True)
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(first=config, steps=st.lists(step, max_size=6))
def test_no_change_sequence_grants_more_than_the_highest_allowance(
    first: tuple[str, int], steps: list[tuple[int, tuple[str, int], bool, bool]]
) -> None:
    plans = catalogue()
    tenant = tenant_create(name="ceiling")
    held = [plans[first[0]].allowance(first[1])]
    with time_machine.travel(START, tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=plans[first[0]], seats=first[1])
        late: list[str] = []
        for hours, (slug, seats), paid_now, paid_later in sorted(steps, key=lambda s: s[0]):
            clock.move_to(START + timedelta(hours=hours))
            FakeGateway.payments_fail(reference=sub.gateway_reference, fail=not paid_now)
            sub = subscription_change(tenant=tenant, plan=plans[slug], seats=seats)
            held.append(sub.allowance)
            change = (
                SubscriptionInvoice.objects.filter(subscription=sub, kind="change")
                .order_by("-pk")
                .first()
            )
            if change is not None and change.status == "failed" and paid_later:
                late.append(change.gateway_reference)
        clock.move_to(START + timedelta(days=30, hours=23))
        for reference in late:
            FakeGateway.invoice_pay(reference=sub.gateway_reference, invoice=reference)
        subscription_reconcile(sub=sub)
        sub.refresh_from_db()
        held.append(sub.allowance)

    granted = CreditBucket.objects.filter(
        tenant=tenant, external_reference__startswith=f"sub:{sub.pk}:0"
    ).aggregate(total=Sum("granted"))["total"]
    assert granted <= max(held)
    assert granted >= held[0]  # the period itself was paid and granted
    assert sub.allowance == max(held)  # inside a period the allowance only rises
