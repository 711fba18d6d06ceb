"""A request whose database connection dies answers a JSON 503 with Retry-After, the next
request reconnects, and a retry of the same idempotency key has exactly one effect.

The connection is really killed: a hook on the request's connection runs, just before a chosen
statement, `pg_terminate_backend` of that connection's server process from a second connection,
and waits until the process is gone; the statement then meets a dead connection, as it would
when a database restarts or fails over mid-request.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
import time_machine
from django.db import connection
from rest_framework.test import APIClient

from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.models import UsageEvent
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import event_json, fund

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/v1/usage-events"
UNAVAILABLE = {
    "error": {
        "code": "service_unavailable",
        "message": "The service is briefly unavailable; retry in a moment.",
    }
}


def _terminate(pid: int) -> None:
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"],
        autocommit=True,
    ) as other:
        # With a timeout, PostgreSQL returns once the process has exited.
        row = other.execute("SELECT pg_terminate_backend(%s, 5000)", [pid]).fetchone()
        assert row == (True,)


@contextmanager
def killed_before(marker: str) -> Iterator[list[str]]:
    """Kill this thread's connection before the first statement containing `marker` ("" for
    the request's first statement); yields the statements it fired on."""
    fired: list[str] = []

    def hook(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        if marker in sql and not fired:
            fired.append(sql)
            _terminate(context["connection"].connection.info.backend_pid)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(hook):
        yield fired


@pytest.fixture
def funded(frozen_time: time_machine.Traveller, tenant: Tenant) -> Tenant:
    ratecard_seed_example()
    fund(tenant, 100)
    return tenant


def _debits(tenant: Tenant) -> int:
    return LedgerTransaction.objects.filter(tenant=tenant, kind="debit").count()


@pytest.mark.parametrize(
    "marker",
    [
        "",  # the request's first statement: the config stamp, with the key's lookup
        "metering_usage_record",  # the one statement that debits and inserts the event
    ],
)
def test_a_killed_connection_is_a_503_and_the_retry_has_one_effect(
    funded: Tenant, api_client: APIClient, marker: str
) -> None:
    body = event_json(idempotency_key="evt-outage", action="web_research")  # 10 credits

    with killed_before(marker) as fired:
        response = api_client.post(URL, body, format="json")

    assert fired, f"no statement contained {marker!r}"
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"] == "1"
    # The next request reconnects; the killed one left nothing behind.
    assert api_client.get("/api/v1/tenant").status_code == 200
    assert (UsageEvent.objects.count(), _debits(funded)) == (0, 0)

    retried = api_client.post(URL, body, format="json")
    replayed = api_client.post(URL, body, format="json")

    assert (retried.status_code, replayed.status_code) == (201, 200)
    assert replayed.json()["id"] == retried.json()["id"]
    assert (UsageEvent.objects.count(), _debits(funded)) == (1, 1)
    assert available_get(tenant=funded) == 90
    assert ledger_verify() == []


def test_a_killed_connection_on_a_read_is_a_503_too(funded: Tenant, api_client: APIClient) -> None:
    with killed_before("ledger_creditaccount") as fired:
        response = api_client.get("/api/v1/balance")

    assert fired
    assert (response.status_code, response.json()) == (503, UNAVAILABLE)
    assert response["Cache-Control"] == "no-store"
    assert api_client.get("/api/v1/balance").json()["available"] == "100.0000"
