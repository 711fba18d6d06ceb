"""The rate card page: the rates in force (credits per unit, charged always or on success), the
model-class multipliers, and the versions scheduled to follow with the date each applies."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.models import TenantBilling
from billing.services.tenant_billing import credits_display_set
from ratecards.models import Rate
from ratecards.services import (
    rate_delete,
    rate_set,
    ratecard_seed_example,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.portal.conftest import Login
from tests.portal.tables import table_rows

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_the_rates_in_force_and_what_follows(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    card = ratecard_seed_example()
    v2 = ratecard_version_create_draft(rate_card=card, notes="internal: margin push")
    rate_set(version=v2, action="chat", credits_per_unit="2")
    rate_set(version=v2, action="summarise", credits_per_unit="4", charge_on=Rate.ChargeOn.SUCCESS)
    rate_delete(version=v2, action="doc_search")
    ratecard_version_publish(version=v2, effective_from=T0 + timedelta(days=30))

    response = login(tenant, role="member").get("/rate-card/")
    page = response.content.decode()

    assert response.status_code == 200
    assert table_rows(response, "Rates table") == [
        ["action_execution", "Any", "15", "Always"],
        ["chat", "Any", "1", "Always"],
        ["doc_search", "Any", "3", "Always"],
        ["resolution", "Any", "50", "Only on a successful outcome"],
        ["web_research", "Any", "10", "Always"],
    ]
    assert "<code>turbo</code> \u00d7 6" in page
    assert "Version 2, from 2026-02-14 12:00 UTC" in page
    assert table_rows(response, "Changes in version 2") == [
        ["chat", "Any", "1", "2", "Always"],
        ["doc_search", "Any", "3", "removed", "Always"],
        ["summarise", "Any", "new", "4", "Only on a successful outcome"],
    ]
    assert "margin" not in page.lower()  # the version's notes are the vendor's


def test_no_change_scheduled_says_so(login: Login, tenant: Tenant) -> None:
    ratecard_seed_example()

    page = login(tenant).get("/rate-card/").content.decode()

    assert "No change is scheduled" in page


def test_without_any_card_the_page_says_so(login: Login, tenant: Tenant) -> None:
    response = login(tenant).get("/rate-card/")

    assert response.status_code == 200
    assert "No rate card applies to your account yet." in response.content.decode()


def test_queries_do_not_grow_with_rates_or_versions(login: Login, tenant: Tenant) -> None:
    card = ratecard_seed_example()
    client = login(tenant)
    with CaptureQueriesContext(connection) as few:
        client.get("/rate-card/")
    for n in range(2, 6):
        draft = ratecard_version_create_draft(rate_card=card)
        for i in range(20):
            rate_set(version=draft, action=f"tool_{n}_{i}", credits_per_unit=i)
        ratecard_version_publish(
            version=draft, effective_from=datetime.now(UTC) + timedelta(days=n)
        )

    with CaptureQueriesContext(connection) as many:
        page = client.get("/rate-card/").content.decode()

    assert "Version 5, from" in page
    assert len(many) <= len(few)


def test_a_tenant_shown_money_sees_prices_to_a_fraction_of_a_cent(
    login: Login, tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Invisible credits at 1.98 cents a credit: a resolution (50 credits) is 0.99 USD, a chat
    # (1 credit) 0.0198 USD, not a rounded 0.02.
    ratecard_seed_example()
    TenantBilling.objects.create(tenant=tenant, currency="USD")
    credits_display_set(tenant_id=tenant.pk, display="money", minor_per_credit=Decimal("1.98"))

    response = login(tenant, role="member").get("/rate-card/")

    assert '<th scope="col" class="num">Price per unit</th>' in response.content.decode()
    assert table_rows(response, "Rates table") == [
        ["action_execution", "Any", "0.297 USD", "Always"],
        ["chat", "Any", "0.0198 USD", "Always"],
        ["doc_search", "Any", "0.0594 USD", "Always"],
        ["resolution", "Any", "0.99 USD", "Only on a successful outcome"],
        ["web_research", "Any", "0.198 USD", "Always"],
    ]
