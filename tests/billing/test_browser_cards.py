"""In a real browser (headless chromium) on the fake gateway: save a card and see it as brand,
last 4 and expiry; buy a pack, pay, open its receipt; start another and cancel it."""

from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from billing.models import BillingCustomer, CreditPack, TopUp
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.test_browser_topup import browser_page  # noqa: F401 (the fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"


def shot(page: Any, name: str) -> None:
    """The page as it is now, at a desktop's width and a phone's, for a person to look at."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 900})


def test_card_receipt_and_cancel_in_the_browser(
    live_server: Any,
    tenant: Tenant,
    pack: CreditPack,
    browser_page: Any,  # noqa: F811
) -> None:
    page = browser_page
    user = User.objects.create_user("dana", email="dana@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.BILLING)
    page.goto(f"{live_server.url}/billing/auto-top-up/")
    page.fill("input[name=username]", "dana")
    page.fill("input[name=password]", "s3cret-pass!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/billing/auto-top-up/")

    page.click("[data-testid=add-card]")
    page.wait_for_url("**/billing/cards/fake-setup/**")
    page.check("input[value='4242']")
    page.click("[data-testid=save-card]")
    page.wait_for_url(f"{live_server.url}/billing/auto-top-up/")
    assert (
        page.inner_text("[data-testid=card]") == "Card on file: Visa ending 4242, expires 12/2030"
    )
    shot(page, "auto-top-up-with-card")

    page.goto(f"{live_server.url}/billing/")
    page.click("[data-testid=buy-pack-500]")
    page.wait_for_url("**/billing/checkout/fake/*/")
    page.click("[data-testid=pay]")
    page.wait_for_url(f"{live_server.url}/billing/")
    paid = TopUp.objects.get(tenant=tenant)
    page.click(f"[data-testid=receipt-{paid.pk}]")
    page.wait_for_url(f"**/billing/top-ups/{paid.pk}/receipt/")
    assert page.inner_text("[data-testid=receipt-number]") == paid.receipt_number
    assert page.inner_text("[data-testid=receipt-total]") == "65.00 USD"
    shot(page, "receipt")

    page.goto(f"{live_server.url}/billing/")
    page.click("[data-testid=buy-pack-500]")
    page.wait_for_url("**/billing/checkout/fake/*/")
    pending = TopUp.objects.get(tenant=tenant, status="pending")
    page.goto(f"{live_server.url}/billing/")
    page.click(f"[data-testid=cancel-{pending.pk}]")
    page.wait_for_url(f"{live_server.url}/billing/")
    assert "The purchase was cancelled; nothing was charged." in page.inner_text(".messages")
    shot(page, "balance-after-cancel")
    page.goto(f"{live_server.url}/billing/plan/")
    assert page.inner_text("[data-testid=no-plans]") == (
        "No plan is on sale yet; credits can be bought as packs."
    )
    shot(page, "plan")

    pending.refresh_from_db()
    assert pending.status == "canceled"
    assert BillingCustomer.objects.get(tenant=tenant).card_last4 == "4242"
    connection.close()
