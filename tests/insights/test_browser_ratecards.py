"""The console's rate cards in a browser: suggested weights → a draft in one click, the draft
against v1, a simulation run from its page, and the cards' list; each page screenshotted at
1280 and 390 px (var/screenshots/console-ratecards-*.png) and checked by axe-core."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User

from insights.rollup import insights_rollup_update
from metering.services import UsageInput, usage_event_record
from ratecards.models import RateCardVersion
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.browser import axe_violations, browser_page, shot, sign_in
from tests.metering.factories import fund

__all__ = ["browser_page"]
D = Decimal


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_weights_to_a_draft_to_a_simulation(
    live_server: Any, browser_page: Any, tenant: Tenant, other_tenant: Tenant
) -> None:
    price_cache_clear()
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        fund(other_tenant, 200, price_minor=500, reference="g")
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
        insights_rollup_update()
    User.objects.create_superuser("vendor", password="s3cret-staff")
    page = browser_page
    sign_in(page, live_server.url, "vendor", "s3cret-staff")
    found: dict[str, list[str]] = {}

    page.goto(f"{live_server.url}/console/weights/?start=2026-01-01&end=2026-01-31")
    page.get_by_role("button", name="Make these a draft of Standard").click()
    page.wait_for_url("**/console/rate-cards/versions/*/")
    draft = RateCardVersion.objects.get(status="draft")
    assert page.locator("h1").inner_text() == "Standard v2 Draft"
    shot(page, "console-ratecards-version")
    found["version"] = axe_violations(page)

    page.get_by_label("Last days").fill("366")  # the events are of January 2026
    page.get_by_role("button", name="Simulate").click()
    page.wait_for_url("**/console/simulations/*/")
    page.get_by_role("heading", name="Customers most affected").wait_for()
    assert "6 events re-priced." in page.content()
    shot(page, "console-ratecards-simulation")
    found["simulation"] = axe_violations(page)

    page.goto(f"{live_server.url}/console/rate-cards/")
    assert page.get_by_role("link", name="v2").get_attribute("href") == (
        f"/console/rate-cards/versions/{draft.pk}/"
    )
    shot(page, "console-ratecards-list")
    found["list"] = axe_violations(page)

    assert found == {"version": [], "simulation": [], "list": []}
    price_cache_clear()
