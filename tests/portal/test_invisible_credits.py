"""Invisible credits (outcome-priced products): a tenant set to see money sees its balance,
buckets and statement in its currency at the vendor's price per credit, while the ledger stays
in credits; a tenant that sees credits sees them as before."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine

from billing.display import CREDITS, CreditDisplay, credit_display_get
from billing.exceptions import InvalidCreditDisplay
from billing.models import TenantBilling
from billing.services.tenant_billing import credits_display_set
from ledger.selectors import balance_get
from ledger.services import ledger_debit, ledger_grant
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import fund
from tests.portal.conftest import Login
from tests.portal.tables import table_rows

pytestmark = pytest.mark.django_db


def test_an_amount_of_credits_is_shown_as_the_tenant_sees_them(tenant: Tenant) -> None:
    assert credit_display_get(tenant_id=tenant.pk) == CREDITS
    assert CREDITS.show(Decimal("-10.0000")) == "-10.0000"
    assert CREDITS.show(Decimal("1188.0000"), "-4") == "1188"

    TenantBilling.objects.create(tenant=tenant, currency="EUR")
    credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("1"))
    display = credit_display_get(tenant_id=tenant.pk)

    assert display == CreditDisplay(money=True, currency="EUR", minor_per_credit=Decimal("1"))
    # 12 resolutions of 99 credits at 1 cent a credit: 12 x 0.99 EUR.
    assert display.show(Decimal("1188")) == "11.88 EUR"
    assert display.show(Decimal("-0.5")) == "-0.01 EUR"  # half a cent rounds half up, away
    assert CreditDisplay(True, "JPY", Decimal("0.5")).show(Decimal("1001")) == "501 JPY"


def test_money_needs_a_price_per_credit(tenant: Tenant) -> None:
    with pytest.raises(InvalidCreditDisplay) as refused:
        credits_display_set(tenant_id=tenant.pk, display="money")
    assert refused.value.details == {"field": "minor_per_credit"}
    assert credit_display_get(tenant_id=tenant.pk) == CREDITS


def test_the_portal_shows_money_and_the_ledger_stays_in_credits(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    TenantBilling.objects.create(tenant=tenant, currency="USD")
    credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("1"))
    bucket = ledger_grant(
        tenant=tenant, credits=2_000, policy="permanent", source="topup", external_reference="p"
    ).bucket
    ledger_debit(tenant=tenant, amount=Decimal(1_188), idempotency_key="usage:resolutions")
    client = login(tenant, role="member")

    overview = client.get("/").content.decode()
    buckets = table_rows(client.get("/buckets/"), "Buckets")
    statement = table_rows(client.get("/statement/"), "Statement entries")

    assert balance_get(tenant=tenant).available == Decimal("812")  # credits underneath
    assert '<span data-testid="available">8.12 USD</span> <span class="muted">available' in overview
    assert "credits available" not in overview
    assert buckets == [
        [f"Top-up #{bucket.pk}", "Permanent", "20.00 USD", "8.12 USD", buckets[0][4], "Never"]
    ]
    assert [(row[1], row[2], row[4]) for row in statement] == [
        ("Debit", "-11.88 USD", "8.12 USD"),
        ("Grant", "20.00 USD", "20.00 USD"),
    ]


def test_the_vendor_sets_it_in_the_admin(tenant: Tenant) -> None:
    from django.contrib.auth.models import User
    from django.test import Client

    vendor = Client()
    vendor.force_login(User.objects.create_superuser("vendor", "v@x.test", "pw-123456"))

    added = vendor.post(
        "/admin/billing/tenantbilling/add/",
        {"tenant": tenant.pk, "credit_display": "money", "minor_per_credit": "0.5"},
    )

    assert added.status_code == 302
    assert credit_display_get(tenant_id=tenant.pk) == CreditDisplay(
        money=True, currency="USD", minor_per_credit=Decimal("0.5")
    )


def test_the_buy_page_shows_a_packs_usage_in_money(login: Login, tenant: Tenant) -> None:
    from tests.billing.factories import CreditPackFactory

    CreditPackFactory.create(slug="pack-500", name="500", credits=Decimal("500"), price_minor=450)
    TenantBilling.objects.create(tenant=tenant, currency="USD")
    credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("1"))

    page = login(tenant, role="owner").get("/buy/").content.decode()

    assert '<span data-testid="pack-credits">5.00 USD</span> of usage' in page
    assert "per 1,000" not in page


def test_the_api_balance_shows_money_as_an_extra_display_field(
    tenant: Tenant, make_client: Any
) -> None:
    ledger_grant(
        tenant=tenant, credits=2_000, policy="permanent", source="topup", external_reference="p"
    )
    ledger_debit(tenant=tenant, amount=Decimal(1_188), idempotency_key="usage:resolutions")
    client = make_client(tenant)
    assert client.get("/api/v1/balance").json()["display"] == {"unit": "credits"}

    TenantBilling.objects.create(tenant=tenant, currency="EUR")
    credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("1"))
    body = client.get("/api/v1/balance").json()

    assert (body["available"], body["display"]) == (
        "812.0000",
        {
            "unit": "money",
            "currency": "EUR",
            "minor_per_credit": "1.000000",
            "available_minor": 812,
        },
    )


@pytest.mark.parametrize(
    ("money", "amount", "source"),
    [
        (True, "-11.88 USD", "Usage event: 12 \u00d7 resolution at 0.99 USD evt-12"),
        (False, "-600.0000", "Usage event: 12 \u00d7 resolution at 50 credits evt-12"),
    ],
    ids=["money", "credits"],
)
def test_a_usage_line_says_how_many_of_what_at_what_price(
    login: Login,
    tenant: Tenant,
    frozen_time: time_machine.Traveller,
    money: bool,
    amount: str,
    source: str,
) -> None:
    # The example card charges 50 credits a resolution; at 1.98 cents a credit, one is 0.99 USD.
    ratecard_seed_example()
    TenantBilling.objects.create(tenant=tenant, currency="USD")
    if money:
        credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("1.98"))
    fund(tenant, 1000)
    usage_event_record(
        tenant=tenant,
        data=UsageInput(idempotency_key="evt-12", action="resolution", quantity=Decimal(12)),
    )

    rows = table_rows(login(tenant, role="member").get("/statement/"), "Statement entries")

    assert [(row[1], row[2], row[5]) for row in rows[:1]] == [("Debit", amount, source)]
