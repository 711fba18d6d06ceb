"""One currency per tenant, stored: its first subscription, purchase or contract fixes it, it
stays when a subscription ends, and a subscription, purchase or contract in another currency is
refused with a 422 naming `currency`."""

from datetime import UTC, datetime

import pytest
import time_machine
from rest_framework.test import APIClient

from billing.exceptions import InvalidContract
from billing.models import CreditPack, CreditPackPrice, Plan, PlanPrice, Subscription
from billing.selectors import billing_currency_get
from billing.services.contracts import contract_activate
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.billing.test_contract_invoices import make_contract
from tests.billing.test_subscriptions import priced  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("priced")]
URL = "/api/v1/subscription"
NOW = datetime(2026, 4, 1, 0, tzinfo=UTC)
BILLED_IN_EUR = "This tenant is billed in EUR."


def _refused(response, message: str) -> None:
    assert response.status_code == 422
    assert response.json() == {
        "error": {
            "code": "invalid_input",
            "message": f"currency: {message}",
            "fields": {"currency": [message]},
        }
    }


def test_a_subscription_fixes_the_currency_and_it_stays_when_the_subscription_ends(
    api_client: APIClient, tenant: Tenant, pack: CreditPack
) -> None:
    PlanPrice.objects.create(plan=Plan.objects.get(slug="pro"), currency="EUR", base_minor=7_500)
    CreditPackPrice.objects.create(pack=pack, currency="EUR", price_minor=5_900)
    assert billing_currency_get(tenant=tenant) == "USD"  # nothing yet: the vendor's default
    with time_machine.travel(NOW, tick=False):
        created = api_client.post(URL, {"plan": "pro", "currency": "EUR"}, format="json")
    assert created.status_code == 201, created.json()
    Subscription.objects.filter(tenant=tenant).update(status=Subscription.Status.CANCELED)

    assert billing_currency_get(tenant=tenant) == "EUR"
    packs = api_client.get("/api/v1/credit-packs").json()["results"]
    assert [(p["slug"], p["price"], p["currency"]) for p in packs] == [("pack-500", "59.00", "EUR")]
    _refused(api_client.post(URL, {"plan": "pro", "currency": "USD"}, format="json"), BILLED_IN_EUR)
    with time_machine.travel(NOW, tick=False):
        again = api_client.post(URL, {"plan": "pro"}, format="json")
    assert (again.status_code, again.json()["currency"]) == (201, "EUR")


def test_a_first_purchase_fixes_the_default_currency(
    api_client: APIClient, tenant: Tenant, pack: CreditPack
) -> None:
    PlanPrice.objects.create(plan=Plan.objects.get(slug="pro"), currency="EUR", base_minor=7_500)
    bought = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json")
    assert bought.status_code == 201, bought.json()
    assert bought.json()["currency"] == "USD"

    _refused(
        api_client.post(URL, {"plan": "pro", "currency": "EUR"}, format="json"),
        "This tenant is billed in USD.",
    )
    other = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500", "currency": "EUR"}, format="json"
    )
    assert other.status_code == 422
    assert other.json()["error"]["field"] == "currency"
    assert billing_currency_get(tenant=tenant) == "USD"


def test_a_contract_fixes_the_currency_and_one_in_another_is_refused(tenant: Tenant) -> None:
    ratecard_seed_example()
    with time_machine.travel(datetime(2026, 2, 1, tzinfo=UTC), tick=False):
        contract_activate(contract=make_contract(tenant, currency="CHF"))
        assert billing_currency_get(tenant=tenant) == "CHF"
        other = make_contract(tenant, name="Acme Q2", currency="USD")
        with pytest.raises(InvalidContract) as refused:
            contract_activate(contract=other)
    assert (refused.value.message, refused.value.details) == (
        "This tenant is billed in CHF: the contract must be too.",
        {"field": "currency"},
    )
    other.refresh_from_db()
    assert other.status == "draft"
