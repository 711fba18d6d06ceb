"""Fixtures every app's tests share: tenants, API clients, a signed-webhook helper, frozen time."""

from collections.abc import Callable, Iterator

import pytest
import time_machine
from celery._state import _set_task_join_will_block  # type: ignore[attr-defined]
from django.core.cache import cache
from django.db import connection
from rest_framework.test import APIClient

from ratecards.selectors import price_cache_clear
from tenants.cache import config_caches_clear
from tenants.models import Tenant
from tenants.services import IssuedKey, api_key_create, tenant_create


@pytest.fixture(scope="session", autouse=True)
def _no_stray_connections(django_db_setup: None, django_db_blocker: object) -> Iterator[None]:
    """At the end of the session, before the test database is dropped: end the connections
    left open to it where no test can close them (the ORM inside Playwright's greenlets, a
    live server's threads), or the drop fails and the database is left behind."""
    yield
    if connection.settings_dict["NAME"] != connection.settings_dict["TEST"]["NAME"]:
        return  # no test database was made (a session of tests that need none)
    with django_db_blocker.unblock(), connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _fresh_config_caches() -> Iterator[None]:
    """Tests share one process and roll back between them, and some write config rows without
    the services (no stamp bump): no cached key, tenant or pricer outlives its test."""
    config_caches_clear()
    price_cache_clear()
    yield
    config_caches_clear()
    price_cache_clear()


@pytest.fixture(autouse=True)
def _outside_a_worker() -> None:
    """A test that ran a Celery worker in this process (tests/outage.py) can leave it marked as
    one, and then an eager task's .get() refuses ("Never call result.get() within a task"):
    every test starts outside a worker."""
    _set_task_join_will_block(False)


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> Iterator[None]:
    """The rate limits count in the cache (an in-memory one in tests), by key and by address:
    every test client is 127.0.0.1, so counts must not carry from one test to the next."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def tenant(db: None) -> Tenant:
    return tenant_create(name="Acme Agents", slug="acme")


@pytest.fixture
def other_tenant(db: None) -> Tenant:
    return tenant_create(name="Globex Bots", slug="globex")


@pytest.fixture
def api_key(tenant: Tenant) -> IssuedKey:
    return api_key_create(tenant=tenant, name="test")


@pytest.fixture
def make_client() -> Callable[..., APIClient]:
    """An API client authenticated with a fresh key of `tenant` and the given scopes."""

    def make(tenant: Tenant, scopes: tuple[str, ...] = ("read", "write")) -> APIClient:
        issued = api_key_create(tenant=tenant, name="test", scopes=scopes)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
        return client

    return make


@pytest.fixture
def api_client(tenant: Tenant, make_client: Callable[..., APIClient]) -> APIClient:
    return make_client(tenant)


@pytest.fixture
def other_client(other_tenant: Tenant, make_client: Callable[..., APIClient]) -> APIClient:
    return make_client(other_tenant)


@pytest.fixture
def frozen_time() -> Iterator[time_machine.Traveller]:
    """Time stopped at 2026-01-15 12:00 UTC; move it with `.move_to()` / `.shift()`."""
    with time_machine.travel("2026-01-15 12:00:00+00:00", tick=False) as traveller:
        yield traveller
