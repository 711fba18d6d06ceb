"""Two (eight) requests carrying one idempotency key at once: one effect, real PostgreSQL."""

import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.models import UsageEvent
from ratecards.services import ratecard_seed_example
from tenants.events import balance_changed, domain_event, receivers_replaced
from tenants.models import Tenant
from tests.metering.factories import event_json, fund

pytestmark = pytest.mark.django_db(transaction=True)

THREADS = 8


@pytest.fixture(autouse=True)
def _no_listeners() -> Iterator[None]:
    # Commits are real here, so the outbox's tasks run: keep this test about metering
    # (billing's alert receivers have their own tests).
    with receivers_replaced(balance_changed), receivers_replaced(domain_event):
        yield


def _race(client: APIClient, url: str, body: Any) -> list[Any]:
    barrier = threading.Barrier(THREADS)
    responses: list[Any] = [None] * THREADS

    def call(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            responses[i] = client.post(url, body, format="json")
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return responses


def test_concurrent_requests_with_one_key_debit_once(tenant: Tenant, api_client: APIClient) -> None:
    ratecard_seed_example()
    fund(tenant, 100)

    responses = _race(api_client, "/api/v1/usage-events", event_json(action="web_research"))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (THREADS - 1) + [201]
    assert all(r.json() == responses[0].json() for r in responses)
    assert [r.get("Idempotent-Replayed") for r in responses].count("true") == THREADS - 1
    assert UsageEvent.objects.filter(tenant=tenant).count() == 1
    assert LedgerTransaction.objects.filter(tenant=tenant, kind="debit").count() == 1
    assert available_get(tenant=tenant) == Decimal("90.0000")
    assert ledger_verify(tenant=tenant) == []


def test_concurrent_batches_with_one_set_of_keys_debit_once(
    tenant: Tenant, api_client: APIClient
) -> None:
    ratecard_seed_example()
    fund(tenant, 1000)
    events = [event_json(idempotency_key=f"k{i}", quantity=str(i + 1)) for i in range(20)]

    responses = _race(api_client, "/api/v1/usage-events/batch", {"events": events})

    firsts = [r for r in responses if r.json()["results"][0]["status"] == 201]
    assert len(firsts) == 1
    assert all(
        [item["status"] for item in r.json()["results"]] == [200] * 20
        for r in responses
        if r is not firsts[0]
    )
    assert UsageEvent.objects.filter(tenant=tenant).count() == 20
    assert available_get(tenant=tenant) == Decimal("790.0000")  # 1000 - (1 + ... + 20)
    assert ledger_verify(tenant=tenant) == []
