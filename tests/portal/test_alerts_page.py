"""The alerts and soft cap page: the thresholds and the soft cap as one form, through the
services the API uses, and a sentence with the soft cap in force now."""

from collections.abc import Callable
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from billing.models import AlertSettings
from metering.models import WorkflowSettings
from tenants.models import Tenant
from tests.billing.conftest import grant
from tests.portal.conftest import Login

pytestmark = pytest.mark.django_db


def test_the_default_soft_cap_is_explained_with_its_value_now(login: Login, tenant: Tenant) -> None:
    grant(tenant, 120, "welcome")
    client = login(tenant, role="member")

    page = client.get("/alerts/").content.decode()

    assert "Soft cap: 12 credits." in page
    assert "New workflow runs are refused while your available balance is below the soft cap" in (
        page
    )
    assert (
        "This is the default: your lowest alert threshold (10%) of the 120 credits your balance"
        " was last topped up to."
    ) in page
    assert "falls below 20% and 10% of what it was last topped up to, and when it runs out" in page
    assert "<form" not in page.split('<div class="page">')[1]  # a member changes nothing


def test_an_owner_sets_thresholds_and_keeps_the_default_soft_cap(
    login: Login, tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    grant(tenant, 120, "welcome")
    client = login(tenant)

    saved = client.post("/alerts/", {"thresholds": "15, 30,30", "soft_cap": ""}, follow=True)

    assert saved.redirect_chain == [("/alerts/", 302)]
    assert "Alert thresholds and soft cap saved." in saved.content.decode()
    assert AlertSettings.objects.get(tenant=tenant).thresholds == [30, 15]
    assert WorkflowSettings.objects.get(tenant=tenant).soft_cap is None
    assert "Soft cap: 18 credits." in saved.content.decode()
    api = make_client(tenant)
    assert api.get("/api/v1/workflow-settings").json() == {
        "soft_cap": None,
        "soft_cap_effective": "18.0000",
    }
    assert api.get("/api/v1/alert-settings").json()["alert_thresholds"] == [30, 15]


def test_an_own_soft_cap_refuses_runs_below_it(
    login: Login, tenant: Tenant, make_client: Callable[..., APIClient]
) -> None:
    grant(tenant, 40, "welcome")
    client = login(tenant, role="admin")

    saved = client.post("/alerts/", {"thresholds": "20, 10", "soft_cap": "50"}, follow=True)

    page = saved.content.decode()
    assert WorkflowSettings.objects.get(tenant=tenant).soft_cap == Decimal("50.0000")
    assert "Soft cap: 50 credits." in page
    assert "This is your own setting." in page
    assert "under the soft cap: new runs are refused until you top up." in page
    api = make_client(tenant, scopes=("read", "write"))
    refused = api.post("/api/v1/workflows", {"external_id": "job-1"}, format="json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (402, "soft_cap_reached")


@pytest.mark.parametrize(
    ("thresholds", "soft_cap", "error"),
    [
        ("twenty", "", "Write whole percentages, e.g. 20, 10."),
        ("20, 0", "", "Each threshold is a whole percentage from 1 to 99."),
        ("20", "-1", "Ensure this value is greater than or equal to 0."),
    ],
)
def test_bad_input_is_refused_naming_the_field(
    login: Login, tenant: Tenant, thresholds: str, soft_cap: str, error: str
) -> None:
    client = login(tenant)

    refused = client.post("/alerts/", {"thresholds": thresholds, "soft_cap": soft_cap})

    assert refused.status_code == 422
    assert error in refused.content.decode()
    assert 'aria-invalid="true"' in refused.content.decode()
    assert not AlertSettings.objects.exists()
    assert not WorkflowSettings.objects.exists()


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 302), ("admin", 302), ("billing", 403), ("member", 403)]
)
def test_who_may_change_them(login: Login, tenant: Tenant, role: str, status: int) -> None:
    client = login(tenant, role=role)

    answer = client.post("/alerts/", {"thresholds": "25", "soft_cap": "5"})

    assert answer.status_code == status
    assert AlertSettings.objects.filter(tenant=tenant).exists() is (status == 302)


def test_with_no_thresholds_the_default_soft_cap_is_a_tenth(login: Login, tenant: Tenant) -> None:
    grant(tenant, 120, "welcome")
    client = login(tenant)

    saved = client.post("/alerts/", {"thresholds": "", "soft_cap": ""}, follow=True)

    page = saved.content.decode()
    assert AlertSettings.objects.get(tenant=tenant).thresholds == []
    assert "Soft cap: 12 credits." in page
    assert "This is the default: 10% of the 120 credits" in page
    assert "go out when it runs out: once per crossing." in page
