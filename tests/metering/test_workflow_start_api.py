"""POST /api/v1/workflows against the soft cap: a tenant with no credits starts nothing."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from ledger.services import credit_account_update, ledger_debit
from metering.models import WorkflowRun
from metering.soft_cap import workflow_settings_update
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

SOFT_CAP_MESSAGE = "The available balance is under the soft cap: no new workflow run can start."


def test_an_empty_tenant_gets_402_soft_cap_reached_until_credits_arrive(
    tenant: Tenant, api_client: APIClient
) -> None:
    refused = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")

    assert refused.status_code == 402
    assert refused.json() == {
        "error": {
            "code": "soft_cap_reached",
            "message": SOFT_CAP_MESSAGE,
            "available": "0.0000",
            "soft_cap": "0.0000",
        }
    }
    assert not WorkflowRun.objects.filter(tenant=tenant).exists()

    fund(tenant, 5)
    started = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
    assert started.status_code == 201, started.json()
    assert started.json()["state"] == "running"


def test_a_spent_out_tenant_with_a_zero_cap_gets_402(tenant: Tenant, api_client: APIClient) -> None:
    fund(tenant, 10)
    ledger_debit(tenant=tenant, amount=Decimal("10"), idempotency_key="spend-1")
    workflow_settings_update(tenant=tenant, soft_cap=Decimal("0"))

    refused = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")

    assert refused.status_code == 402
    assert refused.json() == {
        "error": {
            "code": "soft_cap_reached",
            "message": SOFT_CAP_MESSAGE,
            "available": "0.0000",
            "soft_cap": "0.0000",
        }
    }


def test_a_tenant_with_an_overdraft_and_a_zero_cap_starts_without_credits(
    tenant: Tenant, api_client: APIClient
) -> None:
    # Its debits may run 100 credits into the overdraft, so a run's steps can still be paid.
    credit_account_update(tenant=tenant, overdraft_limit=Decimal("100"))
    workflow_settings_update(tenant=tenant, soft_cap=Decimal("0"))

    started = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")

    assert started.status_code == 201, started.json()
    assert started.json()["state"] == "running"


def test_a_tenant_whose_overdraft_is_used_up_gets_402(
    tenant: Tenant, api_client: APIClient
) -> None:
    credit_account_update(tenant=tenant, overdraft_limit=Decimal("100"))
    workflow_settings_update(tenant=tenant, soft_cap=Decimal("0"))
    ledger_debit(tenant=tenant, amount=Decimal("100"), idempotency_key="spend-1")

    refused = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")

    assert refused.status_code == 402
    assert refused.json() == {
        "error": {
            "code": "soft_cap_reached",
            "message": SOFT_CAP_MESSAGE,
            "available": "-100.0000",
            "soft_cap": "0.0000",
        }
    }
