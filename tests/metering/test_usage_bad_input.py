"""Bad usage events: each a 422 naming its field in the error shape, nothing written, alone
and inside a batch (where the good events around it are recorded). Every case here answered
500, or was read as something it is not, before."""

import json
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone
from rest_framework.test import APIClient

from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.exceptions import InvalidUsage
from metering.models import UsageEvent
from metering.services import (
    UsageInput,
    usage_event_record,
    usage_event_record_batch,
    usage_input_parse,
)
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
BATCH_URL = "/api/v1/usage-events/batch"

# The messages, spelt out here (not imported) so that a change of wording shows in a test.
TOO_MUCH = "Must be at most 99999999999999.9999."
TOKENS_BOUND = "Must be at most 199999999999."
INTEGER_BOUND = "Must be at most 2147483647."
NOT_A_NUMBER = "A valid number is required."
NOT_A_DATETIME = "Must be an ISO 8601 date and time with a time zone."
OUT_OF_UTC = "Must lie between the years 1 and 9999 in UTC."
NOT_CLEAN_TEXT = "Must not contain NUL characters or unpaired surrogates."
NOT_CLEAN_JSON = (
    "Must be a JSON object of JSON values, without NUL characters, unpaired surrogates or "
    "non-finite numbers."
)

# (the event's fields as raw JSON text, the field named, its message). Raw text, so that what
# json.dumps cannot write (1e309, 10^400 as a number) is sent as a client would send it.
CASES: list[tuple[str, str, str]] = [
    # Quantities: out of range however written, never an exception before the range check.
    ('"quantity": 1e24', "quantity", TOO_MUCH),
    ('"quantity": "1e24"', "quantity", TOO_MUCH),
    ('"quantity": "1e309"', "quantity", TOO_MUCH),
    ('"quantity": 1' + "0" * 400, "quantity", TOO_MUCH),
    ('"quantity": "1' + "0" * 400 + '"', "quantity", TOO_MUCH),
    ('"quantity": 1e309', "quantity", NOT_A_NUMBER),  # a float: inf
    ('"quantity": "1e999999999999999999"', "quantity", TOO_MUCH),
    ('"quantity": "1e9999999999999999999"', "quantity", NOT_A_NUMBER),  # past Decimal's exponents
    ('"quantity": "NaN"', "quantity", NOT_A_NUMBER),
    ('"quantity": "sNaN"', "quantity", NOT_A_NUMBER),
    ('"quantity": "Infinity"', "quantity", NOT_A_NUMBER),
    ('"quantity": "-Infinity"', "quantity", NOT_A_NUMBER),
    # Strings Decimal() would read as numbers: refused.
    ('"quantity": "1_000"', "quantity", NOT_A_NUMBER),
    ('"quantity": " 1 "', "quantity", NOT_A_NUMBER),
    ('"quantity": "1 000"', "quantity", NOT_A_NUMBER),
    ('"quantity": "\\u0663"', "quantity", NOT_A_NUMBER),  # ARABIC-INDIC DIGIT THREE
    # A label jsonb cannot hold (NULs and lone surrogates: TEXT_CASES below).
    ('"labels": {"a": 1e309}', "labels", NOT_CLEAN_JSON),
    # Impossible datetimes, and ones UTC cannot hold.
    ('"occurred_at": "2026-02-30T00:00:00Z"', "occurred_at", NOT_A_DATETIME),
    ('"occurred_at": "2026-01-15T24:00:00Z"', "occurred_at", NOT_A_DATETIME),
    ('"occurred_at": "2026-01-15T11:59:60Z"', "occurred_at", NOT_A_DATETIME),
    ('"occurred_at": "2026-01-15T11:00:00+25:00"', "occurred_at", NOT_A_DATETIME),
    ('"occurred_at": "0001-01-01T00:30:00+01:00"', "occurred_at", OUT_OF_UTC),
    ('"occurred_at": "9999-12-31T23:30:00-01:00"', "occurred_at", OUT_OF_UTC),
    # Counts past their columns and what the cost column can hold.
    ('"tool_calls": 2147483648', "tool_calls", INTEGER_BOUND),
    ('"orchestration_runs": 2147483648', "orchestration_runs", INTEGER_BOUND),
    ('"input_tokens": 9223372036854775807', "input_tokens", TOKENS_BOUND),
    ('"output_tokens": 9223372036854775808', "output_tokens", TOKENS_BOUND),
    ('"vector_reads": 200000000000', "vector_reads", TOKENS_BOUND),
    ('"input_tokens": 1' + "0" * 400, "input_tokens", TOKENS_BOUND),
    # Fields a usage event does not have: refused, not ignored (and charged as 0).
    ('"tokens": 5', "tokens", "Unknown field."),
    ('"Quantity": 5', "Quantity", "Unknown field."),
]


def _body(fields: str, key: str = "bad") -> str:
    """An event as JSON text: `chat` x1 with key `key`, its fields overridden by `fields`."""
    base = json.dumps({"action": "chat", "quantity": "1"})[1:-1]
    return f'{{"idempotency_key": "{key}", {base}, {fields}}}'


@pytest.fixture
def funded(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    ratecard_seed_example()
    fund(tenant, 1000)
    return tenant


@pytest.mark.parametrize(("fields", "field", "message"), CASES, ids=[c[0][:48] for c in CASES])
def test_a_bad_event_is_422_naming_the_field_and_writes_nothing(
    api_client: APIClient, funded: Tenant, fields: str, field: str, message: str
) -> None:
    response = api_client.post(URL, _body(fields), content_type="application/json")

    assert response.status_code == 422, response.content
    assert response.json() == invalid_input(field, message)
    assert not UsageEvent.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="debit").exists()
    assert available_get(tenant=funded) == Decimal("1000.0000")


@pytest.mark.parametrize(("fields", "field", "message"), CASES, ids=[c[0][:48] for c in CASES])
def test_a_bad_event_in_a_batch_spoils_only_its_own_slot(
    api_client: APIClient, funded: Tenant, fields: str, field: str, message: str
) -> None:
    good = [json.dumps(event_json(idempotency_key=key)) for key in ("before", "after")]
    body = f'{{"events": [{good[0]}, {_body(fields)}, {good[1]}]}}'

    response = api_client.post(BATCH_URL, body, content_type="application/json")

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["status"] for r in results] == [201, 422, 201]
    assert results[1]["body"] == invalid_input(field, message)
    assert sorted(UsageEvent.objects.values_list("idempotency_key", flat=True)) == [
        "after",
        "before",
    ]
    assert available_get(tenant=funded) == Decimal("998.0000")
    assert ledger_verify(tenant=funded) == []


def test_every_count_at_its_bound_at_once_is_recorded(
    api_client: APIClient, funded: Tenant
) -> None:
    counts = {
        "input_tokens": 199_999_999_999,
        "output_tokens": 199_999_999_999,
        "tool_calls": 2_147_483_647,
        "vector_reads": 199_999_999_999,
        "orchestration_runs": 2_147_483_647,
    }

    response = api_client.post(URL, event_json(**counts), format="json")

    assert response.status_code == 201, response.json()
    assert response.json()["components"] == {**counts, "gpu_seconds": "0.000"}
    # Minor units: 49,999,999.99975 of input, 299,999,999.9985 of output, 17,179,869,176 of
    # tool calls, 199,999,999.999 of vector reads, 21,474,836,470 of orchestration.
    assert UsageEvent.objects.get().cogs_minor == Decimal("39204705645.99725000")


def test_a_cost_the_column_cannot_hold_is_422_naming_the_largest_count(
    api_client: APIClient, funded: Tenant
) -> None:
    # A catalog whose tool call costs $10,000: 2^31 - 1 of them cost more than 10^12 minor
    # units. The message says nothing of the price.
    draft = cost_catalog_version_create_draft()
    cost_price_set(version=draft, component="tool_calls", price_minor="1000000")
    cost_catalog_version_publish(version=draft, effective_from=timezone.now())

    response = api_client.post(
        URL, event_json(tool_calls=2_147_483_647, input_tokens=5), format="json"
    )

    assert response.status_code == 422
    assert response.json() == invalid_input(
        "tool_calls", "Too large: the cost of this event cannot be recorded."
    )
    assert not UsageEvent.objects.exists()
    assert available_get(tenant=funded) == Decimal("1000.0000")


def test_a_charge_the_credits_column_cannot_hold_is_422_naming_quantity(
    api_client: APIClient, funded: Tenant
) -> None:
    # 15 credits x turbo 6 x 99,999,999,999,999: about 9 x 10^15 credits.
    response = api_client.post(
        URL,
        event_json(action="action_execution", model_class="turbo", quantity="99999999999999"),
        format="json",
    )

    assert response.status_code == 422
    assert response.json() == invalid_input(
        "quantity", "Too large: the charge would exceed 99999999999999.9999 credits."
    )
    assert not UsageEvent.objects.exists()
    assert available_get(tenant=funded) == Decimal("1000.0000")


# ---------------------------------------------------------------------------------------------
# NUL characters and lone surrogates. PostgreSQL stores neither (psycopg raised, a 500) and the
# renderer cannot write a lone surrogate. The service refuses them whoever calls it; over HTTP
# the API's JSON parser may refuse them first (tenants/api/parsers.py), naming the same field.

TEXT_CASES: list[tuple[dict[str, Any], str, str]] = [
    ({"idempotency_key": "a\x00b"}, "idempotency_key", NOT_CLEAN_TEXT),
    ({"idempotency_key": "a\ud800b"}, "idempotency_key", NOT_CLEAN_TEXT),
    ({"action": "ch\x00at"}, "action", NOT_CLEAN_TEXT),
    ({"action": "\udfff"}, "action", NOT_CLEAN_TEXT),
    ({"model_class": "turbo\x00"}, "model_class", NOT_CLEAN_TEXT),
    ({"labels": {"a\x00": "b"}}, "labels", NOT_CLEAN_JSON),
    ({"labels": {"a": "b\x00"}}, "labels", NOT_CLEAN_JSON),
    ({"labels": {"\ud800": 1}}, "labels", NOT_CLEAN_JSON),
    ({"labels": {"a": ["ok", "\udc00"]}}, "labels", NOT_CLEAN_JSON),
    ({"labels": {"a": {"b": {"c": "\x00"}}}}, "labels", NOT_CLEAN_JSON),
]
# Python's fromisoformat stops reading at a NUL: "…00Z\x00garbage" would be a valid time.
DATETIME_NUL_CASES = ["2026-01-15T11:00:00\x00Z", "2026-01-15T11:00:00Z\x00garbage"]
TEXT_IDS = [repr(c[0])[:48] for c in TEXT_CASES]


def _input(fields: dict[str, Any], key: str = "bad") -> UsageInput:
    """The case as the service receives it, parsed as the API parses it."""
    return usage_input_parse({"idempotency_key": key, "action": "chat", **fields})


@pytest.mark.parametrize(("fields", "field", "message"), TEXT_CASES, ids=TEXT_IDS)
def test_bad_text_is_refused_by_the_service_naming_the_field(
    funded: Tenant, fields: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidUsage) as refused:
        usage_event_record(tenant=funded, data=_input(fields))

    assert (refused.value.code, refused.value.message) == ("invalid_input", f"{field}: {message}")
    assert refused.value.details == {"fields": {field: [message]}}
    assert not UsageEvent.objects.exists()
    assert available_get(tenant=funded) == Decimal("1000.0000")


@pytest.mark.parametrize(("fields", "field", "message"), TEXT_CASES, ids=TEXT_IDS)
def test_bad_text_in_a_batch_spoils_only_its_own_slot(
    funded: Tenant, fields: dict[str, Any], field: str, message: str
) -> None:
    items = [_input({}, key="before"), _input(fields), _input({}, key="after")]

    results = usage_event_record_batch(tenant=funded, items=items)

    assert [r.status for r in results] == [201, 422, 201]
    error = results[1].error
    assert error is not None
    assert error.details == {"fields": {field: [message]}}
    assert UsageEvent.objects.count() == 2
    assert available_get(tenant=funded) == Decimal("998.0000")


@pytest.mark.parametrize(("fields", "field", "message"), TEXT_CASES, ids=TEXT_IDS)
def test_bad_text_over_http_is_422_naming_the_field(
    api_client: APIClient, funded: Tenant, fields: dict[str, Any], field: str, message: str
) -> None:
    # json.dumps escapes lone surrogates (the test client's renderer cannot encode them).
    body = json.dumps({**event_json(idempotency_key="bad"), **fields})

    response = api_client.post(URL, body, content_type="application/json")

    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert [name.split(".")[0] for name in error["fields"]] == [field]
    assert not UsageEvent.objects.exists()
    assert available_get(tenant=funded) == Decimal("1000.0000")


def test_an_unknown_field_is_echoed_with_its_lone_surrogates_escaped() -> None:
    with pytest.raises(InvalidUsage) as refused:
        usage_input_parse({"idempotency_key": "k", "action": "chat", "a\ud800": 5})

    assert refused.value.details == {"fields": {"a\\ud800": ["Unknown field."]}}


@pytest.mark.parametrize("occurred_at", DATETIME_NUL_CASES)
def test_a_datetime_with_a_nul_is_not_read_up_to_it(
    api_client: APIClient, funded: Tenant, occurred_at: str
) -> None:
    with pytest.raises(InvalidUsage) as refused:
        _input({"occurred_at": occurred_at})
    response = api_client.post(
        URL, json.dumps(event_json(occurred_at=occurred_at)), content_type="application/json"
    )

    assert refused.value.details == {"fields": {"occurred_at": [NOT_A_DATETIME]}}
    assert response.status_code == 422
    assert list(response.json()["error"]["fields"]) == ["occurred_at"]
    assert not UsageEvent.objects.exists()
