"""GPU seconds, the one cost component measured rather than counted: accepted to the
millisecond, costed by the catalog in force, returned and replayed alike, refused when bad, and
an event carrying only GPU time has a known cost in the rollup."""

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from ledger.models import CreditBucket
from metering.models import UsageDay, UsageEvent
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_request_hash
from ratecards.models import CostPrice, RateCard
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    cost_price_set,
    ratecard_seed_example,
)
from tenants.models import Tenant
from tests.metering.factories import event_json, fund, invalid_input

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage-events"
NOT_SECONDS = "Must be a non-negative number of seconds with at most 3 decimal places."


@pytest.fixture
def card(frozen_time: time_machine.Traveller) -> RateCard:
    """The example card, and a cost catalog pricing a GPU second at 0.05 cents (5 per 100) and
    an input token at 2.5 cents per 10,000, in force from the card's start."""
    card = ratecard_seed_example()
    catalog = cost_catalog_version_create_draft(currency="USD", notes="GPU")
    cost_price_set(
        version=catalog, component=CostPrice.Component.GPU_SECONDS, price_minor="5", per_units=100
    )
    cost_price_set(
        version=catalog,
        component=CostPrice.Component.INPUT_TOKENS,
        price_minor="2.5",
        per_units=10_000,
    )
    cost_catalog_version_publish(
        version=catalog, effective_from=datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    )
    frozen_time.move_to(datetime(2026, 1, 15, 13, tzinfo=UTC))
    return card


@pytest.fixture
def pack(tenant: Tenant, card: RateCard) -> CreditBucket:
    return fund(tenant, 1000, price_minor=1000)


def test_gpu_seconds_are_costed_returned_and_replayed_to_the_millisecond(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    body = event_json(idempotency_key="gpu-1", gpu_seconds="2.25", input_tokens=400)

    created = api_client.post(URL, body, format="json")
    again = api_client.post(URL, {**body, "gpu_seconds": 2.250}, format="json")

    assert created.status_code == 201, created.json()
    assert created.json()["components"] == {
        "input_tokens": 400,
        "output_tokens": 0,
        "tool_calls": 0,
        "vector_reads": 0,
        "orchestration_runs": 0,
        "gpu_seconds": "2.250",
    }
    # The same event spelled as a number: a replay, the same body.
    assert again.status_code == 200
    assert again.json() == created.json()
    event = UsageEvent.objects.get()
    assert event.gpu_seconds == Decimal("2.250")
    # 2.25 s x 0.05 cents + 400 tokens x 0.00025 cents.
    assert (event.cogs_minor, event.cogs_currency) == (Decimal("0.2125"), "USD")


def test_an_event_without_gpu_time_says_zero(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    response = api_client.post(URL, event_json(input_tokens=10), format="json")

    assert response.status_code == 201
    assert response.json()["components"]["gpu_seconds"] == "0.000"
    assert UsageEvent.objects.get().gpu_seconds == Decimal("0.000")


def test_the_request_hash_of_an_event_without_gpu_time_is_what_it_was_before_them() -> None:
    # Events recorded before GPU seconds existed keep replaying: their canonical body had the
    # five counts only.
    data = UsageInput(idempotency_key="k", action="chat", quantity=Decimal(2), input_tokens=7)
    before: dict[str, object] = {
        "action": "chat",
        "model_class": "",
        "quantity": "2.0000",
        "occurred_at": None,
        "outcome": "success",
        "labels": {},
        "workflow_run": None,
        "step_index": None,
        "input_tokens": 7,
        "output_tokens": 0,
        "tool_calls": 0,
        "vector_reads": 0,
        "orchestration_runs": 0,
    }
    text = json.dumps(before, sort_keys=True, separators=(",", ":"))

    assert usage_request_hash(data=data) == hashlib.sha256(text.encode()).hexdigest()
    assert usage_request_hash(data=data) != usage_request_hash(
        data=UsageInput(**{**data.__dict__, "gpu_seconds": Decimal("0.001")})
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, NOT_SECONDS),
        ("0.0005", NOT_SECONDS),
        ("1e-4", NOT_SECONDS),
        ("soon", NOT_SECONDS),
        (True, NOT_SECONDS),
        ("NaN", NOT_SECONDS),
        ([1], NOT_SECONDS),
        (31_622_401, "Must be at most 31622400."),
        ("1" + "0" * 40, "Must be at most 31622400."),
    ],
)
def test_bad_gpu_seconds_are_422_naming_the_field(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket, value: Any, message: str
) -> None:
    response = api_client.post(URL, event_json(gpu_seconds=value), format="json")

    assert response.status_code == 422, response.content
    assert response.json() == invalid_input("gpu_seconds", message)
    assert not UsageEvent.objects.exists()


def test_an_event_with_only_gpu_time_has_a_known_cost_in_the_rollup(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    api_client.post(URL, event_json(idempotency_key="gpu", gpu_seconds="0.5"), format="json")
    api_client.post(URL, event_json(idempotency_key="none"), format="json")

    usage_rollup_update()

    day = UsageDay.objects.get(tenant=tenant)
    assert (day.events, day.events_without_cost) == (2, 1)
    assert day.cogs_minor == Decimal("0.025")
