"""Workflow bodies: a step is a usage event (same parsing, same defaults, same refusals); a
start replayed with another body is a conflict; a suspended run resumes with its own step."""

import json
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from rest_framework.test import APIClient

from ledger.models import LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from metering.exceptions import InvalidUsage
from metering.models import UsageEvent, WorkflowRun
from metering.services import UsageInput
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund, invalid_input

pytestmark = pytest.mark.django_db

START = "/api/v1/workflows"
NOT_CLEAN_JSON = (
    "Must be a JSON object of JSON values, without NUL characters, unpaired surrogates or "
    "non-finite numbers."
)


@pytest.fixture
def funded(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    ratecard_seed_example()  # chat 1, web_research 10
    fund(tenant, 100)
    return tenant


@pytest.fixture
def run_id(api_client: APIClient, funded: Tenant) -> int:
    response = api_client.post(START, {"external_id": "job-1"}, format="json")
    assert response.status_code == 201
    return int(response.json()["id"])


def steps_url(run_id: int) -> str:
    return f"/api/v1/workflows/{run_id}/steps"


def _nothing_charged(tenant: Tenant, run_id: int) -> None:
    run = WorkflowRun.objects.get(pk=run_id)
    assert (run.steps_charged, run.credits_charged) == (0, Decimal("0"))
    assert not UsageEvent.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="debit").exists()
    assert available_get(tenant=tenant) == Decimal("100.0000")


# ---------------------------------------------------------------------------------------------
# Steps


def test_a_step_without_quantity_is_one_unit(
    api_client: APIClient, funded: Tenant, run_id: int
) -> None:
    response = api_client.post(
        steps_url(run_id), {"idempotency_key": "s1", "action": "web_research"}, format="json"
    )

    assert response.status_code == 201, response.json()
    step = response.json()["step"]
    assert (step["quantity"], step["credits"]) == ("1.0000", "10.0000")
    assert available_get(tenant=funded) == Decimal("90.0000")


STEP_CASES: list[tuple[str, str, str]] = [
    ('"tokens": 5', "tokens", "Unknown field."),
    ('"workflow_run": 7', "workflow_run", "Unknown field."),
    ('"quantity": 1e24', "quantity", "Must be at most 99999999999999.9999."),
    ('"quantity": "1_000"', "quantity", "A valid number is required."),
    ('"tool_calls": 2147483648', "tool_calls", "Must be at most 2147483647."),
    ('"input_tokens": 9223372036854775807', "input_tokens", "Must be at most 199999999999."),
    (
        '"occurred_at": "2026-02-30T00:00:00Z"',
        "occurred_at",
        "Must be an ISO 8601 date and time with a time zone.",
    ),
    ('"labels": {"a": 1e309}', "labels", NOT_CLEAN_JSON),
]


@pytest.mark.parametrize(("fields", "field", "message"), STEP_CASES, ids=[c[1] for c in STEP_CASES])
def test_a_bad_step_is_422_naming_the_field_and_charges_nothing(
    api_client: APIClient, funded: Tenant, run_id: int, fields: str, field: str, message: str
) -> None:
    body = f'{{"idempotency_key": "s1", "action": "chat", {fields}}}'

    response = api_client.post(steps_url(run_id), body, content_type="application/json")

    assert response.status_code == 422, response.content
    assert response.json() == invalid_input(field, message)
    _nothing_charged(funded, run_id)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"idempotency_key": "s\x00"}, "idempotency_key"),
        ({"idempotency_key": "s\ud800"}, "idempotency_key"),
        ({"action": "chat\x00"}, "action"),
        ({"labels": {"k": "v\x00"}}, "labels"),
    ],
)
def test_bad_text_in_a_step_is_refused_by_the_service(
    funded: Tenant, run_id: int, data: dict[str, Any], field: str
) -> None:
    run = WorkflowRun.objects.get(pk=run_id)
    step = UsageInput(**{"idempotency_key": "s1", "action": "chat", "quantity": Decimal(1), **data})

    with pytest.raises(InvalidUsage) as refused:
        workflow_step(tenant=funded, run=run, data=step)

    assert list(refused.value.details["fields"]) == [field]
    _nothing_charged(funded, run_id)


# ---------------------------------------------------------------------------------------------
# Start


@pytest.mark.parametrize(
    ("again", "differs"),
    [
        ({"name": "Another"}, "name"),
        ({"reserve_credits": "5"}, "reserve_credits"),
        ({"metadata": {"ticket": "T-2"}}, "metadata"),
        ({"name": "Another", "metadata": {}}, "name, metadata"),
    ],
)
def test_a_start_replayed_with_another_body_is_409(
    api_client: APIClient, funded: Tenant, again: dict[str, Any], differs: str
) -> None:
    body = {"external_id": "job-1", "name": "Refunds", "metadata": {"ticket": "T-1"}}
    first = api_client.post(START, body, format="json")

    same = api_client.post(START, body, format="json")
    other = api_client.post(START, {**body, **again}, format="json")

    assert (first.status_code, same.status_code) == (201, 200)
    assert same.json()["id"] == first.json()["id"]
    assert other.status_code == 409
    assert other.json() == {
        "error": {
            "code": "idempotency_conflict",
            "message": f"This external_id already started a run with another {differs}.",
            "external_id": "job-1",
        }
    }
    assert WorkflowRun.objects.count() == 1
    assert available_get(tenant=funded) == Decimal("100.0000")


def test_a_start_with_an_unknown_field_is_422(api_client: APIClient, funded: Tenant) -> None:
    response = api_client.post(START, {"external_id": "job-1", "reserve": "5"}, format="json")

    assert response.status_code == 422
    assert response.json() == invalid_input("reserve", "Unknown field.")
    assert not WorkflowRun.objects.exists()


def test_metadata_jsonb_cannot_hold_is_422_naming_metadata(
    api_client: APIClient, funded: Tenant
) -> None:
    body = '{"external_id": "job-1", "metadata": {"score": 1e309}}'

    response = api_client.post(START, body, content_type="application/json")
    with pytest.raises(InvalidUsage) as nul:
        workflow_start(tenant=funded, external_id="job-2", metadata={"note": "a\x00b"})

    assert response.status_code == 422
    assert response.json() == invalid_input("metadata", NOT_CLEAN_JSON)
    assert list(nul.value.details["fields"]) == ["metadata"]
    assert not WorkflowRun.objects.exists()


# ---------------------------------------------------------------------------------------------
# A suspended run resumes with the step it stopped at


def test_a_suspended_run_takes_the_step_it_stopped_at_first(
    api_client: APIClient, funded: Tenant, run_id: int
) -> None:
    def post(key: str) -> Any:
        body = {"idempotency_key": key, "action": "web_research", "quantity": "5"}
        return api_client.post(steps_url(run_id), json.dumps(body), content_type="application/json")

    assert post("s1").status_code == 201  # 50 of 100
    assert post("s2").status_code == 201  # 100 of 100
    suspended = post("s3")  # nothing left: the run stops at s3
    fund(funded, 100, reference="pack-2")

    other_first = post("s4")
    replay = post("s1")
    resumed = post("s3")
    then = post("s4")

    assert suspended.status_code == 402
    assert suspended.json()["error"]["resume_from_step"] == "s3"
    assert other_first.status_code == 409
    assert other_first.json() == {
        "error": {
            "code": "resume_step_required",
            "message": "The workflow run is suspended: it resumes with the step it stopped at.",
            "state": "suspended",
            "workflow_id": run_id,
            "resume_from_step": "s3",
        }
    }
    assert replay.status_code == 200  # a step charged before the suspension still answers
    assert (resumed.status_code, resumed.json()["workflow"]["state"]) == (201, "running")
    assert resumed.json()["step"]["step_index"] == 3
    assert (then.status_code, then.json()["step"]["step_index"]) == (201, 4)
    assert sorted(UsageEvent.objects.values_list("idempotency_key", flat=True)) == [
        "s1",
        "s2",
        "s3",
        "s4",
    ]
    assert available_get(tenant=funded) == Decimal("0.0000")
    assert ledger_verify(tenant=funded) == []
