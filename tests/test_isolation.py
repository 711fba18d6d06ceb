"""Tenant isolation over EVERY route under /api/v1/, including routes added after this file.

The routes are read from the URL resolver, not listed by hand. For each route and each method
its view allows, tenant B's key is sent with tenant A's object ids (filled by the seeders that
each app registers in tests/<app>/isolation.py, see tests/isolation.py). A route that takes an
id must refuse (403 / 404, or 405 / 422 where the request's shape does not apply) and no
response may carry tenant A's data. Every route also refuses a request with no key (401), except
`webhooks/` routes: Stripe signs its deliveries instead of sending an API key.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpResponse
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import api_key_create, tenant_create
from tests.isolation import API_PREFIX, MARKER, Route, api_routes, seed

WRITE_METHODS = {"POST", "PUT", "PATCH"}
# A value shorter than this (a bare integer id) would match unrelated text, so it is looked
# for only as the value of an `id` / `<kwarg>` key in JSON bodies.
MIN_SUBSTRING_LEN = 6
ROUTES = api_routes()
ROUTE_IDS = [route.template.removeprefix(API_PREFIX) or "(root)" for route in ROUTES]


def _call(client: APIClient, method: str, url: str) -> HttpResponse:
    if method in WRITE_METHODS:
        return client.generic(method, url, data="{}", content_type="application/json")
    return client.generic(method, url)


def _json(response: HttpResponse) -> Any:
    try:
        return json.loads(response.content or b"null")
    except ValueError:
        return None


def _id_values(body: Any, keys: set[str]) -> Iterator[str]:
    if isinstance(body, dict):
        for key, value in body.items():
            if key in keys and isinstance(value, str | int):
                yield str(value)
            yield from _id_values(value, keys)
    elif isinstance(body, list):
        for item in body:
            yield from _id_values(item, keys)


def _leaks(response: HttpResponse, secrets: dict[str, str], sent: set[str]) -> list[str]:
    """Tenant A's values found in a response, leaving out what the caller itself put in the URL
    (an error message may echo the id it was asked for: that tells B nothing)."""
    text = response.content.decode(errors="replace")
    body = _json(response)
    ids = set(_id_values(body, {"id", *secrets}))
    found = []
    for key, value in secrets.items():
        if value in sent:
            continue
        if len(value) >= MIN_SUBSTRING_LEN and value in text:
            found.append(f"{key}={value!r}")
        elif len(value) < MIN_SUBSTRING_LEN and value in ids:
            found.append(f"{key}={value!r} as an id")
    return found


@pytest.fixture
def tenant_a(db: None) -> Tenant:
    return tenant_create(name=f"{MARKER} Tenant A", slug="zz-isolation-tenant-a")


@pytest.fixture
def tenant_b(db: None) -> Tenant:
    return tenant_create(name="Tenant B", slug="tenant-b")


def _client(tenant: Tenant) -> APIClient:
    client = APIClient()
    issued = api_key_create(tenant=tenant, name="isolation")
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.plaintext}")
    return client


def test_the_walk_sees_the_api() -> None:
    templates = {route.template for route in ROUTES}

    assert "api/v1/tenant" in templates
    assert all(route.methods for route in ROUTES), [r.template for r in ROUTES if not r.methods]


@pytest.mark.django_db
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_every_route_needs_an_api_key(route: Route) -> None:
    if "webhooks/" in route.template:
        pytest.skip("webhooks/ routes authenticate by signature, not by API key")
    for method in route.methods:
        response = _call(APIClient(), method, route.dummy_url())

        assert response.status_code == 401, (method, route.template, response.content)
        assert _json(response)["error"]["code"] == "not_authenticated", (method, route.template)


@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_tenant_b_never_reaches_tenant_a(route: Route, tenant_a: Tenant, tenant_b: Tenant) -> None:
    values = seed(tenant_a)
    secrets = {"tenant_a_slug": tenant_a.slug, "tenant_a_name": tenant_a.name, "marker": MARKER}
    secrets |= values
    missing = [kwarg for kwarg in route.kwargs if kwarg not in values]
    if missing:
        pytest.fail(
            f"/{route.template} takes {missing}, which no isolation seeder fills. Register one "
            "in tests/<app>/isolation.py that creates the object for the tenant it is given "
            "and returns {kwarg: value} (see tests/isolation.py)."
        )
    url = route.url(values)
    sent = {values[kwarg] for kwarg in route.kwargs}
    client_b = _client(tenant_b)

    for method in route.methods:
        response = _call(client_b, method, url)

        where = f"{method} {url} as tenant B -> {response.status_code}"
        assert response.status_code < 500, where
        if route.kwargs:
            assert response.status_code in {403, 404, 405, 422}, f"{where}: {response.content!r}"
        assert _leaks(response, secrets, sent) == [], where


@pytest.mark.parametrize(
    "route", [r for r in ROUTES if r.kwargs and "GET" in r.methods], ids=lambda r: r.template
)
def test_seeded_ids_are_real_for_their_owner(route: Route, tenant_a: Tenant) -> None:
    """Without this, a seeder returning a bogus id would make every 404 above meaningless."""
    values = seed(tenant_a)
    if any(kwarg not in values for kwarg in route.kwargs):
        pytest.skip("reported by test_tenant_b_never_reaches_tenant_a")

    response = _client(tenant_a).get(route.url(values))

    assert response.status_code == 200, (route.url(values), response.content)


def test_leak_detector_catches_a_leak_and_ignores_an_echo() -> None:
    secrets = {"marker": MARKER, "workflow_id": "42", "external_id": "run-abcdef"}
    leaky = HttpResponse(json.dumps({"results": [{"id": 42, "name": f"{MARKER} run"}]}))
    echo = HttpResponse(json.dumps({"error": {"code": "not_found", "message": "No run 42."}}))

    assert _leaks(leaky, secrets, sent=set()) == [
        "marker='" + MARKER + "'",
        "workflow_id='42' as an id",
    ]
    assert _leaks(echo, secrets, sent={"42"}) == []
