"""A batch answers per event, never a 500; a recorded event replays whatever its age."""

import json
import logging
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.models import UsageEvent
from metering.usage import record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import event_json, fund

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage-events"
BATCH_URL = "/api/v1/usage-events/batch"
UNSTORABLE = {
    "error": {
        "code": "unstorable_value",
        "message": "The event holds a value that cannot be stored; nothing was recorded.",
        "fields": {
            "non_field_errors": [
                "The event holds a value that cannot be stored; nothing was recorded."
            ]
        },
    }
}


@pytest.fixture
def funded(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    ratecard_seed_example()
    fund(tenant, 10_000)
    return tenant


def test_a_batch_of_1000_with_one_bad_event_records_the_other_999(
    api_client: APIClient, funded: Tenant
) -> None:
    events = [event_json(idempotency_key=f"k{i}") for i in range(1000)]
    events[500]["quantity"] = "1e24"

    response = api_client.post(BATCH_URL, {"events": events}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201] * 500 + [422] + [201] * 499
    assert results[500]["body"]["error"]["fields"] == {
        "quantity": ["Must be at most 99999999999999.9999."]
    }
    assert UsageEvent.objects.count() == 999
    assert available_get(tenant=funded) == Decimal("9001.0000")
    assert ledger_verify(tenant=funded) == []


@pytest.fixture
def validation_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A gap in the validation, as a future field might open one: it lets everything through,
    so a count past its integer column reaches the database, which refuses it."""
    monkeypatch.setattr(record, "usage_input_validate", lambda **_: None)


@pytest.mark.usefixtures("validation_gap")
def test_a_value_the_database_refuses_spoils_only_its_own_slot(
    api_client: APIClient, funded: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    events = [
        event_json(idempotency_key="a"),
        event_json(idempotency_key="b", tool_calls=2**31),
        event_json(idempotency_key="c", quantity="2"),
    ]

    with caplog.at_level(logging.ERROR, logger="metering.usage.record"):
        response = api_client.post(BATCH_URL, {"events": events}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 201]
    assert results[1]["body"] == UNSTORABLE
    assert sorted(UsageEvent.objects.values_list("idempotency_key", flat=True)) == ["a", "c"]
    assert available_get(tenant=funded) == Decimal("9997.0000")
    assert ledger_verify(tenant=funded) == []
    # The gap is logged, to be closed.
    logged = [r.getMessage() for r in caplog.records if r.name == "metering.usage.record"]
    assert len(logged) == 1
    assert logged[0].startswith("usage event 'b' refused by the database: ")


@pytest.mark.usefixtures("validation_gap")
def test_a_single_event_the_database_refuses_is_422_and_writes_nothing(
    api_client: APIClient, funded: Tenant
) -> None:
    response = api_client.post(URL, event_json(tool_calls=2**31), format="json")

    assert response.status_code == 422
    assert response.json() == UNSTORABLE
    assert not UsageEvent.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="debit").exists()
    assert available_get(tenant=funded) == Decimal("10000.0000")


# ---------------------------------------------------------------------------------------------
# The backdating window applies to new events, not to replays


def test_a_retry_after_the_window_closed_replays_the_recorded_event(
    api_client: APIClient, funded: Tenant, frozen_time: time_machine.Traveller
) -> None:
    frozen_time.shift(timedelta(days=30))  # the card is in force from 30 days back
    body = event_json(occurred_at="2026-01-20T12:00:00Z")  # 25 days back: inside the window
    first = api_client.post(URL, body, format="json")
    frozen_time.shift(timedelta(days=20))  # now 45 days back: outside

    again = api_client.post(URL, body, format="json")
    in_batch = api_client.post(BATCH_URL, {"events": [body]}, format="json")
    other_body = api_client.post(URL, {**body, "quantity": "2"}, format="json")
    new_key = api_client.post(URL, {**body, "idempotency_key": "evt-2"}, format="json")

    assert first.status_code == 201, first.json()
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert in_batch.json()["results"] == [{"status": 200, "body": first.json()}]
    assert other_body.status_code == 409
    assert other_body.json()["error"]["code"] == "idempotency_conflict"
    assert new_key.status_code == 422
    assert new_key.json()["error"]["fields"] == {
        "occurred_at": ["Must not be older than the backdating window of 35 days."]
    }
    assert UsageEvent.objects.count() == 1
    assert available_get(tenant=funded) == Decimal("9999.0000")


def test_a_repeat_in_a_batch_of_an_event_outside_the_window_is_refused_like_it(
    api_client: APIClient, funded: Tenant
) -> None:
    old = event_json(idempotency_key="old", occurred_at="2025-11-01T00:00:00Z")

    response = api_client.post(BATCH_URL, {"events": [old, old]}, format="json")

    results: list[dict[str, Any]] = response.json()["results"]
    assert [r["status"] for r in results] == [422, 422]
    assert results[0] == results[1]
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [
        ("idempotency_key", "k\x001", "idempotency_key"),
        ("labels", {"team": "a\x00b"}, "labels"),
        ("labels", {"bad\ud800key": "x"}, "labels"),
    ],
)
def test_a_nul_or_a_lone_surrogate_in_one_event_of_a_batch_spoils_only_its_slot(
    api_client: APIClient, funded: Tenant, field: str, value: Any, where: str
) -> None:
    events = [event_json(idempotency_key=f"k{i}") for i in range(3)]
    events[1][field] = value
    # As JSON carries them: \u0000 and \ud800 escapes.
    body = json.dumps({"events": events})

    response = api_client.post(BATCH_URL, body, content_type="application/json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 201]
    assert results[1]["body"]["error"]["code"] == "invalid_input"
    assert list(results[1]["body"]["error"]["fields"]) == [where]
    assert sorted(UsageEvent.objects.values_list("idempotency_key", flat=True)) == ["k0", "k2"]
    assert available_get(tenant=funded) == Decimal("9998.0000")


def test_a_batch_with_a_field_besides_events_is_refused_whole(
    api_client: APIClient, funded: Tenant
) -> None:
    body = {"events": [event_json(idempotency_key="k1")], "dry_run": True}

    response = api_client.post(BATCH_URL, body, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "dry_run": ["Unknown field: a batch has only `events`."]
    }
    assert UsageEvent.objects.count() == 0
