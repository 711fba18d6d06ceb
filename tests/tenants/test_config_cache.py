"""The config stamp and the API key cache: a warm request costs one query (the stamp), and a
revoked key or a suspended tenant is refused from the next request, in this process and in
another one."""

import contextlib
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import pytest
import time_machine
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from tenants.cache import (
    StampedCache,
    config_stamp_bump,
    config_stamp_current,
    config_stamp_read,
    config_stamp_scope,
)
from tenants.models import ApiKey, Tenant
from tenants.selectors import api_key_cache
from tenants.services import (
    IssuedKey,
    api_key_create,
    api_key_revoke,
    tenant_create,
    tenant_reactivate,
    tenant_suspend,
)
from tests.tenants.stamp_worker import StampWorker

T = TypeVar("T")
URL = "/api/v1/tenant"
REVOKED = {"error": {"code": "revoked_api_key", "message": "This API key has been revoked."}}
SUSPENDED = {"error": {"code": "tenant_suspended", "message": "This tenant is suspended."}}


def _client(issued: IssuedKey) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    return client


class _Rollback(Exception):
    pass


def _rolled_back(run: Callable[[], T]) -> T:
    """run() inside a transaction that is then rolled back; what it returned."""
    found: list[T] = []
    with contextlib.suppress(_Rollback), transaction.atomic():
        found.append(run())
        raise _Rollback
    return found[0]


def _sql(run: Callable[[], object]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        run()
    return [q["sql"] for q in queries.captured_queries]


# The stamp


@pytest.mark.django_db
def test_a_bump_draws_a_new_value_that_the_transaction_sees() -> None:
    before = config_stamp_read()

    with transaction.atomic():
        bumped = config_stamp_bump()
        assert config_stamp_read() == bumped

    assert bumped != before
    assert config_stamp_read() == bumped


@pytest.mark.django_db(transaction=True)
def test_a_bump_outside_a_transaction_is_refused() -> None:
    before = config_stamp_read()

    with pytest.raises(RuntimeError, match="must run in the transaction of the change"):
        config_stamp_bump()

    assert config_stamp_read() == before


@pytest.mark.django_db
def test_a_rolled_back_stamp_is_never_current_again() -> None:
    before = config_stamp_read()
    rolled_back = _rolled_back(config_stamp_bump)

    assert config_stamp_read() == before
    with transaction.atomic():
        assert config_stamp_bump() not in (before, rolled_back)


@pytest.mark.django_db
def test_a_scope_reads_the_stamp_once_and_follows_its_own_bump() -> None:
    with config_stamp_scope():
        first = _sql(config_stamp_current)
        again = _sql(config_stamp_current)
        with transaction.atomic():
            bumped = config_stamp_bump()
        after_bump = config_stamp_current()

    assert first == ["SELECT value FROM tenants_configstamp WHERE id = 1"]
    assert again == []
    assert after_bump == bumped
    assert len(_sql(config_stamp_current)) == 1  # outside a scope: read every time


def test_a_stamped_cache_serves_only_its_stamp_and_keeps_the_newest_entries() -> None:
    cache: StampedCache[str, int] = StampedCache("test", maxsize=2)
    cache.put("a", 7, 1)
    cache.put("b", 7, 2)

    assert cache.get("a", 7) == 1
    assert cache.get("a", 8) is None
    cache.put("c", 7, 3)  # "b" is the least recently used

    assert cache.keys() == ["a", "c"]
    assert cache.get("b", 7) is None


# The API key cache, in this process


@pytest.mark.django_db
def test_a_warm_request_costs_one_query_the_stamp(api_key: IssuedKey) -> None:
    client = _client(api_key)
    assert client.get(URL).status_code == 200

    sql = _sql(lambda: client.get(URL))

    assert sql == ["SELECT value FROM tenants_configstamp WHERE id = 1"]


@pytest.mark.django_db
def test_the_cache_is_keyed_by_the_sha256_of_the_key(api_key: IssuedKey) -> None:
    _client(api_key).get(URL)

    digest = hashlib.sha256(api_key.plaintext.encode()).hexdigest()
    assert api_key_cache.keys() == [digest]
    assert all(api_key.plaintext not in key for key in api_key_cache.keys())  # noqa: SIM118


@pytest.mark.django_db
def test_a_wrong_secret_is_refused_even_with_the_right_key_cached(api_key: IssuedKey) -> None:
    _client(api_key).get(URL)
    forged = IssuedKey(api_key=api_key.api_key, plaintext=api_key.plaintext[:-4] + "AAAA")

    response = _client(forged).get(URL)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


@pytest.mark.django_db
def test_last_used_at_is_written_once_a_minute_not_per_request(api_key: IssuedKey) -> None:
    client = _client(api_key)
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as traveller:
        client.get(URL)
        within = _sql(lambda: client.get(URL))
        traveller.shift(timedelta(seconds=61))
        after = _sql(lambda: client.get(URL))

    assert len(within) == 1
    assert len(after) == 2
    assert after[1].startswith('UPDATE "tenants_apikey" SET "last_used_at"')
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.last_used_at == datetime(2026, 3, 1, 9, 1, 1, tzinfo=UTC)


@pytest.mark.django_db
def test_revoking_a_cached_key_refuses_its_next_request(api_key: IssuedKey) -> None:
    client = _client(api_key)
    assert client.get(URL).status_code == 200

    api_key_revoke(api_key=api_key.api_key)
    response = client.get(URL)

    assert (response.status_code, response.json()) == (401, REVOKED)


@pytest.mark.django_db
def test_suspending_and_reactivating_a_tenant_reach_its_cached_key(
    tenant: Tenant, api_key: IssuedKey
) -> None:
    client = _client(api_key)
    assert client.get(URL).status_code == 200

    tenant_suspend(tenant=tenant)
    suspended = client.get(URL)
    tenant_reactivate(tenant=tenant)
    reactivated = client.get(URL)

    assert (suspended.status_code, suspended.json()) == (403, SUSPENDED)
    assert reactivated.status_code == 200
    assert reactivated.json()["status"] == "active"


@pytest.mark.django_db
def test_suspending_a_suspended_tenant_does_not_bump(tenant: Tenant) -> None:
    tenant_suspend(tenant=tenant)
    stamp = config_stamp_read()

    tenant_suspend(tenant=tenant)

    assert config_stamp_read() == stamp


@pytest.mark.django_db
def test_what_a_rolled_back_change_cached_is_never_served(
    tenant: Tenant, api_key: IssuedKey
) -> None:
    client = _client(api_key)

    def suspend_and_request() -> int:
        tenant_suspend(tenant=tenant)
        return client.get(URL).status_code  # cached, suspended, under the new stamp

    assert _rolled_back(suspend_and_request) == 403
    with transaction.atomic():
        config_stamp_bump()  # a later, unrelated change

    response = client.get(URL)

    assert response.status_code == 200
    assert response.json()["status"] == "active"


@pytest.mark.django_db
def test_a_new_key_works_at_once_without_a_bump(tenant: Tenant, api_key: IssuedKey) -> None:
    _client(api_key).get(URL)
    stamp = config_stamp_read()

    second = api_key_create(tenant=tenant, name="second")

    assert _client(second).get(URL).status_code == 200
    assert config_stamp_read() == stamp


# Another process


def _db_name() -> str:
    return str(connection.settings_dict["NAME"])


@pytest.mark.django_db(transaction=True)
def test_a_revoked_key_is_refused_by_another_worker_within_a_second() -> None:
    tenant = tenant_create(name="Other Worker", slug="other-worker")
    issued = api_key_create(tenant=tenant, name="k")
    with StampWorker(_db_name()) as worker:
        assert worker.get(URL, issued.plaintext)["status"] == 200
        warm = worker.get(URL, issued.plaintext)
        assert (warm["status"], warm["queries"]) == (200, 1)

        api_key_revoke(api_key=issued.api_key)
        answer, elapsed = worker.until(
            lambda a: a["status"] != 200, op="get", path=URL, key=issued.plaintext
        )

    assert (answer["status"], answer["body"]) == (401, REVOKED)
    assert elapsed < 1.0


@pytest.mark.django_db(transaction=True)
def test_a_suspended_tenant_is_refused_by_another_worker_within_a_second() -> None:
    tenant = tenant_create(name="Other Worker", slug="other-worker")
    issued = api_key_create(tenant=tenant, name="k")
    with StampWorker(_db_name()) as worker:
        worker.get(URL, issued.plaintext)
        assert worker.get(URL, issued.plaintext)["queries"] == 1

        tenant_suspend(tenant=tenant)
        first = worker.get(URL, issued.plaintext)
        tenant_reactivate(tenant=tenant)
        second = worker.get(URL, issued.plaintext)

    assert (first["status"], first["body"]) == (403, SUSPENDED)
    assert (second["status"], second["body"]["status"]) == (200, "active")
    assert ApiKey.objects.get(pk=issued.api_key.pk).last_used_at is not None
