"""Idempotency keys of every documented length (1 to 255 characters) work end to end: the
ledger's own key for the debit is "usage:<key>", which must fit its column too."""

from decimal import Decimal

import pytest
import time_machine
from rest_framework.test import APIClient

from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.models import UsageEvent
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import event_json, fund

pytestmark = pytest.mark.django_db

LENGTHS = [1, 200, 249, 250, 254, 255]


@pytest.fixture
def funded(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    ratecard_seed_example()
    fund(tenant, 1000)
    return tenant


@pytest.mark.parametrize("length", LENGTHS)
def test_a_key_of_each_documented_length_is_recorded_and_replayed(
    api_client: APIClient, funded: Tenant, length: int
) -> None:
    key = "k" * length

    first = api_client.post("/api/v1/usage-events", event_json(idempotency_key=key), format="json")
    again = api_client.post("/api/v1/usage-events", event_json(idempotency_key=key), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["idempotency_key"] == key
    assert again.json() == first.json()
    tx = LedgerTransaction.objects.get(tenant=funded, kind="debit")
    assert (tx.idempotency_key, tx.source_id) == (f"usage:{key}", key)
    assert available_get(tenant=funded) == Decimal("999.0000")
    assert ledger_verify(tenant=funded) == []


def test_a_batch_of_the_longest_keys_is_recorded(api_client: APIClient, funded: Tenant) -> None:
    # 255 characters, multi-byte ones included: the limit is in characters, not bytes.
    keys = [f"{i:03d}" + "é" * 252 for i in range(3)]
    events = [event_json(idempotency_key=key) for key in keys]

    response = api_client.post("/api/v1/usage-events/batch", {"events": events}, format="json")

    assert [r["status"] for r in response.json()["results"]] == [201, 201, 201]
    assert sorted(UsageEvent.objects.values_list("idempotency_key", flat=True)) == keys
    assert available_get(tenant=funded) == Decimal("997.0000")


def test_a_workflow_step_with_the_longest_key_is_charged(
    api_client: APIClient, funded: Tenant
) -> None:
    run = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json").json()
    key = "s" * 255

    response = api_client.post(
        f"/api/v1/workflows/{run['id']}/steps",
        {"idempotency_key": key, "action": "chat", "quantity": "1"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["step"]["idempotency_key"] == key
    assert LedgerTransaction.objects.get(tenant=funded, kind="debit").idempotency_key == (
        f"usage:{key}"
    )
