"""What the portal does to an endpoint beyond creating it: send it a test event (delivered,
signed and logged like any other) and rotate its secret (the old one stops verifying)."""

import json
import time

import pytest

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.services.webhooks import (
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_secret_rotate,
    webhook_endpoint_test_send,
)
from billing.webhook_selectors import webhook_delivery_list, webhook_endpoint_get
from tenants.models import Tenant
from tests.billing.test_webhooks_out import Receiver, receiver, verify_standard_webhook

__all__ = ["receiver"]

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_test_event_goes_to_that_endpoint_alone_whatever_it_subscribed_to(
    tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url, event_types=["balance.low"])
    webhook_endpoint_create(tenant=tenant, url=receiver.url + "/other")

    delivery = webhook_endpoint_test_send(endpoint=endpoint)

    assert len(receiver.requests) == 1
    headers, body = receiver.requests[0]
    assert verify_standard_webhook(endpoint.secret, headers, body, now=time.time())
    assert json.loads(body)["type"] == "webhook.test"
    assert json.loads(body)["data"] == {
        "endpoint_id": endpoint.pk,
        "message": "A test event: your endpoint is reachable.",
    }
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.endpoint_id) == (
        "succeeded",
        1,
        endpoint.pk,
    )
    assert list(WebhookAttempt.objects.values_list("status_code", "response")) == [(200, "ok")]


def test_a_test_event_that_fails_is_logged_with_the_answer(
    tenant: Tenant, receiver: Receiver
) -> None:
    receiver.status = 503
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url)

    webhook_endpoint_test_send(endpoint=endpoint)

    (listed,) = webhook_delivery_list(tenant=tenant, endpoint=endpoint)
    assert (listed.status, listed.attempts) == ("pending", 1)
    assert [(a.number, a.status_code, a.response) for a in listed.log.all()] == [(1, 503, "ok")]


def test_after_rotation_deliveries_verify_with_the_new_secret_only(
    tenant: Tenant, receiver: Receiver
) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url)
    old = endpoint.secret

    rotated = webhook_endpoint_secret_rotate(endpoint=endpoint)
    webhook_endpoint_test_send(endpoint=rotated)

    assert rotated.secret.startswith("whsec_")
    assert rotated.secret != old
    assert WebhookEndpoint.objects.get().secret == rotated.secret
    headers, body = receiver.requests[0]
    assert verify_standard_webhook(rotated.secret, headers, body, now=time.time())
    assert not verify_standard_webhook(old, headers, body, now=time.time())


def test_a_deleted_endpoint_can_be_neither_tested_nor_rotated(tenant: Tenant) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url="https://hooks.example.com/x")
    webhook_endpoint_delete(endpoint=endpoint)
    endpoint.refresh_from_db()

    with pytest.raises(WebhookEndpoint.DoesNotExist):
        webhook_endpoint_test_send(endpoint=endpoint)
    with pytest.raises(WebhookEndpoint.DoesNotExist):
        webhook_endpoint_secret_rotate(endpoint=endpoint)

    assert not WebhookDelivery.objects.exists()
    assert webhook_endpoint_get(tenant=tenant, endpoint_id=endpoint.pk) is None


def test_another_tenants_endpoint_is_not_found(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = webhook_endpoint_create(tenant=other_tenant, url="https://hooks.example.com/x")

    assert webhook_endpoint_get(tenant=tenant, endpoint_id=theirs.pk) is None
    assert webhook_endpoint_get(tenant=other_tenant, endpoint_id=theirs.pk) == theirs
