"""GET/PUT /api/v1/workflow-settings: the soft cap on new workflow runs, metering's own setting
(it left the ledger's account; the old names stay one release, tests/billing/test_alerts.py and
tests/ledger/test_api.py)."""

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.services import alert_settings_update
from ledger.services import ledger_debit
from metering.models import WorkflowSettings
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db


def test_a_tenant_without_a_setting_has_the_default(tenant: Tenant, api_client: APIClient) -> None:
    # Topped up to 250: the default soft cap is the lowest alert threshold (10%) of it
    fund(tenant, 250)
    ledger_debit(tenant=tenant, amount=Decimal(200), idempotency_key="d1")

    response = api_client.get("/api/v1/workflow-settings")

    assert response.status_code == 200
    assert response.json() == {"soft_cap": None, "soft_cap_effective": "25.0000"}


def test_the_default_follows_the_lowest_alert_threshold(
    tenant: Tenant, api_client: APIClient
) -> None:
    fund(tenant, 250)
    alert_settings_update(tenant=tenant, thresholds=[40, 4])

    body = api_client.get("/api/v1/workflow-settings").json()

    assert body == {"soft_cap": None, "soft_cap_effective": "10.0000"}


def test_put_sets_the_cap_and_null_goes_back_to_the_default(
    tenant: Tenant, api_client: APIClient
) -> None:
    fund(tenant, 250)

    response = api_client.put("/api/v1/workflow-settings", {"soft_cap": "75.5"}, format="json")

    assert response.status_code == 200
    assert response.json() == {"soft_cap": "75.5000", "soft_cap_effective": "75.5000"}
    assert WorkflowSettings.objects.get(tenant=tenant).soft_cap == Decimal("75.5")
    started = api_client.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
    assert started.status_code == 201

    response = api_client.put("/api/v1/workflow-settings", {"soft_cap": None}, format="json")

    assert response.json() == {"soft_cap": None, "soft_cap_effective": "25.0000"}
    assert WorkflowSettings.objects.get(tenant=tenant).soft_cap is None


def test_a_tenant_sees_and_changes_only_its_own(
    tenant: Tenant, other_tenant: Tenant, api_client: APIClient, other_client: APIClient
) -> None:
    fund(tenant, 250)
    fund(other_tenant, 1000)
    api_client.put("/api/v1/workflow-settings", {"soft_cap": "40"}, format="json")

    other = other_client.get("/api/v1/workflow-settings").json()
    changed = other_client.put("/api/v1/workflow-settings", {"soft_cap": "7"}, format="json")

    assert other == {"soft_cap": None, "soft_cap_effective": "100.0000"}
    assert changed.json() == {"soft_cap": "7.0000", "soft_cap_effective": "7.0000"}
    assert api_client.get("/api/v1/workflow-settings").json() == {
        "soft_cap": "40.0000",
        "soft_cap_effective": "40.0000",
    }
    assert dict(WorkflowSettings.objects.values_list("tenant__slug", "soft_cap")) == {
        tenant.slug: Decimal("40"),
        other_tenant.slug: Decimal("7"),
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"soft_cap": "-1"}, "Ensure this value is greater than or equal to 0."),
        ({"soft_cap": "lots"}, "A valid number is required."),
        ({"soft_cap": "1.00001"}, "Ensure that there are no more than 4 decimal places."),
        (
            {"soft_cap": "100000000000000"},
            "Ensure that there are no more than 14 digits before the decimal point.",
        ),
        ({}, "This field is required."),
    ],
)
def test_a_bad_soft_cap_is_422_naming_it(
    tenant: Tenant, api_client: APIClient, body: dict[str, str], message: str
) -> None:
    response = api_client.put("/api/v1/workflow-settings", body, format="json")

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"soft_cap: {message}",
            "fields": {"soft_cap": [message]},
        }
    }
    assert not WorkflowSettings.objects.exists()


def test_a_read_key_cannot_change_it(tenant: Tenant, make_client: object) -> None:
    reader = make_client(tenant, scopes=("read",))  # type: ignore[operator]

    assert reader.get("/api/v1/workflow-settings").status_code == 200
    refused = reader.put("/api/v1/workflow-settings", {"soft_cap": "5"}, format="json")

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "insufficient_scope"
    assert not WorkflowSettings.objects.exists()
