"""The console's rate cards in a browser: suggested weights → a draft in one click, the draft
against v1, a simulation run from its page, and the cards' list; each page screenshotted at
1280 and 390 px (var/screenshots/console-ratecards-*.png) and checked by axe-core."""

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User

from ratecards.models import RateCardVersion
from tests.browser import axe_violations, shot


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("console_usage")
def test_weights_to_a_draft_to_a_simulation(
    live_server: Any, console_page: Any, console_staff: User
) -> None:
    console_staff.user_permissions.add(Permission.objects.get(codename="add_ratecardversion"))
    page = console_page
    found: dict[str, list[str]] = {}

    page.goto(f"{live_server.url}/console/weights/?start=2026-01-01&end=2026-01-31")
    page.get_by_role("button", name="Make these a draft of Standard").click()
    page.wait_for_url("**/console/rate-cards/versions/*/")
    draft = RateCardVersion.objects.get(status="draft")
    assert page.locator("h1").inner_text() == "Standard v2 Draft"
    shot(page, "console-ratecards-version")
    found["version"] = axe_violations(page)

    page.get_by_label("Last whole days").fill("366")  # the events are of January 2026
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
