"""POST/GET /api/v1/usage-events and /batch: the HTTP contract, status codes and error bodies."""

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import CreditBucket, LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.api.usage import UsageEventOutputSerializer, usage_event_body
from metering.models import UsageEvent
from ratecards.models import RateCard
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import event_json, fund
from tests.ratecards.factories import publish_version

pytestmark = pytest.mark.django_db

URL = "/api/v1/usage-events"
BATCH_URL = "/api/v1/usage-events/batch"


@pytest.fixture
def card(frozen_time: time_machine.Traveller) -> RateCard:
    """The example card (chat 1, doc_search 3, web_research 10, action_execution 15,
    resolution 50 on success, turbo x6) and cost catalog, in force from 2026-01-15 12:00."""
    return ratecard_seed_example()


@pytest.fixture
def pack(tenant: Tenant, card: RateCard) -> CreditBucket:
    """1,000 credits bought for $10.00: a cost basis of 1 cent a credit."""
    return fund(tenant, 1000, price_minor=1000)


def post(client: APIClient, **fields: Any) -> Any:
    return client.post(URL, event_json(**fields), format="json")


def test_a_new_event_is_priced_debited_and_returned(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    response = post(
        api_client,
        idempotency_key="evt-1",
        action="web_research",
        quantity="2",
        labels={"end_user": "u-42", "project": "alpha"},
        input_tokens=1000,
    )

    assert response.status_code == 201
    event = UsageEvent.objects.get(tenant=tenant)
    version = event.rate_card_version
    assert response.json() == {
        "id": event.pk,
        "idempotency_key": "evt-1",
        "action": "web_research",
        "model_class": "",
        "quantity": "2.0000",
        "occurred_at": "2026-01-15T12:00:00Z",
        "outcome": "success",
        "labels": {"end_user": "u-42", "project": "alpha"},
        "workflow_run": None,
        "step_index": None,
        "credits": "20.0000",
        "rate_card_version": {"id": version.pk, "number": 1},
        "buckets": [{"bucket_id": pack.pk, "credits": "20.0000", "policy": "permanent"}],
        "balance_after": "980.0000",
        "components": {
            "input_tokens": 1000,
            "output_tokens": 0,
            "tool_calls": 0,
            "vector_reads": 0,
            "orchestration_runs": 0,
            "gpu_seconds": "0.000",
        },
        "created_at": "2026-01-15T12:00:00Z",
    }
    # The vendor's cost and revenue are kept, for the vendor only: 1,000 input tokens at $2.50
    # per million (a quarter of a cent); 20 credits bought at 1 cent each.
    assert (event.cogs_minor, event.cogs_currency) == (Decimal("0.25"), "USD")
    assert (event.revenue_minor, event.revenue_currency) == (Decimal("20"), "USD")
    assert "Idempotent-Replayed" not in response
    tx = LedgerTransaction.objects.get(tenant=tenant, kind="debit")
    assert (tx.idempotency_key, tx.amount, tx.source_type, tx.source_id) == (
        "usage:evt-1",
        Decimal("-20.0000"),
        "usage_event",
        "evt-1",
    )
    assert event.ledger_transaction == tx
    assert available_get(tenant=tenant) == Decimal("980.0000")
    assert ledger_verify(tenant=tenant) == []


def test_the_same_key_and_body_replays_the_original(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket, frozen_time: time_machine.Traveller
) -> None:
    first = post(api_client, occurred_at="2026-01-15T14:00:00+02:00", quantity=3)
    frozen_time.shift(timedelta(minutes=10))

    # The same event spelled differently: 3 vs "3.0000", +02:00 vs Z, a zero component.
    again = post(api_client, occurred_at="2026-01-15T12:00:00Z", quantity="3.0000", tool_calls=0)

    assert first.status_code == 201
    assert again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert first.json()["occurred_at"] == "2026-01-15T12:00:00Z"
    assert UsageEvent.objects.filter(tenant=tenant).count() == 1
    assert LedgerTransaction.objects.filter(tenant=tenant, kind="debit").count() == 1
    assert available_get(tenant=tenant) == Decimal("997.0000")


def test_the_same_key_with_another_body_is_a_conflict(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    post(api_client, quantity="1")

    response = post(api_client, quantity="2")

    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "idempotency_conflict",
            "message": "This idempotency key was already used for a different usage event.",
            "idempotency_key": "evt-1",
        }
    }
    assert available_get(tenant=tenant) == Decimal("999.0000")


def test_insufficient_credits_is_402_and_writes_nothing(
    api_client: APIClient, tenant: Tenant, card: RateCard
) -> None:
    fund(tenant, 10)

    response = post(api_client, action="action_execution")

    assert response.status_code == 402
    assert response.json() == {
        "error": {
            "code": "insufficient_credits",
            "message": "The available balance cannot cover this charge.",
            "required": "15.0000",
            "available": "10.0000",
        }
    }
    assert not UsageEvent.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="debit").exists()
    # Nothing was written, so the same key may be used again once credits arrive.
    fund(tenant, 100, reference="pack-2")
    assert post(api_client, action="action_execution").status_code == 201


def test_an_unknown_action_is_422_naming_the_field(api_client: APIClient, pack: Any) -> None:
    response = post(api_client, action="teleport")

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "unknown_action",
            "message": "The rate card has no action 'teleport'.",
            "fields": {"action": ["The rate card has no action 'teleport'."]},
            "field": "action",
            "action": "teleport",
        }
    }
    assert not UsageEvent.objects.exists()


def test_an_unknown_model_class_is_422_naming_the_field(api_client: APIClient, pack: Any) -> None:
    response = post(api_client, model_class="quantum")

    assert response.status_code == 422
    assert response.json()["error"] == {
        "code": "unknown_model_class",
        "message": "The rate card has no model class 'quantum'.",
        "fields": {"model_class": ["The rate card has no model class 'quantum'."]},
        "field": "model_class",
        "model_class": "quantum",
    }


def test_a_model_class_multiplier_applies(api_client: APIClient, pack: Any) -> None:
    response = post(api_client, action="doc_search", model_class="turbo", quantity="2")

    assert response.status_code == 201
    assert response.json()["credits"] == "36.0000"  # 3 x 6 x 2


@pytest.mark.parametrize(
    ("quantity", "message"),
    [
        ("0", "Must be greater than 0."),
        (-1, "Must be greater than 0."),
        ("many", "A valid number is required."),
        ("NaN", "A valid number is required."),
        (True, "A valid number is required."),
        ("1.00001", "Ensure that there are no more than 4 decimal places."),
        ("1e20", "Must be at most 99999999999999.9999."),
    ],
)
def test_a_bad_quantity_is_422_naming_quantity(
    api_client: APIClient, pack: Any, quantity: Any, message: str
) -> None:
    response = post(api_client, quantity=quantity)

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"quantity: {message}",
            "fields": {"quantity": [message]},
        }
    }
    assert not UsageEvent.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"idempotency_key": None}, "idempotency_key", "This field is required."),
        ({"idempotency_key": ""}, "idempotency_key", "Must be 1 to 255 characters."),
        ({"idempotency_key": "k" * 256}, "idempotency_key", "Must be 1 to 255 characters."),
        ({"action": 7}, "action", "Not a valid string."),
        ({"outcome": "maybe"}, "outcome", "Must be one of ['success', 'failure']."),
        ({"tool_calls": -1}, "tool_calls", "Must be a non-negative integer."),
        ({"input_tokens": 1.5}, "input_tokens", "Must be a non-negative integer."),
        ({"labels": ["a"]}, "labels", "Must be a JSON object."),
        (
            {"occurred_at": "yesterday"},
            "occurred_at",
            "Must be an ISO 8601 date and time with a time zone.",
        ),
        ({"occurred_at": "2026-01-15T12:00:00"}, "occurred_at", "Must carry a time zone."),
    ],
)
def test_other_bad_fields_are_422_naming_the_field(
    api_client: APIClient, pack: Any, body: dict[str, Any], field: str, message: str
) -> None:
    response = api_client.post(URL, {**event_json(), **body}, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"{field}: {message}",
            "fields": {field: [message]},
        }
    }


@pytest.mark.parametrize(
    ("occurred_at", "accepted"),
    [
        ("2026-01-15T12:05:00Z", True),  # exactly 5 minutes ahead
        ("2026-01-15T12:05:00.000001Z", False),
        ("2025-12-11T12:00:00Z", True),  # exactly 35 days back
        ("2025-12-11T11:59:59Z", False),
    ],
)
def test_occurred_at_must_lie_in_the_window(
    api_client: APIClient, pack: Any, occurred_at: str, accepted: bool
) -> None:
    response = post(api_client, occurred_at=occurred_at)

    if accepted:
        # Before the card took effect an event is priced by its first version all the same.
        assert response.status_code in (201, 422)
        assert response.json().get("error", {}).get("code") != "invalid_input"
        return
    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert list(fields) == ["occurred_at"]
    assert fields["occurred_at"][0] in (
        "Must not be more than 5 minutes in the future.",
        "Must not be older than the backdating window of 35 days.",
    )


def test_the_backdating_window_is_a_setting_read_at_call_time(
    api_client: APIClient, pack: Any, settings: Any
) -> None:
    settings.CREDITLINE_BACKDATE_DAYS = 1

    response = post(api_client, occurred_at="2026-01-14T11:00:00Z")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "occurred_at": ["Must not be older than the backdating window of 1 days."]
    }


def test_an_outcome_priced_failure_costs_no_credits_but_keeps_its_cogs(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    response = post(api_client, action="resolution", outcome="failure", tool_calls=2)

    assert response.status_code == 201
    body = response.json()
    assert (body["credits"], body["buckets"], body["balance_after"]) == ("0.0000", [], "1000.0000")
    event = UsageEvent.objects.get()
    assert (event.cogs_minor, event.revenue_minor) == (Decimal("16"), Decimal("0"))
    assert event.ledger_transaction is None
    assert not LedgerTransaction.objects.filter(kind="debit").exists()
    # The same action succeeding is charged.
    success = post(api_client, idempotency_key="evt-2", action="resolution", outcome="success")
    assert success.json()["credits"] == "50.0000"


def test_the_seed_posts_margin_example_costs_exactly_301_cents(
    api_client: APIClient, pack: CreditBucket
) -> None:
    # $1.25 of input, $1.50 of output, $0.16 of tool calls, $0.10 of orchestration.
    response = post(
        api_client,
        action="action_execution",
        input_tokens=500_000,
        output_tokens=100_000,
        tool_calls=2,
        orchestration_runs=1,
    )

    assert response.status_code == 201
    assert UsageEvent.objects.get().cogs_minor == Decimal("301")


def test_revenue_follows_the_cost_basis_of_the_buckets_drawn(
    api_client: APIClient, tenant: Tenant, card: RateCard
) -> None:
    free = fund(
        tenant,
        10,
        reference="promo",
        source=CreditBucket.Source.PROMOTION,
        policy=CreditBucket.Policy.MONTHLY_RESET,
        expires_at=timezone.now() + timedelta(days=20),
    )
    paid = fund(tenant, 3000, price_minor=2000, reference="pack-20usd")  # 0.66666667 c/credit

    response = post(api_client, action="action_execution")  # 15 credits: 10 free, then 5 paid

    body = response.json()
    assert body["buckets"] == [
        {"bucket_id": free.pk, "credits": "10.0000", "policy": "monthly_reset"},
        {"bucket_id": paid.pk, "credits": "5.0000", "policy": "permanent"},
    ]
    assert paid.cost_basis_minor == Decimal("0.66666667")
    assert UsageEvent.objects.get().revenue_minor == Decimal("3.33333335")


def test_an_event_is_priced_by_the_version_in_force_when_it_occurred(
    api_client: APIClient, tenant: Tenant, card: RateCard, frozen_time: time_machine.Traveller
) -> None:
    fund(tenant, 1000)
    boundary = timezone.now() + timedelta(days=1)
    v2 = publish_version(card, {"chat": "2"}, effective_from=boundary)
    frozen_time.shift(timedelta(days=2))

    before = post(api_client, idempotency_key="a", occurred_at="2026-01-16T11:59:59.999999Z")
    at = post(api_client, idempotency_key="b", occurred_at="2026-01-16T12:00:00Z")
    now = post(api_client, idempotency_key="c")

    assert (before.json()["credits"], before.json()["rate_card_version"]["number"]) == (
        "1.0000",
        1,
    )
    assert at.json()["credits"] == "2.0000"
    assert at.json()["rate_card_version"] == {"id": v2.pk, "number": 2}
    assert now.json()["rate_card_version"]["number"] == 2


def test_the_rendered_body_matches_the_documented_schema(
    api_client: APIClient, pack: CreditBucket
) -> None:
    post(api_client)

    body = usage_event_body(UsageEvent.objects.get())

    assert set(body) == set(UsageEventOutputSerializer().fields)


def test_write_needs_the_write_scope(make_client: Any, tenant: Tenant, pack: CreditBucket) -> None:
    reader = make_client(tenant, scopes=("read",))

    response = reader.post(URL, event_json(), format="json")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_no_api_key_is_401(pack: CreditBucket) -> None:
    response = APIClient().post(URL, event_json(), format="json")

    assert response.status_code == 401


# ---------------------------------------------------------------------------------------------
# Batch


def test_a_batch_returns_a_result_per_event_in_order(
    api_client: APIClient, tenant: Tenant, card: RateCard
) -> None:
    fund(tenant, 20)
    post(api_client, idempotency_key="old", quantity="2")  # 18 left
    events = [
        event_json(idempotency_key="a", action="web_research"),  # 10 -> 8 left
        event_json(idempotency_key="b", quantity="0"),  # invalid
        event_json(idempotency_key="c", action="teleport"),  # unknown action
        event_json(idempotency_key="d", action="action_execution"),  # 15 > 8: insufficient
        event_json(idempotency_key="a", action="web_research"),  # same key, same body
        event_json(idempotency_key="a", action="chat"),  # same key, other body
        event_json(idempotency_key="old", quantity="2"),  # recorded before: replay
        event_json(idempotency_key="old", quantity="3"),  # recorded before, other body
        event_json(idempotency_key="e", action="resolution", outcome="failure"),  # free
        event_json(idempotency_key="f", quantity="8"),  # 8 -> 0 left
        "not an object",
    ]

    response = api_client.post(BATCH_URL, {"events": events}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 402, 200, 409, 200, 409, 201, 201, 422]
    a = UsageEvent.objects.get(idempotency_key="a")
    assert results[0]["body"] == usage_event_body(a)
    assert results[0]["body"]["balance_after"] == "8.0000"
    assert results[1]["body"] == {
        "error": {
            "code": "invalid_input",
            "message": "quantity: Must be greater than 0.",
            "fields": {"quantity": ["Must be greater than 0."]},
        }
    }
    assert results[2]["body"]["error"]["code"] == "unknown_action"
    assert results[3]["body"] == {
        "error": {
            "code": "insufficient_credits",
            "message": "The available balance cannot cover this charge.",
            "required": "15.0000",
            "available": "8.0000",
        }
    }
    assert results[4]["body"] == results[0]["body"]
    assert results[5]["body"]["error"] == {
        "code": "idempotency_conflict",
        "message": "This idempotency key was already used for a different usage event.",
        "idempotency_key": "a",
    }
    assert results[6]["body"] == usage_event_body(UsageEvent.objects.get(idempotency_key="old"))
    assert results[7]["body"]["error"]["code"] == "idempotency_conflict"
    assert (results[8]["body"]["credits"], results[8]["body"]["balance_after"]) == (
        "0.0000",
        "8.0000",
    )
    assert results[9]["body"]["balance_after"] == "0.0000"
    assert results[10]["body"]["error"]["fields"] == {
        "non_field_errors": ["Each event must be a JSON object."]
    }
    assert sorted(UsageEvent.objects.values_list("idempotency_key", flat=True)) == [
        "a",
        "e",
        "f",
        "old",
    ]
    assert available_get(tenant=tenant) == Decimal("0.0000")
    assert ledger_verify(tenant=tenant) == []


def test_a_batch_replayed_whole_changes_nothing(
    api_client: APIClient, tenant: Tenant, pack: CreditBucket
) -> None:
    events = [event_json(idempotency_key=f"k{i}", quantity=str(i + 1)) for i in range(5)]
    first = api_client.post(BATCH_URL, {"events": events}, format="json").json()["results"]

    again = api_client.post(BATCH_URL, {"events": events}, format="json").json()["results"]

    assert [r["status"] for r in first] == [201] * 5
    assert [r["status"] for r in again] == [200] * 5
    assert [r["body"] for r in again] == [r["body"] for r in first]
    assert available_get(tenant=tenant) == Decimal("985.0000")


def test_a_batch_of_more_than_1000_events_is_422(api_client: APIClient, pack: Any) -> None:
    events = [event_json(idempotency_key=f"k{i}") for i in range(1001)]

    response = api_client.post(BATCH_URL, {"events": events}, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": "A batch holds at most 1000 events.",
            "limit": 1000,
            "received": 1001,
        }
    }
    assert not UsageEvent.objects.exists()


def test_a_batch_needs_a_list_of_events(api_client: APIClient, pack: Any) -> None:
    response = api_client.post(BATCH_URL, {"events": {"a": 1}}, format="json")

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"events": ["Must be a list of events."]}


def test_a_batch_prices_each_event_by_its_own_version(
    api_client: APIClient, tenant: Tenant, card: RateCard, frozen_time: time_machine.Traveller
) -> None:
    fund(tenant, 1000)
    publish_version(card, {"chat": "2"}, effective_from=timezone.now() + timedelta(days=1))
    publish_version(card, {"chat": "4"}, effective_from=timezone.now() + timedelta(days=3))
    frozen_time.shift(timedelta(days=4))
    start = timezone.now() - timedelta(days=4)
    # An event every 2 hours over the 4 days, shuffled: versions 1, 2 and 3.
    times = [start + timedelta(hours=2 * i) for i in range(48)]
    order = times[1::2] + times[::2]
    events = [event_json(idempotency_key=t.isoformat(), occurred_at=t.isoformat()) for t in order]

    results = api_client.post(BATCH_URL, {"events": events}, format="json").json()["results"]

    for t, result in zip(order, results, strict=True):
        expected = "1.0000" if t < start + timedelta(days=1) else "2.0000"
        if t >= start + timedelta(days=3):
            expected = "4.0000"
        assert result["status"] == 201
        assert result["body"]["credits"] == expected, t


# ---------------------------------------------------------------------------------------------
# The list


def test_the_list_filters_and_pages(
    api_client: APIClient, other_client: APIClient, tenant: Tenant, pack: Any
) -> None:
    for i, action in enumerate(["chat", "doc_search", "chat"]):
        post(api_client, idempotency_key=f"k{i}", action=action)

    chats = api_client.get(URL, {"action": "chat", "limit": "1"}).json()
    rest = api_client.get(chats["next"]).json()
    theirs = other_client.get(URL).json()

    assert [e["idempotency_key"] for e in chats["results"]] == ["k2"]
    assert [e["idempotency_key"] for e in rest["results"]] == ["k0"]
    assert rest["next"] is None
    assert theirs["results"] == []


def test_the_list_refuses_another_tenants_workflow_run(
    api_client: APIClient, other_tenant: Tenant, pack: Any
) -> None:
    from metering.models import WorkflowRun

    run = WorkflowRun.objects.create(
        tenant=other_tenant, external_id="r1", last_activity_at=timezone.now()
    )

    response = api_client.get(URL, {"workflow_run": str(run.pk)})

    assert response.status_code == 404
