"""The workflow API, as the integration sees it: the seed's 15-step story, the soft cap,
illegal transitions, the list and another tenant's ids."""

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from rest_framework.test import APIClient

from billing.models import CreditPack, TopUp, WebhookDelivery
from billing.services import fake_checkout_confirm, topup_create, webhook_endpoint_create
from ledger.models import LedgerTransaction
from ledger.selectors import balance_get, entry_list, ledger_verify
from ledger.services import ledger_debit
from metering.models import UsageEvent, WorkflowRun
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.events import DomainEvent, domain_event
from tenants.models import Tenant

CAPTURED: list[DomainEvent] = []


def capture_event(event: DomainEvent, **_: Any) -> None:
    CAPTURED.append(event)


def workflow_events() -> list[DomainEvent]:
    # Billing's own events (topup.succeeded, balance.low, ...) are heard too; the story is
    # about the run's.
    return [e for e in CAPTURED if e.type.startswith("workflow.")]


@pytest.fixture(autouse=True)
def _setup(settings: Any) -> Iterator[None]:
    price_cache_clear()
    # The default receivers (billing's included) stay; the test only listens in as well.
    domain_event.connect(capture_event, dispatch_uid="test_workflow_api")
    settings.BILLING_GATEWAY = "fake"
    # The story's webhook endpoint is a local address.
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True
    CAPTURED.clear()
    yield
    domain_event.disconnect(dispatch_uid="test_workflow_api")
    CAPTURED.clear()
    price_cache_clear()


@pytest.fixture
def card(db: None) -> None:
    ratecard_seed_example()  # web_research: 10 credits; the example cost catalog


def topup(tenant: Tenant, credits: int, ref: str, price_minor: int) -> None:
    """Buy a pack the way the portal does: a pending top-up, then the fake gateway's payment
    (the confirm page's own service), which grants the credits through billing."""
    pack, _ = CreditPack.objects.get_or_create(
        slug=ref,
        defaults={"name": f"{credits} credits", "credits": credits, "price_minor": price_minor},
    )
    top_up = topup_create(tenant=tenant, pack=pack, gateway="fake")
    completed = fake_checkout_confirm(top_up=top_up)
    assert completed.status == TopUp.Status.SUCCEEDED


STEP_BODY = {
    "action": "web_research",
    "quantity": "1",
    "input_tokens": 1000,  # 0.25 minor units at 250 per 1M
    "output_tokens": 200,  # 0.30 at 1500 per 1M
    "tool_calls": 1,  # 8
}


def post_step(client: APIClient, run_id: int, n: int) -> Any:
    body = {**STEP_BODY, "idempotency_key": f"refund-42:step-{n}"}
    return client.post(f"/api/v1/workflows/{run_id}/steps", body, format="json")


@pytest.mark.django_db(transaction=True)
def test_the_seed_story_suspend_at_step_8_top_up_replay_and_finish(
    tenant: Tenant, card: None, api_client: APIClient
) -> None:
    # The integration listens for the run's events on its webhook endpoint.
    endpoint = webhook_endpoint_create(
        tenant=tenant,
        url="http://127.0.0.1:9/hooks",
        event_types=["workflow.suspended", "workflow.resumable"],
    )
    # Given 70 credits bought for $7.00: enough for 7 steps of 10 credits.
    topup(tenant, 70, "pack-1", price_minor=700)
    started = api_client.post(
        "/api/v1/workflows", {"external_id": "refund-42", "name": "Refund agent"}, format="json"
    )
    assert started.status_code == 201, started.json()
    run_id = started.json()["id"]

    for n in range(1, 8):
        response = post_step(api_client, run_id, n)
        assert response.status_code == 201, response.json()

    # Step 8 cannot be paid: the run suspends there, nothing charged for it.
    refused = post_step(api_client, run_id, 8)
    assert refused.status_code == 402
    assert refused.json() == {
        "error": {
            "code": "insufficient_credits",
            "message": (
                "The balance cannot pay this step: the run is suspended until credits arrive."
            ),
            "state": "suspended",
            "workflow_id": run_id,
            "resume_from_step": "refund-42:step-8",
            "required": "10.0000",
            "available": "0.0000",
        }
    }
    assert not UsageEvent.objects.filter(idempotency_key="refund-42:step-8").exists()
    assert [e.type for e in workflow_events()] == ["workflow.suspended"]

    # A top-up of 100 credits for $15.00 makes the run resumable.
    topup(tenant, 100, "pack-2", price_minor=1500)
    assert [e.type for e in workflow_events()] == ["workflow.suspended", "workflow.resumable"]
    resumable = workflow_events()[1]
    assert (resumable.tenant_id, resumable.data["workflow_id"]) == (tenant.pk, run_id)
    assert resumable.data["resume_from_step"] == "refund-42:step-8"

    # The integration replays 1-8 with their original keys, then goes on to 15.
    for n in range(1, 8):
        replay = post_step(api_client, run_id, n)
        assert replay.status_code == 200
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json()["step"]["step_index"] == n
    resumed = post_step(api_client, run_id, 8)
    assert resumed.status_code == 201
    assert resumed.json()["workflow"]["state"] == "running"
    for n in range(9, 16):
        assert post_step(api_client, run_id, n).status_code == 201
    assert api_client.post(f"/api/v1/workflows/{run_id}/complete").status_code == 200

    # Exactly 15 steps, each charged once.
    debits = LedgerTransaction.objects.filter(tenant=tenant, kind="debit")
    assert sorted(debits.values_list("idempotency_key", flat=True)) == sorted(
        f"usage:refund-42:step-{n}" for n in range(1, 16)
    )
    assert set(debits.values_list("amount", flat=True)) == {Decimal("-10")}
    detail = api_client.get(f"/api/v1/workflows/{run_id}").json()
    assert [(s["step_index"], s["idempotency_key"], s["credits"]) for s in detail["steps"]] == [
        (n, f"refund-42:step-{n}", "10.0000") for n in range(1, 16)
    ]
    assert {k: detail[k] for k in _TOTALS} == {
        "state": "completed",
        "credits_charged": "150.0000",
        "steps_charged": 15,
        "reserved_credits": "0.0000",
        "hold_remaining": "0.0000",
        "resume_from_step": "",
        "suspension_reason": "",
    }
    # The vendor's side (never in a tenant's response): 15 x (0.25 + 0.30 + 8) minor units of
    # cost; 70 credits bought at 10 minor units and 80 at 15.
    run = WorkflowRun.objects.get(pk=run_id)
    assert (run.cogs_minor, run.revenue_minor) == (Decimal("128.25"), Decimal("1900"))

    # The balance and the statement, exactly.
    assert balance_get(tenant=tenant).available == Decimal("20")
    statement = [
        (e.kind, e.amount, e.balance_after)
        for e in entry_list(tenant=tenant).order_by("created_at", "id")
    ]
    assert statement == [
        ("grant", Decimal("70"), Decimal("70")),
        *[("debit", Decimal("-10"), Decimal(60 - 10 * i)) for i in range(7)],
        ("grant", Decimal("100"), Decimal("100")),
        *[("debit", Decimal("-10"), Decimal(90 - 10 * i)) for i in range(8)],
    ]
    assert [e.type for e in workflow_events()] == ["workflow.suspended", "workflow.resumable"]
    # Both events went out to the endpoint (one delivery each, through billing's listener).
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint).order_by("id")
    assert [(d.event_type, d.payload["data"]) for d in deliveries] == [
        (e.type, e.data) for e in workflow_events()
    ]
    assert deliveries[1].payload["data"]["resume_from_step"] == "refund-42:step-8"
    assert ledger_verify() == []


_TOTALS = (
    "state",
    "credits_charged",
    "steps_charged",
    "reserved_credits",
    "hold_remaining",
    "resume_from_step",
    "suspension_reason",
)


@pytest.mark.django_db
def test_start_under_the_soft_cap_is_refused_until_a_top_up(
    tenant: Tenant, api_client: APIClient
) -> None:
    topup(tenant, 100, "pack-1", price_minor=1000)
    ledger_debit(tenant=tenant, amount=Decimal("95"), idempotency_key="spent")

    refused = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")

    assert refused.status_code == 402
    assert refused.json() == {
        "error": {
            "code": "soft_cap_reached",
            "message": (
                "The available balance is under the soft cap: no new workflow run can start."
            ),
            "available": "5.0000",
            "soft_cap": "10.0000",
        }
    }
    topup(tenant, 100, "pack-2", price_minor=1000)
    started = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
    assert started.status_code == 201
    replay = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
    assert replay.status_code == 200
    assert replay.json()["id"] == started.json()["id"]


@pytest.mark.django_db
def test_start_with_a_reservation_shows_it(tenant: Tenant, api_client: APIClient) -> None:
    topup(tenant, 300, "pack-1", price_minor=100)

    body = api_client.post(
        "/api/v1/workflows",
        {"external_id": "job-1", "reserve_credits": "100", "metadata": {"ticket": "T-1"}},
        format="json",
    ).json()

    assert (body["reserved_credits"], body["hold_remaining"], body["metadata"]) == (
        "100.0000",
        "100.0000",
        {"ticket": "T-1"},
    )
    assert balance_get(tenant=tenant).reserved == Decimal("100")
    refused = api_client.post(
        "/api/v1/workflows", {"external_id": "job-2", "reserve_credits": "250"}, format="json"
    )
    assert refused.status_code == 402
    assert refused.json()["error"]["code"] == "insufficient_credits"


@pytest.mark.django_db
def test_illegal_transitions_answer_409_with_the_state(
    tenant: Tenant, card: None, api_client: APIClient
) -> None:
    topup(tenant, 100, "pack-1", price_minor=100)
    cancelled = api_client.post("/api/v1/workflows", {"external_id": "a"}, format="json").json()
    completed = api_client.post("/api/v1/workflows", {"external_id": "b"}, format="json").json()
    assert api_client.post(f"/api/v1/workflows/{cancelled['id']}/cancel").status_code == 200
    assert api_client.post(f"/api/v1/workflows/{completed['id']}/complete").status_code == 200

    complete = api_client.post(f"/api/v1/workflows/{cancelled['id']}/complete")
    step = post_step(api_client, completed["id"], 1)

    assert complete.status_code == 409
    assert complete.json() == {
        "error": {
            "code": "illegal_transition",
            "message": "A cancelled workflow run cannot become completed.",
            "state": "cancelled",
            "workflow_id": cancelled["id"],
        }
    }
    assert step.status_code == 409
    assert step.json() == {
        "error": {
            "code": "illegal_transition",
            "message": "The workflow run is completed: it takes no new steps.",
            "state": "completed",
            "workflow_id": completed["id"],
        }
    }


@pytest.mark.django_db
def test_list_filters_by_state_and_external_id(tenant: Tenant, api_client: APIClient) -> None:
    topup(tenant, 100, "pack-1", price_minor=1000)
    ids = [
        api_client.post("/api/v1/workflows", {"external_id": f"job-{n}"}, format="json").json()[
            "id"
        ]
        for n in range(3)
    ]
    api_client.post(f"/api/v1/workflows/{ids[1]}/cancel")

    everything = api_client.get("/api/v1/workflows").json()
    running = api_client.get("/api/v1/workflows?state=running").json()
    by_external = api_client.get("/api/v1/workflows?external_id=job-2").json()
    bad = api_client.get("/api/v1/workflows?state=sleeping")

    assert [r["id"] for r in everything["results"]] == ids[::-1]
    assert [r["id"] for r in running["results"]] == [ids[2], ids[0]]
    assert [r["id"] for r in by_external["results"]] == [ids[2]]
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "invalid_input"
    assert list(bad.json()["error"]["fields"]) == ["state"]


@pytest.mark.django_db
def test_another_tenants_run_is_not_found_on_every_route(
    tenant: Tenant, other_tenant: Tenant, api_client: APIClient, make_client: Callable[..., Any]
) -> None:
    topup(tenant, 100, "pack-1", price_minor=1000)
    run_id = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json").json()[
        "id"
    ]
    other = make_client(other_tenant)

    responses = [
        other.get(f"/api/v1/workflows/{run_id}"),
        other.post(f"/api/v1/workflows/{run_id}/steps", STEP_BODY, format="json"),
        other.post(f"/api/v1/workflows/{run_id}/complete"),
        other.post(f"/api/v1/workflows/{run_id}/cancel"),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404, 404]
    assert responses[0].json()["error"]["code"] == "not_found"
    assert other.get("/api/v1/workflows").json()["results"] == []
    assert WorkflowRun.objects.get(pk=run_id).state == "running"
