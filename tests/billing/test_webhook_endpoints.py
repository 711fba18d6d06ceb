"""Webhook endpoints over the API: created only for event types that are published, listed,
read and deleted by their own tenant (404 for anyone else), behind the `billing` scope."""

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from billing.services import webhook_endpoint_create, webhooks
from billing.services.webhook_targets import WEBHOOK_EVENT_TYPES
from tenants.events import publish
from tenants.models import Tenant

pytestmark = pytest.mark.django_db
URL = "/api/v1/webhook-endpoints"
ROOT = Path(__file__).resolve().parents[2]
KNOWN = ", ".join(WEBHOOK_EVENT_TYPES)


def lacks(scope: str) -> dict[str, object]:
    message = f"This API key lacks the '{scope}' scope."
    return {"error": {"code": "insufficient_scope", "message": message}}


def test_the_catalogue_is_what_the_code_publishes() -> None:
    published = set()
    for app in ("billing", "metering", "ledger", "ratecards", "tenants"):
        for source in (ROOT / app).rglob("*.py"):
            published |= set(re.findall(r'\btype="([a-z_]+\.[a-z_]+)"', source.read_text()))

    assert published == set(WEBHOOK_EVENT_TYPES)


def test_an_endpoint_subscribes_to_known_types_each_once(api_client: APIClient) -> None:
    response = api_client.post(
        URL,
        {
            "url": "https://hooks.example.com/in",
            "event_types": ["workflow.suspended", "balance.low", "workflow.suspended"],
        },
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body["event_types"] == ["balance.low", "workflow.suspended"]
    assert body["secret"].startswith("whsec_")
    assert WebhookEndpoint.objects.get().event_types == ["balance.low", "workflow.suspended"]


def test_an_unknown_event_type_is_refused_naming_the_field(api_client: APIClient) -> None:
    response = api_client.post(
        URL,
        {"url": "https://hooks.example.com/in", "event_types": ["balance.low", "balance.lwo"]},
        format="json",
    )

    message = f"Unknown event type 'balance.lwo'; the types are: {KNOWN}."
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"event_types[1]: {message}",
            "fields": {"event_types[1]": [message]},
        }
    }
    assert not WebhookEndpoint.objects.exists()


def test_the_service_refuses_an_unknown_event_type_too(tenant: Tenant) -> None:
    from billing.exceptions import InvalidWebhookEventTypes

    with pytest.raises(InvalidWebhookEventTypes) as refused:
        webhook_endpoint_create(
            tenant=tenant, url="https://hooks.example.com/in", event_types=["topup.done"]
        )

    message = f"Unknown event type 'topup.done'; the types are: {KNOWN}."
    assert (refused.value.status_code, refused.value.code, refused.value.message) == (
        422,
        "invalid_webhook_event_types",
        message,
    )
    assert refused.value.details == {"fields": {"event_types": [message]}}


def test_a_url_that_is_not_a_url_is_refused(api_client: APIClient) -> None:
    response = api_client.post(URL, {"url": "hooks.example.com/in"}, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": "url: Enter a valid URL.",
            "fields": {"url": ["Enter a valid URL."]},
        }
    }


def test_an_endpoint_is_read_and_deleted_by_its_tenant_only(
    tenant: Tenant, other_tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    mine = make_client(tenant, scopes=("read", "write", "billing"))
    theirs = make_client(other_tenant, scopes=("read", "write", "billing"))
    endpoint = webhook_endpoint_create(tenant=tenant, url="https://hooks.example.com/in")
    detail = f"{URL}/{endpoint.pk}"
    not_found = {"error": {"code": "not_found", "message": "No webhook endpoint with that id."}}

    assert (theirs.get(detail).status_code, theirs.get(detail).json()) == (404, not_found)
    assert (theirs.delete(detail).status_code, theirs.delete(detail).json()) == (404, not_found)
    read = mine.get(detail)
    assert read.status_code == 200
    assert read.json() == {
        "id": endpoint.pk,
        "url": "https://hooks.example.com/in",
        "event_types": [],
        "active": True,
        "created_at": read.json()["created_at"],
    }

    deleted = mine.delete(detail)

    assert (deleted.status_code, deleted.content) == (204, b"")
    assert (mine.get(detail).status_code, mine.get(detail).json()) == (404, not_found)
    assert (mine.delete(detail).status_code, mine.delete(detail).json()) == (404, not_found)
    assert mine.get(URL).json()["results"] == []
    endpoint.refresh_from_db()
    assert endpoint.active is False
    assert endpoint.deleted_at is not None


@pytest.mark.django_db(transaction=True)
def test_a_deleted_endpoint_gets_nothing_more(tenant: Tenant, api_client: APIClient) -> None:
    # Deliveries to a closed port fail and wait for their retry.
    endpoint = webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hooks")
    with transaction.atomic():
        publish(tenant_id=tenant.pk, type="balance.low", data={})
    waiting = WebhookDelivery.objects.get()
    assert (waiting.status, waiting.attempts) == ("pending", 1)

    assert api_client.delete(f"{URL}/{endpoint.pk}").status_code == 204

    waiting.refresh_from_db()
    assert (waiting.status, waiting.attempts) == ("failed", 1)  # given up, kept in the log
    with transaction.atomic():
        publish(tenant_id=tenant.pk, type="balance.low", data={})
    assert WebhookDelivery.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_deleted_during_an_attempt_is_not_sent_to_again(
    tenant: Tenant, api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url="http://127.0.0.1:9/hooks")

    def post_while_deleted(url: str, body: bytes, headers: dict[str, str]) -> tuple[None, str, str]:
        # The tenant deletes the endpoint while the attempt is on the wire; it then fails.
        assert api_client.delete(f"{URL}/{endpoint.pk}").status_code == 204
        return None, "ConnectionRefusedError", ""

    monkeypatch.setattr(webhooks, "_post", post_while_deleted)
    with transaction.atomic():
        publish(tenant_id=tenant.pk, type="balance.low", data={})

    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 0)  # the attempt did not revive it
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 1  # but it is logged
    delivery.next_attempt_at = delivery.created_at
    delivery.status = "pending"  # even a delivery left pending by a race is not claimed
    delivery.save()
    assert webhooks.webhook_attempt(delivery_id=delivery.pk) is None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", URL, None),
        ("post", URL, {"url": "https://hooks.example.com/in"}),
        ("get", "/api/v1/top-ups", None),
        ("post", "/api/v1/top-ups", {"pack": "pack-500"}),
        ("get", "/api/v1/auto-top-up", None),
        (
            "put",
            "/api/v1/auto-top-up",
            {"enabled": False, "threshold": "10", "pack": "pack-500", "monthly_cap_minor": 0},
        ),
    ],
)
def test_the_routes_that_move_money_need_the_billing_scope(
    tenant: Tenant,
    make_client: Callable[..., APIClient],
    method: str,
    path: str,
    body: dict[str, object] | None,
) -> None:
    client = make_client(tenant, scopes=("read", "write"))

    response = getattr(client, method)(path, body, format="json")

    assert (response.status_code, response.json()) == (403, lacks("billing"))


def test_billing_adds_to_read_and_write_it_does_not_replace_them(
    tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    reader = make_client(tenant, scopes=("read", "billing"))

    assert reader.get(URL).status_code == 200
    refused = reader.post(URL, {"url": "https://hooks.example.com/in"}, format="json")
    assert (refused.status_code, refused.json()) == (403, lacks("write"))
    assert not WebhookEndpoint.objects.exists()


def test_read_and_write_keys_keep_working_for_usage(
    tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    client = make_client(tenant, scopes=("read", "write"))

    assert client.get("/api/v1/balance").status_code == 200
    assert client.get("/api/v1/usage-events").status_code == 200
    assert client.put("/api/v1/alert-settings", {}, format="json").status_code == 200


def test_the_admin_refuses_what_the_api_refuses_and_makes_a_secret(
    tenant: Tenant, settings: Any
) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    admin = Client()
    admin.force_login(User.objects.create_superuser("vendor", "v@example.com", "pw-12345678"))
    form = {"tenant": tenant.pk, "active": "on", "event_types": '["balance.low"]'}

    private = admin.post(
        "/admin/billing/webhookendpoint/add/", form | {"url": "https://169.254.169.254/x"}
    )
    unknown = admin.post(
        "/admin/billing/webhookendpoint/add/",
        form | {"url": "https://hooks.example.com/in", "event_types": '["nope"]'},
    )
    saved = admin.post(
        "/admin/billing/webhookendpoint/add/", form | {"url": "https://hooks.example.com/in"}
    )

    assert private.status_code == 200
    assert "169.254.169.254 is not a public address." in private.content.decode()
    assert unknown.status_code == 200
    assert f"Unknown event type &#x27;nope&#x27;; the types are: {KNOWN}." in (
        unknown.content.decode()
    )
    assert saved.status_code == 302
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.url, endpoint.event_types) == ("https://hooks.example.com/in", ["balance.low"])
    assert endpoint.secret.startswith("whsec_")
