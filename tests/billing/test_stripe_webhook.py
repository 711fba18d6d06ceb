"""POST /api/v1/webhooks/stripe: verified with the stripe library, stored once, processed once."""

import json
import time
from decimal import Decimal

import pytest
import stripe
from rest_framework.test import APIClient

from billing.models import CreditPack, StripeEvent, TopUp
from billing.services import topup_create
from ledger.models import CreditBucket
from ledger.selectors import balance_get
from tenants.models import Tenant
from tests.billing.conftest import WEBHOOK_SECRET, run_concurrently

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1/webhooks/stripe"


def checkout_completed(top_up: TopUp, event_id: str = "evt_1", amount: int | None = None) -> str:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_test_1",
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "amount_total": top_up.amount_minor if amount is None else amount,
                    "currency": "usd",
                    "payment_intent": "pi_test_1",
                    "metadata": {"top_up_id": str(top_up.pk), "tenant_id": str(top_up.tenant_id)},
                }
            },
        }
    )


def deliver(
    payload: str,
    *,
    secret: str = WEBHOOK_SECRET,
    timestamp: int | None = None,
    body: str | None = None,
) -> tuple[int, dict]:
    header = stripe.WebhookSignature.generate_signature_header(payload, secret, timestamp)
    response = APIClient().post(
        URL,
        data=body if body is not None else payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )
    return response.status_code, response.json()


@pytest.fixture
def top_up(tenant: Tenant, pack: CreditPack) -> TopUp:
    return topup_create(tenant=tenant, pack=pack, gateway="stripe")


def test_three_deliveries_grant_once(tenant: Tenant, top_up: TopUp) -> None:
    payload = checkout_completed(top_up)
    answers = [deliver(payload) for _ in range(3)]

    assert answers == [
        (200, {"received": True, "event": "evt_1", "duplicate": False}),
        (200, {"received": True, "event": "evt_1", "duplicate": True}),
        (200, {"received": True, "event": "evt_1", "duplicate": True}),
    ]
    top_up.refresh_from_db()
    assert (top_up.status, top_up.payment_reference) == ("succeeded", "pi_test_1")
    bucket = CreditBucket.objects.get(tenant=tenant)
    assert (bucket.external_reference, bucket.granted, bucket.policy) == (
        f"topup:{top_up.pk}",
        Decimal("500.0000"),
        "permanent",
    )
    assert bucket.cost_basis_minor == Decimal("13.00000000")  # $65.00 for 500 credits
    assert StripeEvent.objects.get().processed_at is not None


def test_two_concurrent_deliveries_grant_once(tenant: Tenant, top_up: TopUp) -> None:
    payload = checkout_completed(top_up)
    results = run_concurrently(2, lambda _: deliver(payload))
    assert sorted(r[1]["duplicate"] for r in results) == [False, True]
    assert {r[0] for r in results} == {200}
    assert CreditBucket.objects.filter(tenant=tenant).count() == 1
    assert balance_get(tenant=tenant).available == Decimal("500")
    # Two different events for the same payment (session + payment intent) still grant once.
    intent = json.dumps(
        {
            "id": "evt_2",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {
                "object": {
                    "id": "pi_test_1",
                    "amount_received": 6500,
                    "currency": "usd",
                    "metadata": {"top_up_id": str(top_up.pk), "tenant_id": str(tenant.pk)},
                }
            },
        }
    )
    assert deliver(intent)[0] == 200
    assert balance_get(tenant=tenant).available == Decimal("500")


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("forged", "No signatures found matching the expected signature for payload"),
        ("stale", "Timestamp outside the tolerance zone"),
        ("tampered", "No signatures found matching the expected signature for payload"),
    ],
)
def test_forged_stale_and_tampered_deliveries_are_refused(
    tenant: Tenant, top_up: TopUp, case: str, message: str
) -> None:
    payload = checkout_completed(top_up)
    if case == "forged":
        answer = deliver(payload, secret="whsec_not_the_real_one")
    elif case == "stale":
        answer = deliver(payload, timestamp=int(time.time()) - 301)
    else:
        answer = deliver(payload, body=payload.replace('"amount_total": 6500', '"amount_total": 1'))
    status, body = answer
    assert status == 400
    assert body["error"]["code"] == "invalid_signature"
    assert body["error"]["message"].startswith(message)
    assert StripeEvent.objects.count() == 0
    assert CreditBucket.objects.count() == 0
    top_up.refresh_from_db()
    assert top_up.status == "pending"


def test_a_missing_signature_header_is_refused(top_up: TopUp) -> None:
    response = APIClient().post(
        URL, data=checkout_completed(top_up), content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_signature"
    assert StripeEvent.objects.count() == 0


def test_a_payment_of_the_wrong_amount_grants_nothing(tenant: Tenant, top_up: TopUp) -> None:
    assert deliver(checkout_completed(top_up, amount=100))[0] == 200
    event = StripeEvent.objects.get()
    assert event.error == "Paid 1.00 USD, expected 65.00 USD."
    assert CreditBucket.objects.count() == 0


def test_a_failed_payment_marks_the_top_up_failed(tenant: Tenant, top_up: TopUp) -> None:
    payload = json.dumps(
        {
            "id": "evt_f",
            "object": "event",
            "type": "payment_intent.payment_failed",
            "data": {
                "object": {
                    "id": "pi_x",
                    "metadata": {"top_up_id": str(top_up.pk), "tenant_id": str(tenant.pk)},
                    "last_payment_error": {"message": "Your card was declined."},
                }
            },
        }
    )
    assert deliver(payload)[0] == 200
    top_up.refresh_from_db()
    assert (top_up.status, top_up.failure_reason) == ("failed", "Your card was declined.")
    assert CreditBucket.objects.count() == 0
