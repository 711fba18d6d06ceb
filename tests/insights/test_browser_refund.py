"""Support refunds a usage event in a browser (Debian's chromium): the customer page's lookup by
idempotency key, the event's facts and its refund form (axe-core's check, a screenshot at 1280
and 390 px in var/screenshots/console-refund*.png), a partial refund, and an over-refund refused
with its message."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import Permission, User

from ledger.selectors import available_get
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.browser import axe_violations, shot
from tests.metering.factories import fund

D = Decimal


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_support_finds_an_event_and_refunds_part_of_it(
    live_server: Any, console_page: Any, console_staff: User, tenant: Tenant
) -> None:
    with time_machine.travel("2026-01-10 12:00:00+00:00", tick=False):
        ratecard_seed_example()
        fund(tenant, 1000, price_minor=1000)
        usage_event_record(
            tenant=tenant,
            data=UsageInput(idempotency_key="run-42", action="chat", quantity=D(100)),
        )
    console_staff.user_permissions.add(Permission.objects.get(codename="adjust_credits"))
    page = console_page
    page.goto(f"{live_server.url}/console/customers/{tenant.pk}/")

    page.fill("#id_event", "run-42")
    page.get_by_role("button", name="Find").click()
    page.wait_for_url("**/?event=run-42")
    assert page.locator("#id_refund-credits").input_value() == "100.0000"
    shot(page, "console-refund")
    assert axe_violations(page) == []
    page.fill("#id_refund-credits", "40")
    page.fill("#id_refund-reason", "The agent timed out")
    page.get_by_role("button", name="Refund", exact=True).click()
    page.wait_for_url(f"**/console/customers/{tenant.pk}/")
    assert page.get_by_text("Refunded 40.0000 credits of usage event run-42.").is_visible()
    assert available_get(tenant=tenant) == D("940.0000")

    page.goto(f"{live_server.url}/console/customers/{tenant.pk}/?event=run-42")
    assert page.locator("#id_refund-credits").input_value() == "60.0000"
    page.fill("#id_refund-credits", "61")
    page.fill("#id_refund-reason", "Again")
    page.get_by_role("button", name="Refund", exact=True).click()
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "At most 60.0000 credits of this debit can still be reversed."
    shot(page, "console-refund-refused")
    assert axe_violations(page) == []
    assert available_get(tenant=tenant) == D("940.0000")
