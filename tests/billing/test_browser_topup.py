"""A billing member buys a pack in a real browser (headless chromium) on the fake gateway:
the overview, the buy page, the gateway's checkout, paid, back on the buy page with the new
balance; the plan page with its change and cancel forms; each page at 1280 and 390 px with no
axe-core violations."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User

from billing.models import CreditPack, Plan, TopUp
from billing.services.subscriptions import subscription_create
from ledger.selectors import balance_get
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.conftest import grant
from tests.billing.test_subscriptions import priced
from tests.browser import axe_violations, browser_page, shot, sign_in

__all__ = ["browser_page", "priced"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.usefixtures("priced")
def test_a_billing_member_buys_a_pack_in_the_browser(
    live_server: Any, tenant: Tenant, pack: CreditPack, browser_page: Any
) -> None:
    page = browser_page
    user = User.objects.create_user("carol", email="carol@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.BILLING)
    grant(tenant, 120, "welcome")
    subscription_create(tenant=tenant, plan=Plan.objects.get(slug="team"), seats=3)  # 250

    sign_in(page, live_server.url, "carol", "s3cret-pass!")
    page.goto(f"{live_server.url}/")
    assert page.inner_text("[data-testid=available]") == "370"
    assert page.inner_text("[data-testid=plan-seats]") == "3"
    assert axe_violations(page) == []
    shot(page, "portal-overview-billing")

    page.click("[data-testid=overview-buy]")
    page.wait_for_url(f"{live_server.url}/buy/")
    offer = page.locator("[data-testid=pack-pack-500]")
    assert offer.locator(".amount").inner_text() == "65.00 USD"
    assert offer.locator("[data-testid=pack-credits]").inner_text() == "500"
    assert offer.locator("[data-testid=pack-per-1000]").inner_text() == "130.00 USD"
    assert axe_violations(page) == []
    shot(page, "portal-buy")

    page.click("[data-testid=buy-pack-500]")
    page.wait_for_url("**/billing/checkout/fake/*/")
    assert "500 credits for 65.00 USD" in page.inner_text("main")
    page.click("[data-testid=pay]")
    top_up = TopUp.objects.get(tenant=tenant)
    page.wait_for_url(f"{live_server.url}/buy/?top_up={top_up.pk}")

    assert "Payment received: 500 credits added." in page.inner_text(".messages")
    assert page.inner_text("[data-testid=returned]") == (
        "Your purchase of 500 credits is paid and in your balance."
    )
    assert page.inner_text(f"[data-testid=receipt-{top_up.pk}]") == top_up.receipt_number
    assert balance_get(tenant=tenant).available == Decimal("870")
    assert TopUp.objects.get(tenant=tenant).status == "succeeded"
    assert axe_violations(page) == []
    shot(page, "portal-buy-paid")
    page.goto(f"{live_server.url}/")
    assert page.inner_text("[data-testid=available]") == "870"

    page.click("nav.side >> text=Plan")
    page.wait_for_url(f"{live_server.url}/plan/")
    assert page.inner_text("[data-testid=plan-name]") == "Team"
    assert page.is_visible("[data-testid=change]")
    assert page.is_visible("[data-testid=cancel]")
    assert axe_violations(page) == []
    shot(page, "portal-plan-subscribed")
