"""A broker outage loses no side effect: with the test's own Redis stopped, a threshold
crossing, a paid top-up and a Stripe delivery all commit and answer as usual; once the broker
is back, the outbox's sweep hands their side effects over and a worker makes each one once."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import stripe
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone

from billing.models import AlertState, CreditPack, StripeEvent, TopUp, WebhookDelivery
from billing.services import topup_create, webhook_endpoint_create
from ledger.models import CreditBucket
from ledger.selectors import available_get
from ledger.services import ledger_debit
from tenants.models import OutboxMessage, Tenant
from tenants.outbox import outbox_relay_due
from tests.billing.conftest import WEBHOOK_SECRET, grant
from tests.billing.test_stripe_webhook import checkout_completed
from tests.outage import OwnRedis, broker, drain

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def down(tmp_path: Path) -> Iterator[OwnRedis]:
    """The broker exists but is stopped."""
    with broker(tmp_path) as redis:
        redis.stop()
        yield redis


def waiting() -> list[str]:
    return sorted(OutboxMessage.objects.filter(sent_at=None).values_list("task", flat=True))


def recover(redis: OwnRedis) -> None:
    """The broker comes back; the sweep's next run (after the on-commit relay's minute)."""
    redis.start()
    count = len(waiting())
    assert outbox_relay_due(now=timezone.now() + timedelta(minutes=2)) == count
    assert waiting() == []


def deliveries(tenant: Tenant) -> list[str]:
    return sorted(
        WebhookDelivery.objects.filter(tenant=tenant).values_list("event_type", flat=True)
    )


@pytest.fixture
def endpoint(tenant: Tenant) -> None:
    # Port 9 refuses: attempts fail and are retried later; the deliveries are what we count.
    webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hook")


def test_a_threshold_crossed_while_the_broker_is_down_alerts_once(
    tenant: Tenant, owner: User, endpoint: None, down: OwnRedis
) -> None:
    grant(tenant, 1000, "promo")
    ledger_debit(tenant=tenant, amount=Decimal(850), idempotency_key="d1")  # 15% left

    assert mail.outbox == []
    # The grant's evaluation, which would have set the watch level: none is set, so the debit
    # watched only zero. Run once the broker is back, the evaluation sees 15% left.
    assert waiting() == ["billing.balance_evaluate"]

    recover(down)
    drain(until=lambda: len(mail.outbox) == 1 and len(deliveries(tenant)) == 1)

    assert [m.subject for m in mail.outbox] == ["[Creditline] Under 20% of your credits left"]
    assert deliveries(tenant) == ["balance.low"]
    assert AlertState.objects.get(tenant=tenant, threshold=20).state == AlertState.State.FIRED
    assert waiting() == []


def test_a_paid_top_up_while_the_broker_is_down_answers_and_tells_once(
    tenant: Tenant, owner: User, endpoint: None, pack: CreditPack, down: OwnRedis
) -> None:
    top_up = topup_create(tenant=tenant, pack=pack)
    client = Client()
    client.force_login(owner)

    response = client.post(f"/billing/checkout/fake/{top_up.pk}/")

    assert (response.status_code, response["Location"]) == (302, f"/buy/?top_up={top_up.pk}")
    assert available_get(tenant=tenant) == Decimal(500)  # the credits do not wait
    assert waiting() == [
        "billing.alert_email_send",
        "billing.balance_evaluate",
        "billing.webhook_fanout",
    ]

    recover(down)
    drain(until=lambda: len(mail.outbox) == 1 and len(deliveries(tenant)) == 1)

    assert [m.subject for m in mail.outbox] == ["[Creditline] 500 credits added"]
    assert deliveries(tenant) == ["topup.succeeded"]


def test_a_stripe_delivery_while_the_broker_is_down_is_processed_once(
    tenant: Tenant, pack: CreditPack, down: OwnRedis
) -> None:
    top_up = topup_create(tenant=tenant, pack=pack, gateway="stripe")
    payload = checkout_completed(top_up)
    header = stripe.WebhookSignature.generate_signature_header(payload, WEBHOOK_SECRET)

    response = Client().post(
        "/api/v1/webhooks/stripe",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )

    assert response.status_code == 200
    assert waiting() == ["billing.stripe_event_process"]
    assert StripeEvent.objects.get().processed_at is None

    recover(down)
    drain(until=lambda: TopUp.objects.get(pk=top_up.pk).status == TopUp.Status.SUCCEEDED)

    assert StripeEvent.objects.get().processed_at is not None
    assert list(CreditBucket.objects.filter(tenant=tenant).values_list("granted", flat=True)) == [
        Decimal("500.0000")
    ]
