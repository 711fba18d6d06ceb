"""The webhooks page: add an endpoint (its secret shown once), choose its events, send a test
event and read the answer, rotate the secret, delete; what each role may do."""

import re
from typing import Any

import pytest

from billing.models import WebhookDelivery, WebhookEndpoint
from billing.services.webhooks import webhook_endpoint_create
from tenants.models import Tenant
from tests.billing.test_webhooks_out import Receiver, receiver
from tests.portal.conftest import Login

__all__ = ["receiver"]

pytestmark = pytest.mark.django_db
SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]{44}")
URL = "https://hooks.example.com/creditline"


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 200), ("admin", 200), ("billing", 403), ("member", 403)]
)
def test_who_may_add_an_endpoint(login: Login, tenant: Tenant, role: str, status: int) -> None:
    client = login(tenant, role=role)

    added = client.post("/webhooks/", {"url": URL, "event_types": ["balance.low"]})

    assert added.status_code == status
    assert WebhookEndpoint.objects.filter(tenant=tenant).count() == (1 if status == 200 else 0)


def test_the_secret_is_shown_once_with_no_store(login: Login, tenant: Tenant) -> None:
    client = login(tenant)

    added = client.post(
        "/webhooks/", {"url": URL, "event_types": ["workflow.suspended", "balance.low"]}
    )

    endpoint = WebhookEndpoint.objects.get(tenant=tenant)
    assert added.status_code == 200
    assert added["Cache-Control"] == "no-store"
    assert SECRET.findall(added.content.decode()) == [endpoint.secret]
    assert endpoint.event_types == ["balance.low", "workflow.suspended"]
    listed = client.get("/webhooks/").content.decode()
    detail = client.get(f"/webhooks/{endpoint.pk}/").content.decode()
    assert URL in listed
    assert "balance.low, workflow.suspended" in listed
    assert SECRET.findall(listed + detail) == []


def test_a_target_we_would_never_deliver_to_is_refused(
    login: Login, tenant: Tenant, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = False
    client = login(tenant)

    refused = client.post("/webhooks/", {"url": "https://10.0.0.7/hook"})
    unknown = client.post("/webhooks/", {"url": URL, "event_types": ["nothing.happens"]})

    assert refused.status_code == 422
    assert "10.0.0.7 is not a public address." in refused.content.decode()
    assert unknown.status_code == 422
    assert "Select a valid choice. nothing.happens is not one of the available choices." in (
        unknown.content.decode()
    )
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_test_event_is_delivered_and_its_answer_shown(
    login: Login, tenant: Tenant, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    receiver.status = 503
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url)
    client = login(tenant, role="admin")

    sent = client.post(f"/webhooks/{endpoint.pk}/test/", follow=True)

    assert sent.redirect_chain == [(f"/webhooks/{endpoint.pk}/", 302)]
    page = sent.content.decode()
    assert "Test event sent" in page
    assert "webhook.test" in page
    assert "#1" in page
    assert 'HTTP 503 <span class="mono">ok</span>' in page
    assert len(receiver.requests) == 1


def test_rotating_shows_the_new_secret_once(login: Login, tenant: Tenant) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url=URL)
    old = endpoint.secret
    client = login(tenant)

    rotated = client.post(f"/webhooks/{endpoint.pk}/rotate/")

    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert rotated.status_code == 200
    assert rotated["Cache-Control"] == "no-store"
    assert SECRET.findall(rotated.content.decode()) == [endpoint.secret]
    assert SECRET.findall(client.get(f"/webhooks/{endpoint.pk}/").content.decode()) == []


def test_deleting_an_endpoint(login: Login, tenant: Tenant) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url=URL)
    client = login(tenant)

    deleted = client.post(f"/webhooks/{endpoint.pk}/delete/", follow=True)

    assert deleted.redirect_chain == [("/webhooks/", 302)]
    assert f"Endpoint {URL} deleted" in deleted.content.decode()
    assert "No endpoints yet." in deleted.content.decode()
    assert client.get(f"/webhooks/{endpoint.pk}/").status_code == 404


@pytest.mark.parametrize("role", ["billing", "member"])
def test_a_reader_sees_endpoints_and_deliveries_but_changes_nothing(
    login: Login, tenant: Tenant, role: str
) -> None:
    endpoint = webhook_endpoint_create(tenant=tenant, url=URL)
    client = login(tenant, role=role)

    listed = client.get("/webhooks/").content.decode()
    detail = client.get(f"/webhooks/{endpoint.pk}/")
    posts = [
        client.post(f"/webhooks/{endpoint.pk}/{action}/").status_code
        for action in ("test", "rotate", "delete")
    ]

    assert URL in listed
    assert "Add an endpoint" not in listed
    assert detail.status_code == 200
    for button in ("Send a test event", "Rotate secret", "Delete endpoint"):
        assert button not in detail.content.decode()
    assert posts == [403, 403, 403]
    assert WebhookEndpoint.objects.get().secret == endpoint.secret
    assert not WebhookDelivery.objects.exists()


def test_another_tenants_endpoint_is_a_friendly_404(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = webhook_endpoint_create(tenant=other_tenant, url=URL)
    client = login(tenant)

    answers = [client.get(f"/webhooks/{theirs.pk}/")] + [
        client.post(f"/webhooks/{theirs.pk}/{action}/") for action in ("test", "rotate", "delete")
    ]

    assert [a.status_code for a in answers] == [404, 404, 404, 404]
    assert "You have no webhook endpoint with that id." in answers[0].content.decode()
    theirs.refresh_from_db()
    assert (theirs.deleted_at, WebhookDelivery.objects.count()) == (None, 0)
