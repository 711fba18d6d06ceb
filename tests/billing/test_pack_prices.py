"""One currency per tenant: a pack has a price per currency (CreditPackPrice), a tenant is
offered and charged the price in its billing currency, and amounts in two currencies are never
added together (the auto top-up cap counts the month's spending in the cap's currency only)."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import (
    AutoTopUpPolicy,
    CreditPack,
    CreditPackPrice,
    Subscription,
    TenantBilling,
    TopUp,
)
from billing.pack_selectors import auto_topup_spent_in, pack_offer_list
from billing.selectors import auto_topup_month_spent
from billing.services import auto_topup_policy_update, auto_topup_start, billing_customer_save
from billing.services.topups import topup_create
from tenants.models import Tenant
from tests.billing.factories import PlanFactory

pytestmark = pytest.mark.django_db(transaction=True)


def bills_in_euros(tenant: Tenant) -> None:
    now = timezone.now()
    Subscription.objects.create(
        tenant=tenant,
        plan=PlanFactory.create(slug="pro-eur", currency="EUR"),
        currency="EUR",
        anchor=now,
        current_period_start=now,
        current_period_end=now + timedelta(days=30),
    )


@pytest.fixture
def euro_priced(pack: CreditPack) -> CreditPack:
    """pack-500: 65.00 USD (its list price), 59.00 EUR."""
    CreditPackPrice.objects.create(pack=pack, currency="EUR", price_minor=5_900)
    return pack


def test_the_list_is_priced_in_each_tenants_currency(
    tenant: Tenant,
    other_tenant: Tenant,
    make_client: Callable[..., APIClient],
    euro_priced: CreditPack,
) -> None:
    bills_in_euros(other_tenant)
    usd = make_client(tenant, scopes=("read", "billing"))
    eur = make_client(other_tenant, scopes=("read", "billing"))

    listed = {
        name: [
            (p["slug"], p["price_minor"], p["currency"], p["price_per_1000_credits"])
            for p in client.get("/api/v1/credit-packs").json()["results"]
        ]
        for name, client in (("usd", usd), ("eur", eur))
    }

    assert listed == {
        "usd": [("pack-500", 6_500, "USD", "130.00")],
        "eur": [("pack-500", 5_900, "EUR", "118.00")],
    }
    assert [(o.slug, o.price_minor) for o in pack_offer_list(currency="jpy")] == []


def test_a_euro_tenant_buys_at_the_euro_price(
    tenant: Tenant, api_client: APIClient, euro_priced: CreditPack
) -> None:
    bills_in_euros(tenant)

    bought = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json")
    wrong = api_client.post(
        "/api/v1/top-ups", {"pack": "pack-500", "currency": "USD"}, format="json"
    )

    assert bought.status_code == 201
    assert (bought.json()["amount_minor"], bought.json()["currency"]) == (5_900, "EUR")
    assert wrong.status_code == 422
    assert wrong.json()["error"]["fields"] == {
        "currency": ["Packs are sold in EUR to this tenant, not 'USD'."]
    }


def test_a_pack_without_a_price_in_the_currency_is_an_unknown_pack_there(
    tenant: Tenant, api_client: APIClient, pack: CreditPack
) -> None:
    bills_in_euros(tenant)

    refused = api_client.post("/api/v1/top-ups", {"pack": "pack-500"}, format="json")

    assert refused.status_code == 422
    assert refused.json()["error"]["fields"] == {
        "pack": ["No active credit pack in EUR has the slug 'pack-500'."]
    }
    assert TopUp.objects.filter(tenant=tenant).count() == 0


def test_the_auto_top_up_cap_never_adds_two_currencies(
    tenant: Tenant, euro_priced: CreditPack
) -> None:
    # Given: this month, an auto top-up paid in USD (65.00), before the tenant bills in EUR
    # (its currency as billing.0015 stored it from its plan).
    usd = topup_create(tenant=tenant, pack=euro_priced, auto=True)
    TopUp.objects.filter(pk=usd.pk).update(status=TopUp.Status.SUCCEEDED)
    TenantBilling.objects.filter(tenant=tenant).update(currency="EUR")
    bills_in_euros(tenant)
    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id="pm_fake_visa"
    )
    now = timezone.now()
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    assert auto_topup_spent_in(tenant_id=tenant.pk, since=month, currency="EUR") == 0
    assert auto_topup_spent_in(tenant_id=tenant.pk, since=month, currency="USD") == 6_500

    # When: auto top-up is on with a cap of 70.00 EUR, and the balance is 0.
    auto_topup_policy_update(
        tenant=tenant,
        enabled=True,
        threshold=Decimal("10"),
        pack=euro_priced,
        monthly_cap_minor=7_000,
    )

    # Then: it buys the pack at 59.00 EUR (65 USD + 59 EUR would be "124" over 70).
    eur = TopUp.objects.filter(tenant=tenant, auto=True, currency="EUR").get()
    assert (eur.amount_minor, eur.status) == (5_900, "succeeded")
    assert auto_topup_spent_in(tenant_id=tenant.pk, since=month, currency="EUR") == 5_900
    assert auto_topup_spent_in(tenant_id=tenant.pk, since=month, currency="USD") == 6_500
    # What the portal shows against the cap: the month's euros only.
    assert auto_topup_month_spent(tenant_id=tenant.pk, at=now) == 5_900


def test_the_admin_edits_a_packs_prices_inline(euro_priced: CreditPack) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("vendor", "v@x.test", "pw-123456"))

    page = client.get(f"/admin/billing/creditpack/{euro_priced.pk}/change/")

    assert page.status_code == 200
    assert 'name="prices-0-price_minor" value="5900"' in page.content.decode()


def test_auto_top_up_refuses_a_pack_with_no_price_in_the_new_currency(
    tenant: Tenant, pack: CreditPack
) -> None:
    # Given: auto top-up on with pack-500 (USD only), above the threshold; then the tenant
    # comes to bill in EUR.
    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id="fcus_1", payment_method_id="pm_fake_visa"
    )
    auto_topup_policy_update(
        tenant=tenant, enabled=True, threshold=Decimal("0"), pack=pack, monthly_cap_minor=10_000
    )
    AutoTopUpPolicy.objects.filter(tenant=tenant).update(threshold=Decimal("10"))
    bills_in_euros(tenant)

    outcome = auto_topup_start(tenant=tenant)

    assert outcome.reason == "currency"
    assert AutoTopUpPolicy.objects.get(tenant=tenant).last_refusal == (
        "The pack pack-500 has no price in EUR. Choose another pack."
    )
    assert TopUp.objects.filter(tenant=tenant).count() == 0
