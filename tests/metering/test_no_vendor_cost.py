"""Customers never see the vendor's cost: no `cogs`, `revenue` or `margin` (nor any cogs_*,
revenue_*, margin_* field) in any response a tenant's API key gets. The vendor's side still
reads them: they stay in the database.

Every GET under /api/v1/ is read from the URL resolver (as tests/test_isolation.py does), so a
route added later is walked too; the writes that return usage (events, batches, workflow
starts, steps and endings) are called here one by one.
"""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from metering.models import UsageEvent, WorkflowRun
from tenants.models import ApiKey, Tenant
from tests.isolation import API_PREFIX, api_routes, seed
from tests.metering.factories import event_json

pytestmark = pytest.mark.django_db

VENDOR_ONLY = ("cogs", "revenue", "margin")
GET_ROUTES = [route for route in api_routes() if "GET" in route.methods]


def vendor_fields(body: Any, where: str = "") -> Iterator[str]:
    """Where in a JSON body a key names the vendor's cost, revenue or margin."""
    if isinstance(body, dict):
        for key, value in body.items():
            path = f"{where}.{key}" if where else str(key)
            if any(str(key) == name or str(key).startswith(f"{name}_") for name in VENDOR_ONLY):
                yield path
            yield from vendor_fields(value, path)
    elif isinstance(body, list):
        for i, item in enumerate(body):
            yield from vendor_fields(item, f"{where}[{i}]")


def test_the_detector_finds_nested_vendor_fields() -> None:
    body = {"results": [{"id": 1, "cogs_minor": "1"}, {"step": {"revenue": {}, "margin": 1}}]}

    assert list(vendor_fields(body)) == [
        "results[0].cogs_minor",
        "results[1].step.revenue",
        "results[1].step.margin",
    ]
    assert list(vendor_fields({"credits": "1", "cost_basis_minor": "2"})) == []


@pytest.fixture
def client(tenant: Tenant, make_client: Callable[..., APIClient]) -> APIClient:
    """A key with every scope: it may read every route."""
    return make_client(tenant, scopes=tuple(ApiKey.Scope.values))


@pytest.fixture
def usage(tenant: Tenant, frozen_time: time_machine.Traveller) -> dict[str, str]:
    """The tenant's usage as every app's isolation seeder makes it (events, a run with a step,
    purchases, ...), with costs and revenue recorded."""
    values = seed(tenant)
    assert UsageEvent.objects.filter(tenant=tenant, cogs_minor__gte=0).exists()
    return values


@pytest.mark.parametrize(
    "route", GET_ROUTES, ids=[r.template.removeprefix(API_PREFIX) for r in GET_ROUTES]
)
def test_no_get_route_shows_the_vendors_cost(
    client: APIClient, usage: dict[str, str], route: Any
) -> None:
    if "webhooks/" in route.template:
        pytest.skip("webhooks/ routes are called by Stripe, not with a tenant's key")
    missing = [kwarg for kwarg in route.kwargs if kwarg not in usage]
    assert missing == [], f"no isolation seeder fills {missing}"

    response = client.get(route.url(usage))

    assert response.status_code == 200, response.content
    assert list(vendor_fields(response.json())) == []


def test_no_usage_write_shows_the_vendors_cost(
    client: APIClient, tenant: Tenant, usage: dict[str, str]
) -> None:
    costly = {"input_tokens": 1000, "tool_calls": 1}
    answers = [
        client.post(
            "/api/v1/usage-events", event_json(idempotency_key="e1", **costly), format="json"
        ),
        client.post(
            "/api/v1/usage-events/batch",
            {"events": [event_json(idempotency_key="e2", **costly)]},
            format="json",
        ),
    ]
    started = client.post("/api/v1/workflows", {"external_id": "job-x"}, format="json")
    run = f"/api/v1/workflows/{started.json()['id']}"
    step = {"idempotency_key": "w1", "action": "chat", **costly}
    answers += [
        started,
        client.post(f"{run}/steps", step, format="json"),
        client.post(f"{run}/steps", step, format="json"),  # a replay
        client.post(f"{run}/complete", {}, format="json"),
        client.post(f"{run}/cancel", {}, format="json"),  # refused: already completed
    ]

    assert [a.status_code for a in answers] == [201, 200, 201, 201, 200, 200, 409]
    assert {str(i): list(vendor_fields(a.json())) for i, a in enumerate(answers)} == {
        str(i): [] for i in range(len(answers))
    }
    # The vendor's side still has them.
    run_row = WorkflowRun.objects.get(tenant=tenant, external_id="job-x")
    assert run_row.cogs_minor > Decimal(0)
    assert UsageEvent.objects.get(tenant=tenant, idempotency_key="e1").cogs_minor > Decimal(0)
