"""`/api/v1/subscription` with the fake gateway: subscribe, change seats, cancel; bad input is
a 422 naming the field."""

from datetime import UTC, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.models import Plan, PlanPrice
from tenants.models import Tenant
from tests.billing.test_subscriptions import priced  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("priced")]
URL = "/api/v1/subscription"
NOW = datetime(2026, 4, 1, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"plan": "platinum"}, "plan", "No active plan has that slug."),
        ({"plan": "team", "seats": 0}, "seats", "Ensure this value is greater than or equal to 1."),
        ({"plan": "pro", "seats": 2}, "seats", "The plan pro is not sold per seat."),
        ({"plan": "pro", "currency": "EUR"}, "currency", "The plan pro has no price in EUR."),
    ],
)
def test_bad_input_is_a_422_naming_the_field(
    api_client: APIClient,
    body: dict,
    field: str,
    message: str,
) -> None:
    response = api_client.post(URL, body, format="json")
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"{field}: {message}",
            "fields": {field: [message]},
        }
    }
    assert api_client.get(URL).status_code == 404


def test_subscribe_add_seats_and_cancel(
    api_client: APIClient,
    tenant: Tenant,
) -> None:
    assert api_client.get(URL).json() == {
        "error": {"code": "subscription_not_found", "message": "The tenant has no subscription."}
    }
    with time_machine.travel(NOW, tick=False) as clock:
        created = api_client.post(URL, {"plan": "team", "seats": 3}, format="json")
        assert created.status_code == 201, created.json()
        body = created.json()
        assert {k: body[k] for k in ("plan", "seats", "status", "included_credits")} == {
            "plan": "team",
            "seats": 3,
            "status": "active",
            "included_credits": "250.0000",
        }
        assert [
            (i["kind"], i["status"], i["credits"], i["amount_minor"]) for i in body["invoices"]
        ] == [("period", "paid", "250.0000", 5_000)]
        again = api_client.post(URL, {"plan": "team"}, format="json")
        assert (again.status_code, again.json()["error"]["code"]) == (409, "subscription_exists")

        clock.move_to(datetime(2026, 4, 16, 0, tzinfo=UTC))
        changed = api_client.patch(URL, {"seats": 5}, format="json")
        assert changed.status_code == 200, changed.json()
        assert (changed.json()["seats"], changed.json()["included_credits"]) == (5, "350.0000")
        assert changed.json()["invoices"][0]["credits"] == "50.0000"

        cancelled = api_client.delete(URL)
        assert cancelled.status_code == 200
        assert (cancelled.json()["status"], cancelled.json()["cancel_at_period_end"]) == (
            "active",
            True,
        )
        refused = api_client.patch(URL, {"seats": 6}, format="json")
        assert refused.status_code == 409
        assert refused.json()["error"]["code"] == "subscription_not_active"


def test_the_routes_need_the_billing_scope(
    tenant: Tenant,
    make_client,
) -> None:
    response = make_client(tenant).post(URL, {"plan": "pro"}, format="json")
    assert response.status_code == 403


def test_a_tenant_subscribes_in_the_currency_it_names(api_client: APIClient) -> None:
    PlanPrice.objects.create(plan=Plan.objects.get(slug="pro"), currency="EUR", base_minor=7_500)
    with time_machine.travel(NOW, tick=False):
        created = api_client.post(URL, {"plan": "pro", "currency": "eur"}, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert (body["currency"], body["included_credits"]) == ("EUR", "750.0000")
    assert [(i["amount_minor"], i["currency"]) for i in body["invoices"]] == [(7_500, "EUR")]
