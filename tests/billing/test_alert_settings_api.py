"""GET/PUT /api/v1/alert-settings: billing's low-balance thresholds. The settings that left the
ledger's account keep their old names one release, marked deprecated in the schema: `soft_cap`
here (metering's now, /api/v1/workflow-settings), `soft_cap` and `alert_thresholds` on GET
/api/v1/balance."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from billing.models import AlertSettings
from ledger.services import ledger_grant
from metering.models import WorkflowSettings
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def topped_up(tenant: Tenant, credits: int) -> None:
    ledger_grant(
        tenant=tenant,
        credits=credits,
        policy="permanent",
        source="topup",
        external_reference=f"pack-{credits}",
    )


def test_a_tenant_that_set_nothing_has_the_defaults(tenant: Tenant, api_client: APIClient) -> None:
    response = api_client.get("/api/v1/alert-settings")

    assert response.status_code == 200
    assert response.json() == {
        "alert_thresholds": [20, 10],
        "soft_cap": None,
        "soft_cap_effective": "0.0000",
    }


def test_put_sets_the_thresholds_highest_first(tenant: Tenant, api_client: APIClient) -> None:
    topped_up(tenant, 500)

    response = api_client.put(
        "/api/v1/alert-settings", {"alert_thresholds": [15, 40, 15]}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {
        "alert_thresholds": [40, 15],
        "soft_cap": None,
        "soft_cap_effective": "75.0000",
    }
    # No thresholds at all: only running out is announced; the soft cap falls back to 10%.
    response = api_client.put("/api/v1/alert-settings", {"alert_thresholds": []}, format="json")
    assert response.json() == {
        "alert_thresholds": [],
        "soft_cap": None,
        "soft_cap_effective": "50.0000",
    }


def test_a_tenant_sees_and_changes_only_its_own(
    tenant: Tenant, other_tenant: Tenant, api_client: APIClient, other_client: APIClient
) -> None:
    api_client.put(
        "/api/v1/alert-settings", {"alert_thresholds": [30], "soft_cap": "12"}, format="json"
    )

    other = other_client.get("/api/v1/alert-settings").json()
    other_client.put(
        "/api/v1/alert-settings", {"alert_thresholds": [60], "soft_cap": None}, format="json"
    )

    assert other == {"alert_thresholds": [20, 10], "soft_cap": None, "soft_cap_effective": "0.0000"}
    assert api_client.get("/api/v1/alert-settings").json() == {
        "alert_thresholds": [30],
        "soft_cap": "12.0000",
        "soft_cap_effective": "12.0000",
    }
    assert dict(AlertSettings.objects.values_list("tenant__slug", "thresholds")) == {
        tenant.slug: [30],
        other_tenant.slug: [60],
    }
    assert dict(WorkflowSettings.objects.values_list("tenant__slug", "soft_cap")) == {
        tenant.slug: Decimal("12"),
        other_tenant.slug: None,
    }


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        (
            {"alert_thresholds": [20, 0]},
            "alert_thresholds[1]",
            "Ensure this value is greater than or equal to 1.",
        ),
        (
            {"alert_thresholds": [100]},
            "alert_thresholds[0]",
            "Ensure this value is less than or equal to 99.",
        ),
        (
            {"alert_thresholds": "20"},
            "alert_thresholds",
            'Expected a list of items but got type "str".',
        ),
        (
            {"alert_thresholds": list(range(1, 12))},
            "alert_thresholds",
            "Ensure this field has no more than 10 elements.",
        ),
        ({"soft_cap": "-5"}, "soft_cap", "Ensure this value is greater than or equal to 0."),
    ],
)
def test_bad_input_is_422_naming_the_field_and_changes_nothing(
    tenant: Tenant, api_client: APIClient, body: dict[str, Any], field: str, message: str
) -> None:
    response = api_client.put(
        "/api/v1/alert-settings", {"alert_thresholds": [50], **body}, format="json"
    )

    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"{field}: {message}",
            "fields": {field: [message]},
        }
    }
    assert not AlertSettings.objects.exists()
    assert not WorkflowSettings.objects.exists()


def test_the_balance_still_serves_the_moved_settings_under_their_old_names(
    tenant: Tenant, api_client: APIClient
) -> None:
    topped_up(tenant, 300)
    api_client.put("/api/v1/alert-settings", {"alert_thresholds": [30, 5]}, format="json")

    body = api_client.get("/api/v1/balance").json()

    assert (body["topped_up_to"], body["alert_thresholds"], body["soft_cap"]) == (
        "300.0000",
        [30, 5],
        "15.0000",
    )
    api_client.put("/api/v1/workflow-settings", {"soft_cap": "99"}, format="json")
    assert api_client.get("/api/v1/balance").json()["soft_cap"] == "99.0000"


def _component(schema: dict[str, Any], path: str, method: str, part: str) -> dict[str, Any]:
    operation = schema["paths"][path][method]
    if part == "response":
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    else:
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    component: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return component


def test_the_schema_marks_the_old_names_deprecated() -> None:
    schema = Client().get("/api/schema/", {"format": "json"}).json()

    def deprecated(path: str, method: str, part: str) -> list[str]:
        properties = _component(schema, path, method, part)["properties"]
        return sorted(name for name, field in properties.items() if field.get("deprecated"))

    assert deprecated("/api/v1/balance", "get", "response") == [
        "alert_thresholds",
        "buckets",
        "soft_cap",
    ]
    assert deprecated("/api/v1/alert-settings", "get", "response") == [
        "soft_cap",
        "soft_cap_effective",
    ]
    assert deprecated("/api/v1/alert-settings", "put", "request") == ["soft_cap"]
    assert deprecated("/api/v1/workflow-settings", "get", "response") == []
    assert deprecated("/api/v1/workflow-settings", "put", "request") == []


def test_the_vendor_sees_both_settings_in_the_admin(tenant: Tenant, api_client: APIClient) -> None:
    api_client.put(
        "/api/v1/alert-settings", {"alert_thresholds": [35, 15], "soft_cap": "77"}, format="json"
    )
    staff = Client()
    staff.force_login(User.objects.create_superuser("vendor", "vendor@example.com", "pw-123456"))

    alerts = staff.get("/admin/billing/alertsettings/")
    caps = staff.get("/admin/metering/workflowsettings/")

    assert (alerts.status_code, caps.status_code) == (200, 200)
    assert "[35, 15]" in alerts.content.decode()
    assert "77.0000" in caps.content.decode()
    detail = f"/admin/billing/alertsettings/{AlertSettings.objects.get().pk}/change/"
    assert staff.get(detail).status_code == 200  # shown, read-only
