"""The tenants admin: suspending, reactivating and editing reach keys cached in the processes."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey, Invitation, OutboxMessage, Tenant
from tenants.services import IssuedKey, membership_add, membership_invite

pytestmark = pytest.mark.django_db

URL = "/api/v1/tenant"


def _api(issued: IssuedKey) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    return client


def test_the_suspend_and_reactivate_actions_reach_a_cached_key(
    admin_client: Client, tenant: Tenant, api_key: IssuedKey
) -> None:
    api = _api(api_key)
    assert api.get(URL).status_code == 200

    admin_client.post(
        "/admin/tenants/tenant/", {"action": "suspend", "_selected_action": [tenant.pk]}
    )
    suspended = api.get(URL)
    admin_client.post(
        "/admin/tenants/tenant/", {"action": "reactivate", "_selected_action": [tenant.pk]}
    )
    reactivated = api.get(URL)

    assert suspended.status_code == 403
    assert suspended.json()["error"]["code"] == "tenant_suspended"
    assert reactivated.status_code == 200


def test_editing_a_tenant_reaches_a_cached_key(
    admin_client: Client, tenant: Tenant, api_key: IssuedKey
) -> None:
    api = _api(api_key)
    assert api.get(URL).json()["name"] == "Acme Agents"

    response = admin_client.post(
        f"/admin/tenants/tenant/{tenant.pk}/change/",
        {
            "name": "Acme Robots",
            "slug": "acme",
            "status": "suspended",
            "-1-TOTAL_FORMS": "0",
            "-1-INITIAL_FORMS": "0",
        },
    )

    assert response.status_code == 302
    assert api.get(URL).status_code == 403


def test_revoking_in_the_admin_reaches_a_cached_key(
    admin_client: Client, api_key: IssuedKey
) -> None:
    api = _api(api_key)
    assert api.get(URL).status_code == 200

    admin_client.post(
        "/admin/tenants/apikey/", {"action": "revoke", "_selected_action": [api_key.api_key.pk]}
    )

    assert ApiKey.objects.get(pk=api_key.api_key.pk).revoked_at is not None
    assert api.get(URL).json()["error"]["code"] == "revoked_api_key"


def test_renaming_a_key_in_the_admin_reaches_its_cache_entry(
    admin_client: Client, api_key: IssuedKey
) -> None:
    api = _api(api_key)
    assert api.get(URL).json()["api_key"]["name"] == "test"

    response = admin_client.post(
        f"/admin/tenants/apikey/{api_key.api_key.pk}/change/", {"name": "renamed"}
    )

    assert response.status_code == 302
    assert api.get(URL).json()["api_key"]["name"] == "renamed"


def test_the_outbox_page_lists_what_waits_and_sends_it_on_request(admin_client: Client) -> None:
    later = timezone.now() + timedelta(minutes=5)
    waiting = OutboxMessage.objects.create(
        task="tenants.ping", kwargs={"note": "x"}, created_at=later, next_attempt_at=later
    )

    page = admin_client.get("/admin/tenants/outboxmessage/?state=waiting")
    assert (
        admin_client.post(f"/admin/tenants/outboxmessage/{waiting.pk}/delete/").status_code == 403
    )
    assert page.status_code == 200
    assert b"tenants.ping" in page.content

    admin_client.post(
        "/admin/tenants/outboxmessage/", {"action": "send_now", "_selected_action": [waiting.pk]}
    )
    waiting.refresh_from_db()
    assert waiting.handled_at is not None  # sent and run (the test suite runs tasks eagerly)
    assert admin_client.get(f"/admin/tenants/outboxmessage/{waiting.pk}/change/").status_code == 200


def test_invitations_are_listed_read_only(admin_client: Client, tenant: Tenant) -> None:
    owner = membership_add(
        tenant=tenant, user=User.objects.create_user("olive", email="o@acme.test"), role="owner"
    )
    membership_invite(actor=owner, email="nina@example.com", role="billing", link=lambda t: t)
    invitation = Invitation.objects.get()

    listed = admin_client.get("/admin/tenants/invitation/?q=nina")
    shown = admin_client.get(f"/admin/tenants/invitation/{invitation.pk}/change/")
    add = admin_client.get("/admin/tenants/invitation/add/")
    changed = admin_client.post(
        f"/admin/tenants/invitation/{invitation.pk}/change/", {"status": "accepted"}
    )

    assert listed.status_code == 200
    assert "nina@example.com" in listed.content.decode()
    assert shown.status_code == 200  # to view
    assert (add.status_code, changed.status_code) == (403, 403)
    assert Invitation.objects.get().status == "pending"
