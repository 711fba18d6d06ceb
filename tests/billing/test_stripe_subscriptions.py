"""Subscriptions with the Stripe adapter's own code against canned Stripe responses (no
network), and Stripe's deliveries signed with the stripe package's own helper: the requests it
builds (prices, quantities, proration and payment behaviour, idempotency keys), and credits
granted only by a paid invoice, once, even when the webhook comes before its row."""

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import stripe
import time_machine
from rest_framework.test import APIClient

from billing.gateways.base import SubscriptionItems
from billing.gateways.stripe_gateway import StripeGateway
from billing.models import Plan, PlanPrice, StripeEvent, Subscription, SubscriptionInvoice
from billing.services import subscriptions as subscription_services
from billing.services.stripe_events import stripe_events_retry
from billing.services.subscriptions import subscription_create
from ledger.models import CreditBucket
from tenants.models import Tenant
from tests.billing.conftest import WEBHOOK_SECRET
from tests.billing.test_stripe_gateway import CannedHttpClient

pytestmark = pytest.mark.django_db(transaction=True)

NOW = datetime(2026, 1, 31, 10, tzinfo=UTC)
PERIOD_START, PERIOD_END = (
    int(NOW.timestamp()),
    int(datetime(2026, 2, 28, 10, tzinfo=UTC).timestamp()),
)


def stripe_invoice(
    *,
    id: str = "in_1",
    status: str = "paid",
    reason: str = "subscription_create",
    amount: int = 7_900,
    attempted: bool = True,
    subscription: str = "sub_1",
    metadata: dict[str, str] | None = None,
    start: int = PERIOD_START,
) -> dict[str, Any]:
    return {
        "id": id,
        "object": "invoice",
        "status": status,
        "billing_reason": reason,
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "currency": "usd",
        "attempted": attempted,
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{id}",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription, "metadata": metadata or {}},
        },
        "lines": {
            "object": "list",
            "data": [
                {"id": "il_1", "object": "line_item", "period": {"start": start, "end": PERIOD_END}}
            ],
        },
    }


def stripe_subscription(
    *, status: str = "active", latest_invoice: dict[str, Any] | None = None, seats: int = 0
) -> dict[str, Any]:
    item = {"current_period_start": PERIOD_START, "current_period_end": PERIOD_END}
    items = [
        {
            "id": "si_base",
            "object": "subscription_item",
            "price": {"id": "price_base", "object": "price"},
            "quantity": 1,
            "metadata": {"creditline_item": "base"},
            **item,
        }
    ]
    if seats:  # listed first: the items are told apart by their label, not their order
        seat = {
            "id": "si_seat",
            "object": "subscription_item",
            "price": {"id": "price_seat", "object": "price"},
            "quantity": seats,
            "metadata": {"creditline_item": "seat"},
        }
        items.insert(0, {**seat, **item})
    return {
        "id": "sub_1",
        "object": "subscription",
        "status": status,
        "schedule": None,
        "items": {"object": "list", "data": items},
        "latest_invoice": latest_invoice,
    }


@pytest.fixture
def team(db: None) -> Plan:
    plan = Plan.objects.create(
        slug="team",
        name="Team",
        price_minor=7_900,
        included_credits=Decimal("750"),
        credits_per_seat=Decimal("50"),
    )
    PlanPrice.objects.create(
        plan=plan,
        currency="USD",
        base_minor=7_900,
        per_seat_minor=1_000,
        stripe_base_price_id="price_base",
        stripe_seat_price_id="price_seat",
    )
    return plan


def items(plan: Plan, seats: int) -> SubscriptionItems:
    return SubscriptionItems(plan=plan, price=plan.prices.get(currency="USD"), seats=seats)


def test_create_sends_both_prices_with_seats_and_reads_the_answer(team: Plan) -> None:
    http = CannedHttpClient([(200, stripe_subscription(latest_invoice=stripe_invoice(), seats=3))])
    state = StripeGateway(http).subscription_create(
        tenant_id=7,
        subscription_id=5,
        customer_id="cus_1",
        payment_method_id="pm_1",
        items=items(team, 3),
        idempotency_key="subscription:5",
    )

    sent = http.sent[0]
    assert (sent["method"], sent["url"]) == ("post", "https://api.stripe.com/v1/subscriptions")
    assert sent["headers"]["Idempotency-Key"] == "subscription:5"
    assert sent["form"] == {
        "customer": ["cus_1"],
        "items[0][price]": ["price_base"],
        "items[0][quantity]": ["1"],
        "items[0][metadata][creditline_item]": ["base"],
        "items[1][price]": ["price_seat"],
        "items[1][quantity]": ["3"],
        "items[1][metadata][creditline_item]": ["seat"],
        "collection_method": ["charge_automatically"],
        "payment_behavior": ["allow_incomplete"],
        "metadata[tenant_id]": ["7"],
        "metadata[subscription_id]": ["5"],
        "expand[0]": ["latest_invoice"],
        "default_payment_method": ["pm_1"],
    }
    assert (state.reference, state.status, state.items) == (
        "sub_1",
        "active",
        {"base": "si_base", "seat": "si_seat"},
    )
    assert (state.period_start, state.period_end) == (NOW, datetime(2026, 2, 28, 10, tzinfo=UTC))
    (invoice,) = state.invoices
    assert (invoice.reference, invoice.status, invoice.reason, invoice.amount_minor) == (
        "in_1",
        "paid",
        "subscription_create",
        7_900,
    )
    assert (invoice.subscription_reference, invoice.currency, invoice.failed) == (
        "sub_1",
        "USD",
        False,
    )


def test_an_upgrade_is_invoiced_at_once_and_pending_if_unpaid(team: Plan) -> None:
    declined = stripe_invoice(id="in_2", status="open", reason="subscription_update", amount=1_000)
    now = stripe_subscription(seats=3)
    http = CannedHttpClient(
        [(200, now), (200, stripe_subscription(latest_invoice=declined, seats=3))]
    )
    invoice = StripeGateway(http).subscription_change_now(
        reference="sub_1", items=items(team, 5), idempotency_key="subchange:5:abc"
    )

    assert http.sent[0]["url"] == "https://api.stripe.com/v1/subscriptions/sub_1"  # its items now
    sent = http.sent[1]
    assert sent["url"] == "https://api.stripe.com/v1/subscriptions/sub_1"
    assert sent["headers"]["Idempotency-Key"] == "subchange:5:abc"
    assert sent["form"] == {
        "items[0][id]": ["si_base"],
        "items[0][price]": ["price_base"],
        "items[1][id]": ["si_seat"],
        "items[1][price]": ["price_seat"],
        "items[1][quantity]": ["5"],
        "proration_behavior": ["always_invoice"],
        "payment_behavior": ["pending_if_incomplete"],
        "expand[0]": ["latest_invoice"],
    }
    assert (invoice.reference, invoice.status, invoice.failed, invoice.amount_minor) == (
        "in_2",
        "open",
        True,
        1_000,
    )


def test_fewer_seats_wait_for_the_period_end_in_a_schedule(team: Plan) -> None:
    phase = {"start_date": PERIOD_START, "end_date": PERIOD_END}
    schedule = {"id": "sub_sched_1", "object": "subscription_schedule", "phases": [phase]}
    http = CannedHttpClient([(200, schedule), (200, schedule)])
    made = StripeGateway(http).subscription_change_at_period_end(
        reference="sub_1",
        schedule="",
        current=items(team, 5),
        items=items(team, 2),
        idempotency_key="subschedule:5:x",
    )

    assert made == "sub_sched_1"
    create, update = http.sent
    assert create["form"] == {"from_subscription": ["sub_1"]}
    assert create["headers"]["Idempotency-Key"] == "subschedule:5:x:schedule"
    assert update["url"] == "https://api.stripe.com/v1/subscription_schedules/sub_sched_1"
    assert update["form"]["phases[0][items][1][quantity]"] == ["5"]
    assert update["form"]["phases[0][end_date]"] == [str(PERIOD_END)]
    assert update["form"]["phases[1][items][1][quantity]"] == ["2"]
    assert update["form"]["phases[1][proration_behavior]"] == ["none"]
    assert update["form"]["end_behavior"] == ["release"]


def deliver(event_type: str, obj: dict[str, Any], event_id: str) -> int:
    payload = json.dumps(
        {"id": event_id, "object": "event", "type": event_type, "data": {"object": obj}}
    )
    header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)
    response = APIClient().post(
        "/api/v1/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
    return response.status_code


@pytest.fixture
def stripe_billing(settings: Any, monkeypatch: pytest.MonkeyPatch) -> CannedHttpClient:
    """The services talk to the Stripe adapter, whose HTTP client answers canned JSON."""
    settings.BILLING_GATEWAY = "stripe"
    http = CannedHttpClient([])
    monkeypatch.setattr(subscription_services, "gateway_get", lambda name=None: StripeGateway(http))
    return http


def subscribe_unpaid(tenant: Tenant, team: Plan, http: CannedHttpClient) -> Subscription:
    declined = stripe_invoice(status="open")
    http.answers[:] = [
        (200, {"id": "cus_1", "object": "customer"}),
        (200, stripe_subscription(status="incomplete", latest_invoice=declined, seats=2)),
    ]
    with time_machine.travel(NOW, tick=False):
        sub = subscription_create(tenant=tenant, plan=team, seats=2)
    assert http.answers == []
    return sub


def sub_credits(tenant: Tenant) -> list[tuple[str, Decimal]]:
    return list(
        CreditBucket.objects.filter(tenant=tenant, source="subscription").values_list(
            "external_reference", "granted"
        )
    )


def test_credits_come_with_the_signed_invoice_paid_once(
    tenant: Tenant, team: Plan, stripe_billing: CannedHttpClient
) -> None:
    sub = subscribe_unpaid(tenant, team, stripe_billing)
    assert (sub.status, sub.gateway_reference) == ("incomplete", "sub_1")
    assert sub_credits(tenant) == []

    paid = stripe_invoice(metadata={"subscription_id": str(sub.pk), "tenant_id": str(tenant.pk)})
    with time_machine.travel(NOW, tick=False):
        assert deliver("invoice.paid", paid, "evt_paid") == 200
        assert deliver("invoice.paid", paid, "evt_paid") == 200  # Stripe retries
        assert deliver("invoice.paid", paid, "evt_paid_again") == 200  # and duplicates

    sub.refresh_from_db()
    assert sub.status == Subscription.Status.ACTIVE
    assert sub_credits(tenant) == [(f"sub:{sub.pk}:0", Decimal("850.0000"))]  # 750 + 2 x 50
    assert SubscriptionInvoice.objects.get(subscription=sub).hosted_url == (
        "https://invoice.stripe.com/i/in_1"
    )


def test_a_failed_renewal_goes_past_due_then_paid_grants_once(
    tenant: Tenant, team: Plan, stripe_billing: CannedHttpClient
) -> None:
    sub = subscribe_unpaid(tenant, team, stripe_billing)
    next_start = PERIOD_END
    with time_machine.travel(NOW, tick=False) as clock:
        deliver("invoice.paid", stripe_invoice(), "evt_first")
        clock.move_to(datetime(2026, 2, 28, 11, tzinfo=UTC))
        renewal = stripe_invoice(
            id="in_renewal", status="open", reason="subscription_cycle", start=next_start
        )
        assert deliver("invoice.payment_failed", renewal, "evt_failed") == 200
        sub.refresh_from_db()
        tenant.refresh_from_db()
        assert (sub.status, tenant.runs_refused_from) == (
            "past_due",
            datetime(2026, 3, 3, 11, tzinfo=UTC),
        )
        assert sub_credits(tenant) == [(f"sub:{sub.pk}:0", Decimal("850.0000"))]

        clock.move_to(datetime(2026, 3, 1, 9, tzinfo=UTC))
        paid = stripe_invoice(id="in_renewal", reason="subscription_cycle", start=next_start)
        assert deliver("invoice.paid", paid, "evt_renewal_paid") == 200
        assert deliver("invoice.paid", paid, "evt_renewal_paid_dup") == 200

    sub.refresh_from_db()
    tenant.refresh_from_db()
    assert (sub.status, sub.past_due_since, tenant.runs_refused_from) == ("active", None, None)
    assert sorted(sub_credits(tenant)) == [
        (f"sub:{sub.pk}:0", Decimal("850.0000")),
        (f"sub:{sub.pk}:1", Decimal("850.0000")),
    ]


def test_a_webhook_before_its_row_is_retried_not_dropped(tenant: Tenant, team: Plan) -> None:
    # The subscription's row exists but the gateway's answer (its reference) is not recorded
    # yet: Stripe's invoice.paid overtook it.
    sub = Subscription.objects.create(
        tenant=tenant,
        plan=team,
        seats=1,
        currency="USD",
        anchor=NOW,
        status=Subscription.Status.INCOMPLETE,
        current_period_start=NOW,
        current_period_end=datetime(2026, 2, 28, 10, tzinfo=UTC),
        gateway="stripe",
    )
    paid = stripe_invoice(metadata={"subscription_id": str(sub.pk)})
    with time_machine.travel(NOW, tick=False) as clock:
        assert deliver("invoice.paid", paid, "evt_early") == 200
        event = StripeEvent.objects.get(event_id="evt_early")
        assert event.processed_at is None
        assert (
            event.error == f"InvoiceTooEarly: Subscription {sub.pk} has no gateway reference yet."
        )
        assert sub_credits(tenant) == []

        Subscription.objects.filter(pk=sub.pk).update(gateway_reference="sub_1")
        clock.shift(60)
        assert stripe_events_retry(older_than_seconds=0) == 1
        assert stripe_events_retry(older_than_seconds=0) == 0

    event.refresh_from_db()
    assert (event.processed_at is not None, event.error) == (True, "")
    assert sub_credits(tenant) == [(f"sub:{sub.pk}:0", Decimal("800.0000"))]


def test_a_cancelled_subscription_grants_nothing(
    tenant: Tenant, team: Plan, stripe_billing: CannedHttpClient
) -> None:
    sub = subscribe_unpaid(tenant, team, stripe_billing)
    with time_machine.travel(NOW, tick=False):
        gone = stripe_subscription(status="canceled", seats=2)
        assert deliver("customer.subscription.deleted", gone, "evt_deleted") == 200
        assert deliver("invoice.paid", stripe_invoice(), "evt_late_paid") == 200
    sub.refresh_from_db()
    assert sub.status == Subscription.Status.CANCELED
    assert sub_credits(tenant) == []


def test_a_gateway_error_grants_nothing_and_leaves_no_live_row(
    tenant: Tenant, team: Plan, stripe_billing: CannedHttpClient, api_client: APIClient
) -> None:
    refusal = {"error": {"type": "invalid_request_error", "message": "No such price: price_base"}}
    stripe_billing.answers[:] = [(200, {"id": "cus_1", "object": "customer"}), (400, refusal)]
    response = api_client.post("/api/v1/subscription", {"plan": "team"}, format="json")

    assert response.status_code == 502
    assert response.json()["error"]["code"] == "payment_gateway_error"
    assert list(Subscription.objects.filter(tenant=tenant).values_list("status", flat=True)) == [
        "canceled"
    ]
    assert sub_credits(tenant) == []

    # Later, subscribed and paid; an upgrade the gateway refuses leaves it as it was.
    stripe_billing.answers[:] = [
        (200, stripe_subscription(latest_invoice=stripe_invoice(), seats=1))
    ]
    with time_machine.travel(NOW, tick=False):
        sub = subscription_create(tenant=tenant, plan=team, seats=1)
        stripe_billing.answers[:] = [(400, refusal)]
        refused = api_client.patch("/api/v1/subscription", {"seats": 4}, format="json")
    assert refused.status_code == 502
    sub.refresh_from_db()
    assert sub.seats == 1
    change = SubscriptionInvoice.objects.get(subscription=sub, kind="change")
    assert (change.status, change.credits) == ("void", None)
    assert sub_credits(tenant) == [(f"sub:{sub.pk}:0", Decimal("800.0000"))]


def test_a_creation_without_an_answer_is_asked_again_with_the_same_key(
    tenant: Tenant, team: Plan, stripe_billing: CannedHttpClient, api_client: APIClient
) -> None:
    from billing.services.subscriptions import subscription_renew_due

    outage = {"error": {"type": "api_error", "message": "An error occurred with our API."}}
    stripe_billing.answers[:] = [(200, {"id": "cus_1", "object": "customer"})] + [(503, outage)] * 3
    with time_machine.travel(NOW, tick=False) as clock:
        response = api_client.post("/api/v1/subscription", {"plan": "team"}, format="json")
        assert response.status_code == 502
        # Stripe may have made it: the row waits, incomplete and unlinked (a second subscribe
        # is refused meanwhile), and nothing is granted.
        sub = Subscription.objects.get(tenant=tenant)
        assert (sub.status, sub.gateway_reference) == ("incomplete", "")
        again = api_client.post("/api/v1/subscription", {"plan": "team"}, format="json")
        assert again.json()["error"]["code"] == "subscription_exists"
        assert sub_credits(tenant) == []

        clock.shift(60)
        assert subscription_renew_due() == 0  # its request may still be on its way
        clock.shift(120)
        stripe_billing.answers[:] = [
            (200, stripe_subscription(latest_invoice=stripe_invoice(), seats=1))
        ]
        assert subscription_renew_due() == 1
        assert subscription_renew_due() == 0

    retried = stripe_billing.sent[-1]
    assert retried["headers"]["Idempotency-Key"] == f"subscription:{sub.pk}"
    assert all(
        s["headers"]["Idempotency-Key"] == f"subscription:{sub.pk}"
        for s in stripe_billing.sent
        if s["url"].endswith("/v1/subscriptions")
    )
    sub.refresh_from_db()
    assert (sub.status, sub.gateway_reference) == ("active", "sub_1")
    assert sub_credits(tenant) == [(f"sub:{sub.pk}:0", Decimal("800.0000"))]


def test_an_upgrade_without_an_answer_is_applied_when_its_invoice_turns_up(
    tenant: Tenant, team: Plan, stripe_billing: CannedHttpClient, api_client: APIClient
) -> None:
    from billing.services.subscriptions import subscription_renew_due

    outage = {"error": {"type": "api_error", "message": "An error occurred with our API."}}
    half = datetime(2026, 2, 14, 10, tzinfo=UTC)  # half of the 28-day period left
    upgrade = stripe_invoice(id="in_up", reason="subscription_update", amount=1_500)
    stripe_billing.answers[:] = [
        (200, {"id": "cus_1", "object": "customer"}),
        (200, stripe_subscription(latest_invoice=stripe_invoice(), seats=1)),
    ]
    with time_machine.travel(NOW, tick=False) as clock:
        sub = subscription_create(tenant=tenant, plan=team, seats=1)
        clock.move_to(half)
        stripe_billing.answers[:] = [(503, outage)] * 3
        refused = api_client.patch("/api/v1/subscription", {"seats": 4}, format="json")
        assert refused.status_code == 502
        change = SubscriptionInvoice.objects.get(subscription=sub, kind="change")
        assert (change.status, change.gateway_reference) == ("requested", "")

        clock.shift(300)  # the sweep finds the invoice Stripe did make, paid
        listing = {"object": "list", "data": [upgrade], "has_more": False, "url": "/v1/invoices"}
        stripe_billing.answers[:] = [(200, stripe_subscription(seats=4)), (200, listing)]
        assert subscription_renew_due() == 1

    sub.refresh_from_db()
    change.refresh_from_db()
    assert (sub.seats, change.status, change.gateway_reference) == (4, "paid", "in_up")
    assert change.credits == Decimal("75.0000")  # 3 seats x 50 x 1/2
    assert sorted(sub_credits(tenant)) == [
        (f"sub:{sub.pk}:0", Decimal("800.0000")),
        (f"sub:{sub.pk}:0:change:{change.pk}", Decimal("75.0000")),
    ]
