"""The API keys page: create (the key shown once, never stored by a browser), list, revoke (the
API refuses the key from its next request); what each role may do."""

import re

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create
from tests.portal.conftest import Login

pytestmark = pytest.mark.django_db

KEY = re.compile(r"cl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")


def api(plaintext: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 200), ("admin", 200), ("billing", 403), ("member", 403)]
)
def test_who_may_create_a_key(login: Login, tenant: Tenant, role: str, status: int) -> None:
    client = login(tenant, role=role)

    created = client.post("/keys/", {"name": "ci", "scopes": ["read", "write"]})

    assert created.status_code == status
    assert ApiKey.objects.filter(tenant=tenant).count() == (1 if status == 200 else 0)


def test_a_new_key_is_shown_once_with_no_store_and_works(login: Login, tenant: Tenant) -> None:
    client = login(tenant)

    created = client.post("/keys/", {"name": "agent runtime", "scopes": ["read", "billing"]})

    (plaintext,) = KEY.findall(created.content.decode())
    assert created["Cache-Control"] == "no-store"
    stored = ApiKey.objects.get(tenant=tenant)
    assert (stored.name, stored.scopes, plaintext.split("_")[1]) == (
        "agent runtime",
        ["billing", "read"],
        stored.prefix,
    )
    assert api(plaintext).get("/api/v1/balance").status_code == 200
    later = client.get("/keys/").content.decode()
    assert KEY.findall(later) == []
    assert f"cl_{stored.prefix}_…" in later
    assert "agent runtime" in later
    assert "billing, read" in later


def test_a_key_needs_a_name_and_a_scope(login: Login, tenant: Tenant) -> None:
    client = login(tenant)

    refused = client.post("/keys/", {"name": "ci"})

    assert refused.status_code == 422
    assert "Choose at least one scope." in refused.content.decode()
    assert KEY.findall(refused.content.decode()) == []
    assert not ApiKey.objects.exists()


def test_a_revoked_key_gets_401_at_once(login: Login, tenant: Tenant) -> None:
    client = login(tenant, role="admin")
    issued = api_key_create(tenant=tenant, name="ci")
    assert api(issued.plaintext).get("/api/v1/balance").status_code == 200  # now cached

    revoked = client.post(f"/keys/{issued.api_key.pk}/revoke/", follow=True)

    assert revoked.redirect_chain == [("/keys/", 302)]
    assert f"Key “ci” ({issued.api_key.prefix}…) is revoked" in revoked.content.decode()
    refused = api(issued.plaintext).get("/api/v1/balance")
    assert refused.status_code == 401
    assert ApiKey.objects.get().revoked_at is not None


@pytest.mark.parametrize("role", ["billing", "member"])
def test_a_reader_sees_the_keys_but_no_way_to_change_them(
    login: Login, tenant: Tenant, role: str
) -> None:
    issued = api_key_create(tenant=tenant, name="ci")
    client = login(tenant, role=role)

    page = client.get("/keys/").content.decode()
    refused = client.post(f"/keys/{issued.api_key.pk}/revoke/")

    assert f"cl_{issued.api_key.prefix}_…" in page
    assert "Create a key" not in page
    assert "Revoke" not in page
    assert refused.status_code == 403
    assert api(issued.plaintext).get("/api/v1/balance").status_code == 200


def test_another_tenants_key_is_a_friendly_404(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = api_key_create(tenant=other_tenant, name="theirs")
    client: Client = login(tenant)

    missing = client.post(f"/keys/{theirs.api_key.pk}/revoke/")

    assert missing.status_code == 404
    assert "You have no API key with that id." in missing.content.decode()
    assert api(theirs.plaintext).get("/api/v1/balance").status_code == 200
