"""The console in a browser (Debian's chromium): every page as staff, with seeded usage, a
screenshot at 1280 and 390 px (var/screenshots/console-*.png) and axe-core's check."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from insights.rollup import insights_rollup_update
from ledger.services import ledger_expire_due
from metering.services import UsageInput, usage_event_record
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.browser import axe_violations, browser_page, shot, sign_in
from tests.metering.factories import fund

__all__ = ["browser_page"]
D = Decimal
# The rate cards' version and simulation pages: tests/insights/test_browser_ratecards.py.
PAGES = [
    "",
    "margin/?by=tenant",
    "margin/?by=day",
    "breakage/",
    "weights/",
    "rate-cards/",
    "reconciliation/",
]


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_console_page_in_a_browser(
    live_server: Any, browser_page: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    price_cache_clear()
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        fund(other_tenant, 200, price_minor=500, reference="g", policy="rolling_12m")
        for day in range(3):
            clock.move_to(f"2026-01-{10 + day} 12:00:00+00:00")
            usage_event_record(
                tenant=tenant,
                data=UsageInput(
                    idempotency_key=f"a{day}",
                    action="chat",
                    quantity=D(300),
                    input_tokens=400_000 * (day + 1),
                ),
            )
            usage_event_record(
                tenant=other_tenant,
                data=UsageInput(
                    idempotency_key=f"g{day}",
                    action="web_research",
                    quantity=D(1),
                    model_class="turbo" if day else "",
                    output_tokens=500_000,
                ),
            )
        ledger_expire_due()
        insights_rollup_update()
    User.objects.create_user("vendor", password="s3cret-staff", is_staff=True)
    page = browser_page

    sign_in(page, live_server.url, "vendor", "s3cret-staff")
    found: dict[str, list[str]] = {}
    for path in PAGES:
        page.goto(
            f"{live_server.url}/console/{path}{'&' if '?' in path else '?'}"
            "start=2026-01-01&end=2026-01-31"
        )
        assert page.locator("h1").first.is_visible()
        name = (
            "console-"
            + (path.split("/")[0] or "customers")
            + ("-" + path.split("=")[1] if "=" in path else "")
        )
        shot(page, name)
        found[path] = axe_violations(page)

    assert found == {path: [] for path in PAGES}
    price_cache_clear()
