"""Ending a run answers with what is left of its reservation after the release."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from ledger.models import CreditBucket
from ledger.selectors import balance_get
from ledger.services import ledger_grant
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("ending", ["complete", "cancel"])
def test_ending_a_run_reports_its_released_hold(
    tenant: Tenant, api_client: APIClient, ending: str
) -> None:
    ratecard_seed_example()
    ledger_grant(
        tenant=tenant,
        credits=200,
        policy=CreditBucket.Policy.PERMANENT,
        source=CreditBucket.Source.TOPUP,
        external_reference="pack-1",
        price_minor=2000,
    )
    run = api_client.post(
        "/api/v1/workflows", {"external_id": "r1", "reserve_credits": "100"}, format="json"
    ).json()
    step = api_client.post(
        f"/api/v1/workflows/{run['id']}/steps",
        {"idempotency_key": "r1-s1", "action": "doc_search", "quantity": 3},
        format="json",
    )
    assert step.status_code == 201

    ended = api_client.post(f"/api/v1/workflows/{run['id']}/{ending}")

    assert ended.status_code == 200
    body = ended.json()
    assert (body["state"], body["credits_charged"], body["hold_remaining"]) == (
        "completed" if ending == "complete" else "cancelled",
        "9.0000",
        "0.0000",
    )
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("191"), Decimal("0"))
