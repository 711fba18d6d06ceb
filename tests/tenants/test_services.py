import hashlib
import re
from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from tenants.models import ApiKey, Tenant
from tenants.services import (
    IssuedKey,
    api_key_create,
    api_key_parse,
    api_key_revoke,
    api_key_touch,
    tenant_create,
)

pytestmark = pytest.mark.django_db


def test_api_key_create_stores_only_a_hash(tenant: Tenant) -> None:
    issued = api_key_create(tenant=tenant, name="ci", scopes=["write", "read", "read"])

    stored = ApiKey.objects.get(pk=issued.api_key.pk)
    assert re.fullmatch(r"cl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", issued.plaintext)
    assert stored.prefix == issued.plaintext.split("_")[1]
    assert stored.key_hash == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert issued.plaintext not in {str(value) for value in vars(stored).values()}
    assert stored.scopes == ["read", "write"]
    assert (stored.name, stored.tenant_id, stored.last_used_at, stored.revoked_at) == (
        "ci",
        tenant.pk,
        None,
        None,
    )


def test_two_keys_differ(tenant: Tenant) -> None:
    first, second = (api_key_create(tenant=tenant, name=n) for n in ("a", "b"))

    assert first.plaintext != second.plaintext
    assert first.api_key.prefix != second.api_key.prefix


@pytest.mark.parametrize("scopes", [[], ["admin"], ["read", "delete"]])
def test_api_key_create_refuses_unknown_scopes(tenant: Tenant, scopes: list[str]) -> None:
    with pytest.raises(ValueError, match="Scopes must be a non-empty subset of"):
        api_key_create(tenant=tenant, name="bad", scopes=scopes)

    assert ApiKey.objects.count() == 0


@pytest.mark.parametrize(
    ("plaintext", "prefix"),
    [
        ("cl_0123abcd_secret", "0123abcd"),
        ("cl_0123abcd_sec_ret", "0123abcd"),
        ("cl_0123abc_secret", None),
        ("cl_0123abcd_", None),
        ("xx_0123abcd_secret", None),
        ("0123abcd", None),
    ],
)
def test_api_key_parse(plaintext: str, prefix: str | None) -> None:
    assert api_key_parse(plaintext) == prefix


def test_api_key_revoke_is_idempotent(
    api_key: IssuedKey, frozen_time: time_machine.Traveller
) -> None:
    key = api_key.api_key

    api_key_revoke(api_key=key)
    first = key.revoked_at
    frozen_time.shift(timedelta(hours=1))
    api_key_revoke(api_key=key)

    assert first == timezone.now() - timedelta(hours=1)
    assert ApiKey.objects.get(pk=key.pk).revoked_at == first


def test_last_used_at_is_written_at_most_once_a_minute(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    key = api_key_create(tenant=tenant, name="hot").api_key
    start = timezone.now()

    api_key_touch(api_key=key)
    frozen_time.shift(timedelta(seconds=59))
    api_key_touch(api_key=ApiKey.objects.get(pk=key.pk))
    after_59s = ApiKey.objects.get(pk=key.pk).last_used_at
    frozen_time.shift(timedelta(seconds=1))
    api_key_touch(api_key=ApiKey.objects.get(pk=key.pk))
    after_60s = ApiKey.objects.get(pk=key.pk).last_used_at

    assert after_59s == start
    assert after_60s == start + timedelta(seconds=60)


def test_requests_touch_the_key_once_a_minute(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    issued = api_key_create(tenant=tenant, name="hot")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    start = timezone.now()

    client.get("/api/v1/tenant")
    frozen_time.shift(timedelta(seconds=30))
    client.get("/api/v1/tenant")

    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at == start


def test_tenant_create_makes_a_unique_slug(db: None) -> None:
    first = tenant_create(name="Acme Agents!")
    second = tenant_create(name="Acme  agents")
    third = tenant_create(name="???")

    assert (first.slug, second.slug, third.slug) == ("acme-agents", "acme-agents-2", "tenant")
    assert first.status == Tenant.Status.ACTIVE
