"""The OpenAPI schema tells the truth: schemathesis generates requests for every operation of
the live schema (/api/schema/) and sends them to the app in-process, with a key of a tenant that
has credits, a rate card, a workflow run and a webhook endpoint. Every answer must be no server
error, a status the operation documents, and a body its schema describes.

Bounded: a fixed number of examples per operation, derandomized, so a run takes the same
time and finds the same things every time."""

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from billing.gateways import PaymentGateway
from config.wsgi import application
from tenants.models import Tenant
from tenants.services import api_key_create
from tests.isolation import seed

EXAMPLES = 30


# Loaded when the module is collected: drf-spectacular builds it without the database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture(autouse=True)
def _keep_the_test_connection() -> Iterator[None]:
    # Requests go to the WSGI app in-process, inside the test's transaction: as Django's test
    # client does, keep the request signals from closing the test's database connection.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture(autouse=True)
def _gateway_calls_inside_the_test_transaction(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same transaction holds the routes that call the payment gateway (the fake one here),
    # whose guard refuses to run inside one; the guard has its own tests, so it steps aside.
    monkeypatch.setattr(PaymentGateway, "outside_transaction", staticmethod(lambda: None))


@pytest.fixture
def authorization(tenant: Tenant, settings: Any) -> dict[str, str]:
    # Generated requests come from one address and some carry no valid key: the failed-auth
    # limit (tested on its own) would soon refuse everything; keep it out of the way.
    settings.CREDITLINE_AUTH_FAILURE_RATE = "1000000/min"
    seed(tenant)
    issued = api_key_create(tenant=tenant, name="schemathesis", scopes=("read", "write", "billing"))
    return {"Authorization": f"Bearer {issued.plaintext}"}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_its_schema_says(
    case: Any, authorization: dict[str, str]
) -> None:
    case.call_and_validate(
        headers=authorization,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
