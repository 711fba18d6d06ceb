"""Tenant isolation over EVERY route under /api/v1/, including routes added after this file.

The routes are read from the URL resolver, not listed by hand. For each route and each method
its view allows, tenant B's key is sent with tenant A's object ids (filled by the seeders that
each app registers in tests/<app>/isolation.py, see tests/isolation.py). A route that takes an
id must answer 403 or 404, and a write to it carries a VALID body (registered with the seeder),
so a view that validates before it scopes cannot hide behind a 422. Routes without ids act on
B's own scope; no response may carry tenant A's data, and nothing B sends may change what A
reads. Every route also refuses a request with no key (401), except `webhooks/` routes: Stripe
signs its deliveries instead of sending an API key.

The walker is itself tested (`test_the_walk_*`): against a view that validates its body and
then reads the run without scoping, it must fail.
"""

import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.urls import path
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient

from metering.models import WorkflowRun
from tenants.api.base import TenantApiView
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_create, tenant_create
from tests.isolation import (
    API_PREFIX,
    MARKER,
    WRITE_METHODS,
    Route,
    api_routes,
    bodies,
    seed,
)

# A value shorter than this (a bare integer id) would match unrelated text, so it is looked
# for only as the value of an `id` / `<kwarg>` key in JSON bodies.
MIN_SUBSTRING_LEN = 6
ROUTES = api_routes()
ROUTE_IDS = [route.template.removeprefix(API_PREFIX) or "(root)" for route in ROUTES]
ID_WRITE_ROUTES = [route for route in ROUTES if route.kwargs and route.write_methods]
# Every scope, so that no route answers 403 for want of one and the walk reaches its data.
ALL_SCOPES = tuple(ApiKey.Scope.values)


def _call(client: APIClient, method: str, url: str, body: Any = None) -> HttpResponse:
    if method in WRITE_METHODS:
        data = json.dumps({} if body is None else body)
        return client.generic(method, url, data=data, content_type="application/json")
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
    issued = api_key_create(tenant=tenant, name="isolation", scopes=ALL_SCOPES)
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


def _secrets(tenant_a: Tenant, values: Mapping[str, str]) -> dict[str, str]:
    return {
        "tenant_a_slug": tenant_a.slug,
        "tenant_a_name": tenant_a.name,
        "marker": MARKER,
    } | dict(values)


def _reads(client: APIClient, routes: list[Route], values: Mapping[str, str]) -> dict[str, Any]:
    """What tenant A sees on every GET route: B's requests must leave it exactly as it was."""
    return {
        route.template: (response.status_code, _json(response))
        for route in routes
        if "GET" in route.methods and all(kwarg in values for kwarg in route.kwargs)
        for response in [client.get(route.url(dict(values)))]
    }


def _walk_route(
    route: Route,
    client_b: APIClient,
    values: Mapping[str, str],
    secrets: dict[str, str],
    route_bodies: Mapping[str, Any],
) -> list[str]:
    """Everything wrong with tenant B's answers on `route` (empty: the route holds)."""
    url = route.url(dict(values))
    if route.kwargs and route.write_methods and route.template not in route_bodies:
        return [
            f"/{route.template} takes {list(route.kwargs)} and accepts "
            f"{list(route.write_methods)}, but no valid body is registered for it: add one with "
            "@register_bodies in tests/<app>/isolation.py (see tests/isolation.py)."
        ]
    sent = {values[kwarg] for kwarg in route.kwargs}
    problems = []
    for method in route.methods:
        body = route_bodies.get(route.template) if route.kwargs else None
        response = _call(client_b, method, url, body)

        where = f"{method} {url} as tenant B -> {response.status_code}"
        if response.status_code >= 500:
            problems.append(f"{where}: a server error")
        elif route.kwargs and response.status_code not in {403, 404}:
            problems.append(f"{where}: must be 403 or 404: {response.content.decode()}")
        leaks = _leaks(response, secrets, sent)
        if leaks:
            problems.append(f"{where}: leaks {leaks}")
    return problems


@pytest.mark.usefixtures("frozen_time")  # so that A's reads (`as_of`, ...) compare equal
@pytest.mark.parametrize("route", ROUTES, ids=ROUTE_IDS)
def test_tenant_b_never_reaches_tenant_a(route: Route, tenant_a: Tenant, tenant_b: Tenant) -> None:
    values = seed(tenant_a)
    missing = [kwarg for kwarg in route.kwargs if kwarg not in values]
    if missing:
        pytest.fail(
            f"/{route.template} takes {missing}, which no isolation seeder fills. Register one "
            "in tests/<app>/isolation.py that creates the object for the tenant it is given "
            "and returns {kwarg: value} (see tests/isolation.py)."
        )
    client_a = _client(tenant_a)
    before = _reads(client_a, ROUTES, values)

    problems = _walk_route(
        route, _client(tenant_b), values, _secrets(tenant_a, values), bodies(values, ROUTES)
    )

    assert problems == []
    assert _reads(client_a, ROUTES, values) == before


@pytest.mark.parametrize("route", ID_WRITE_ROUTES, ids=lambda r: r.template)
def test_registered_bodies_are_valid_for_their_owner(route: Route, tenant_a: Tenant) -> None:
    """Without this, an invalid body would get a 404 from a view that scopes first and prove
    nothing about one that validates first."""
    values = seed(tenant_a)
    route_bodies = bodies(values, ROUTES)
    if route.template not in route_bodies:
        pytest.skip("reported by test_tenant_b_never_reaches_tenant_a")
    client_a = _client(tenant_a)

    for method in route.write_methods:
        response = _call(client_a, method, route.url(values), route_bodies[route.template])

        assert response.status_code in {200, 201}, (method, route.template, response.content)


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


# The walker's self-test: a urlconf of this module (`@pytest.mark.urls`) with a view that has the
# bug the walk exists to catch, and one that does not.


class _StepBodySerializer(serializers.Serializer):
    idempotency_key = serializers.CharField()
    action = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=Decimal(0))


class _ValidatesThenLeaksApi(TenantApiView):
    def post(self, request: Request, workflow_id: int) -> Response:
        _StepBodySerializer(data=request.data).is_valid(raise_exception=True)
        run = WorkflowRun.objects.get(pk=workflow_id)  # the bug: any tenant's run
        body = {"id": run.pk, "external_id": run.external_id, "name": run.name}
        return Response(body, status=status.HTTP_201_CREATED)


class _ValidatesThenScopesApi(TenantApiView):
    def post(self, request: Request, workflow_id: int) -> Response:
        _StepBodySerializer(data=request.data).is_valid(raise_exception=True)
        run = self.get_scoped_or_404(WorkflowRun, pk=workflow_id)
        return Response({"id": run.pk}, status=status.HTTP_201_CREATED)


urlpatterns = [
    path(
        "api/v1/workflows/<int:workflow_id>/steps",
        _ValidatesThenLeaksApi.as_view(),
        name="workflow-steps",
    ),
    path(
        "api/v1/self-test/<int:workflow_id>/scoped",
        _ValidatesThenScopesApi.as_view(),
        name="self-test-scoped",
    ),
]
SELF_TEST_URLCONF = __name__


def _self_test_route(name: str) -> Route:
    [route] = [route for route in api_routes(SELF_TEST_URLCONF) if route.name == name]
    return route


@pytest.mark.urls(SELF_TEST_URLCONF)
def test_the_walk_fails_a_view_that_validates_its_body_then_leaks(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    values = seed(tenant_a)
    route = _self_test_route("workflow-steps")
    url = route.url(values)
    client_b = _client(tenant_b)
    # What the walk used to send: `{}` gets a 422, which it accepted, so the leak went unseen.
    assert _call(client_b, "POST", url).status_code == 422

    problems = _walk_route(
        route, client_b, values, _secrets(tenant_a, values), bodies(values, ROUTES)
    )

    leaked = json.dumps(
        {"id": int(values["workflow_id"]), "external_id": f"{MARKER}-run", "name": f"{MARKER} run"},
        separators=(",", ":"),
    )
    assert problems == [
        f"POST {url} as tenant B -> 201: must be 403 or 404: {leaked}",
        f"POST {url} as tenant B -> 201: leaks "
        + str([f"marker={MARKER!r}", f"workflow_external_id={MARKER + '-run'!r}"]),
    ]


@pytest.mark.urls(SELF_TEST_URLCONF)
def test_the_walk_passes_a_view_that_validates_then_scopes(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    values = seed(tenant_a)
    route = _self_test_route("self-test-scoped")
    step = {"idempotency_key": "isolation-walk-step", "action": "chat", "quantity": 1}

    problems = _walk_route(
        route, _client(tenant_b), values, _secrets(tenant_a, values), {route.template: step}
    )

    assert problems == []


@pytest.mark.urls(SELF_TEST_URLCONF)
def test_the_walk_fails_an_id_write_route_without_a_body(
    tenant_a: Tenant, tenant_b: Tenant
) -> None:
    values = seed(tenant_a)
    route = _self_test_route("self-test-scoped")

    problems = _walk_route(route, _client(tenant_b), values, _secrets(tenant_a, values), {})

    assert problems == [
        "/api/v1/self-test/<int:workflow_id>/scoped takes ['workflow_id'] and accepts ['POST'], "
        "but no valid body is registered for it: add one with @register_bodies in "
        "tests/<app>/isolation.py (see tests/isolation.py)."
    ]


def test_the_readme_lists_every_api_route() -> None:
    """README.md's API table is read by people who never open the resolver: keep it true."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    rows = set(re.findall(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `(/api/v1/[^`]*)` \|", readme, re.M))

    assert rows == {(method, route.openapi_path) for route in ROUTES for method in route.methods}
