"""Margins in two currencies in a browser (Debian's chromium): a customer paying in EUR against
the USD cost catalog, a rate added through the console's form by staff who may, and the pages
that show its margin converted (customers, the customer, margin by day with its chart) and the
exchange-rate page: screenshots at 1280 and 390 px (var/screenshots/console-fx-*.png) and
axe-core's check."""

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from insights.models import ExchangeRate
from insights.rollup import insights_rollup_update
from insights.staff_actions import staff_exchange_rate_add
from metering.rollup import usage_rollup_update
from metering.services import UsageInput, usage_event_record
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.browser import axe_violations, shot
from tests.metering.factories import fund

D = Decimal
RANGE = "start=2026-01-01&end=2026-01-31"


@pytest.fixture
def euro(console_usage: None) -> Tenant:
    """Beside the console's seeded usage: Initech buys 1,000 credits for 50.00 EUR and chats
    100 credits on Jan 11 (COGS $1.00) and Jan 12 ($3.01); 1 USD = 0.92 EUR from Jan 1."""
    initech = tenant_create(name="Initech", slug="initech")
    with time_machine.travel("2026-01-11 12:00:00+00:00", tick=False) as clock:
        fund(initech, 1000, price_minor=5000, currency="EUR", reference="i")
        for key, tokens in (("i11", 400_000), ("i12", 1_204_000)):
            usage_event_record(
                tenant=initech,
                data=UsageInput(
                    idempotency_key=key, action="chat", quantity=D(100), input_tokens=tokens
                ),
            )
            clock.move_to("2026-01-12 12:00:00+00:00")
        usage_rollup_update()
        insights_rollup_update()
    staff_exchange_rate_add(
        user=User.objects.create_superuser("treasurer"),
        from_currency="USD",
        to_currency="EUR",
        rate=D("0.92"),
        effective_on=date(2026, 1, 1),
        source="ECB reference rate",
    )
    return initech


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_margins_in_two_currencies_in_a_browser(
    live_server: Any, console_page: Any, console_staff: User, euro: Tenant
) -> None:
    console_staff.user_permissions.add(Permission.objects.get(codename="add_exchangerate"))
    page = console_page
    found: dict[str, list[str]] = {}

    page.goto(f"{live_server.url}/console/exchange-rates/")
    page.fill("#id_from_currency", "USD")
    page.fill("#id_to_currency", "EUR")
    page.fill("#id_rate", "0.95")
    page.fill("#id_effective_on", "2026-01-12")
    page.fill("#id_source", "ECB reference rate")
    page.get_by_role("button", name="Add the rate").click()
    page.wait_for_load_state()
    assert page.get_by_text("Added: 1 USD = 0.95 EUR from 2026-01-12.").is_visible()
    assert ExchangeRate.objects.filter(effective_on=date(2026, 1, 12)).get().rate == D("0.95")
    shot(page, "console-fx-exchange-rates")
    found["exchange-rates"] = axe_violations(page)

    pages = {
        "customers": f"/console/?{RANGE}",
        "customer": f"/console/customers/{euro.pk}/?{RANGE}",
        "margin-day": f"/console/margin/?by=day&tenant={euro.pk}&{RANGE}",
    }
    for name, path in pages.items():
        page.goto(f"{live_server.url}{path}")
        shot(page, f"console-fx-{name}")
        found[name] = axe_violations(page)
        # 92 + 301 x 0.95 = 377.95 EUR cents against 1,000: 62.2 %.
        if name != "margin-day":
            assert page.get_by_text("→ 3.78 EUR").first.is_visible()
            assert page.get_by_text("62.2 %").first.is_visible()
    assert page.get_by_text("at the rate of 2026-01-12").is_visible()

    assert found == {name: [] for name in ["exchange-rates", *pages]}
