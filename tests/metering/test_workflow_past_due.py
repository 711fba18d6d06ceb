"""POST /api/v1/workflows while billing refuses new runs (a subscription unpaid past its grace
days): 402 subscription_past_due from `Tenant.runs_refused_from`, which billing sets and clears
through tenants.services (metering never asks billing)."""

from datetime import UTC, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from metering.models import WorkflowRun
from tenants.models import Tenant
from tenants.services import tenant_runs_refused_set
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

GRACE_ENDS = datetime(2026, 3, 3, 11, tzinfo=UTC)


def past_due_body(refused_from: str) -> dict:
    return {
        "error": {
            "code": "subscription_past_due",
            "message": "The subscription's invoice is unpaid past its grace days: no new "
            "workflow run can start until it is paid.",
            "refused_from": refused_from,
        }
    }


def test_runs_start_until_the_moment_billing_named_then_not_until_cleared(
    tenant: Tenant, api_client: APIClient
) -> None:
    fund(tenant, 100)
    tenant_runs_refused_set(tenant_id=tenant.pk, at=GRACE_ENDS)
    with time_machine.travel(datetime(2026, 3, 3, 10, 59, tzinfo=UTC), tick=False) as clock:
        started = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
        assert started.status_code == 201, started.json()

        clock.move_to(GRACE_ENDS)
        refused = api_client.post("/api/v1/workflows", {"external_id": "job-2"}, format="json")
        assert refused.status_code == 402
        assert refused.json() == past_due_body("2026-03-03T11:00:00+00:00")
        # A replayed start still answers with its run; steps of running runs go on.
        replay = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
        assert replay.status_code == 200

        assert tenant_runs_refused_set(tenant_id=tenant.pk, at=None) is True
        assert tenant_runs_refused_set(tenant_id=tenant.pk, at=None) is False
        again = api_client.post("/api/v1/workflows", {"external_id": "job-2"}, format="json")
        assert again.status_code == 201, again.json()
    assert WorkflowRun.objects.filter(tenant=tenant).count() == 2
