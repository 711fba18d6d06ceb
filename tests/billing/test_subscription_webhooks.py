"""A subscription's outgoing webhooks: activated (first invoice paid), renewed (a later
period's invoice paid), past_due (a renewal declined) and canceled, each once, as domain events
that billing's receiver writes to the outbox for the webhook fan-out."""

from datetime import timedelta
from typing import Any

import pytest
import time_machine

from billing.gateways.fake import FakeGateway
from billing.models import Plan, SubscriptionInvoice
from billing.services.subscriptions import (
    subscription_cancel,
    subscription_create,
    subscription_renew_due,
    subscription_start,
)
from tenants.models import Tenant
from tenants.outbox import OutboxMessage
from tests.billing.test_subscriptions import at, fail_payments, priced  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def published(tenant: Tenant) -> list[tuple[str, dict[str, Any]]]:
    messages = OutboxMessage.objects.filter(
        task="billing.webhook_fanout", kwargs__tenant_id=tenant.pk
    ).order_by("id")
    return [
        (m.kwargs["type"], m.kwargs["data"])
        for m in messages
        if m.kwargs["type"].startswith("subscription.")
    ]


def test_activated_past_due_renewed_and_canceled(tenant: Tenant, priced: dict[str, Plan]) -> None:  # noqa: F811
    with time_machine.travel(at(2026, 1, 31), tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=priced["pro"])
        fail_payments(sub)
        clock.move_to(at(2026, 2, 28, 11))  # the renewal is declined
        subscription_renew_due()
        subscription_renew_due()
        renewal = SubscriptionInvoice.objects.get(subscription=sub, period_index=1)
        FakeGateway.invoice_pay(reference=sub.gateway_reference, invoice=renewal.gateway_reference)
        clock.move_to(at(2026, 2, 28, 11) + timedelta(minutes=15))
        subscription_renew_due()
        subscription_cancel(tenant=tenant)
        clock.move_to(at(2026, 3, 31, 11))  # the period ends: the gateway cancels it
        subscription_renew_due()
        subscription_renew_due()

    events = published(tenant)
    assert [kind for kind, _ in events] == [
        "subscription.activated",
        "subscription.past_due",
        "subscription.renewed",
        "subscription.canceled",
    ]
    activated, past_due, renewed, canceled = (data for _, data in events)
    assert activated == {
        "subscription_id": sub.pk,
        "plan": "pro",
        "seats": 1,
        "status": "active",
        "currency": "USD",
        "current_period_start": "2026-01-31T10:00:00+00:00",
        "current_period_end": "2026-02-28T10:00:00+00:00",
        "cancel_at_period_end": False,
        "period": 0,
        "credits": "750.0000",
        "amount_minor": 7_900,
        "invoice_currency": "USD",
    }
    assert (past_due["status"], past_due["past_due_since"], past_due["runs_refused_from"]) == (
        "past_due",
        "2026-02-28T11:00:00+00:00",
        "2026-03-03T11:00:00+00:00",
    )
    assert (renewed["status"], renewed["period"], renewed["credits"]) == ("active", 1, "750.0000")
    assert renewed["current_period_end"] == "2026-03-31T10:00:00+00:00"
    assert (canceled["status"], canceled["cancel_at_period_end"]) == ("canceled", True)
    assert canceled["canceled_at"] == "2026-03-31T11:00:00+00:00"


def test_an_unlinked_subscription_announces_its_start_and_its_end(
    tenant: Tenant,
    priced: dict[str, Plan],  # noqa: F811
) -> None:
    with time_machine.travel(at(2026, 1, 10), tick=False):
        subscription_start(tenant=tenant, plan=priced["starter"])
        subscription_start(tenant=tenant, plan=priced["pro"])  # replaces it
        subscription_cancel(tenant=tenant)

    assert [(kind, data["plan"], data["status"]) for kind, data in published(tenant)] == [
        ("subscription.activated", "starter", "active"),
        ("subscription.canceled", "starter", "canceled"),
        ("subscription.activated", "pro", "active"),
        ("subscription.canceled", "pro", "canceled"),
    ]
