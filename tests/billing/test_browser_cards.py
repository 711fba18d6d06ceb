"""In a real browser (headless chromium) on the fake gateway: save a card and see it as brand,
last 4 and expiry; set auto top-up with the labels beside their fields; open a receipt; start
another purchase and cancel it; the plan page; and what a plain member sees. Every page at
1280 and 390 px with no axe-core violations."""

from typing import Any

import pytest
from django.contrib.auth.models import User

from billing.models import AutoTopUpPolicy, BillingCustomer, CreditPack, TopUp
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.browser import axe_violations, browser_page, shot, sign_in

__all__ = ["browser_page"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_card_auto_top_up_receipt_cancel_and_plan_in_the_browser(
    live_server: Any, tenant: Tenant, pack: CreditPack, browser_page: Any
) -> None:
    page = browser_page
    base = live_server.url
    user = User.objects.create_user("dana", email="dana@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.BILLING)
    sign_in(page, base, "dana", "s3cret-pass!")

    page.goto(f"{base}/payment-methods/")
    page.click("[data-testid=add-card]")
    page.wait_for_url("**/billing/cards/fake-setup/**")
    page.check("input[value='4242']")
    page.click("[data-testid=save-card]")
    page.wait_for_url(f"{base}/payment-methods/")
    assert page.inner_text("[data-testid=card-brand]") == "Visa ending 4242"
    assert page.inner_text("[data-testid=card-expiry]") == "12/2030"
    assert "pm_fake" not in page.content()
    assert axe_violations(page) == []
    shot(page, "portal-payment-methods")

    page.click("nav.side >> text=Auto top-up")
    page.wait_for_url(f"{base}/auto-top-up/")
    page.get_by_label("Turn auto top-up on").check()
    page.get_by_label("Top up when available credits fall below").fill("50")
    page.get_by_label("Monthly cap (USD)").fill("130")
    page.click("[data-testid=save]")
    page.wait_for_url(f"{base}/auto-top-up/")
    assert "Auto top-up saved." in page.inner_text(".messages")
    # The balance (0) is under the threshold: saving it bought the first pack at once.
    assert page.inner_text("[data-testid=spent]") == "65.00 USD spent of a 130.00 USD cap"
    auto = TopUp.objects.get(tenant=tenant, auto=True)
    assert auto.status == "succeeded"
    assert page.is_visible(f"[data-testid=attempt-{auto.pk}]")
    # The checkbox's label sits right beside it, not a screen away.
    box = page.locator("#id_enabled").bounding_box()
    label = page.locator("label[for=id_enabled]").bounding_box()
    assert abs(box["y"] - label["y"]) < 12
    assert 0 <= label["x"] - (box["x"] + box["width"]) < 24
    assert axe_violations(page) == []
    shot(page, "portal-auto-top-up")
    policy = AutoTopUpPolicy.objects.get(tenant=tenant)
    assert (policy.enabled, policy.threshold, policy.monthly_cap_minor) == (True, 50, 13_000)

    page.goto(f"{base}/buy/")
    page.click("[data-testid=buy-pack-500]")
    page.click("[data-testid=pay]")
    page.wait_for_url(f"{base}/buy/?top_up=*")
    paid = TopUp.objects.get(tenant=tenant, auto=False)
    page.click(f"[data-testid=receipt-{paid.pk}]")
    page.wait_for_url(f"**/billing/top-ups/{paid.pk}/receipt/")
    assert page.inner_text("[data-testid=receipt-number]") == paid.receipt_number
    assert page.inner_text("[data-testid=receipt-total]") == "65.00 USD"
    assert axe_violations(page) == []
    shot(page, "portal-receipt")

    page.goto(f"{base}/buy/")
    page.click("[data-testid=buy-pack-500]")
    page.wait_for_url("**/billing/checkout/fake/*/")
    pending = TopUp.objects.get(tenant=tenant, status="pending")
    page.goto(f"{base}/buy/")
    assert page.is_visible(f"[data-testid=pay-{pending.pk}]")
    shot(page, "portal-buy-pending")
    page.click(f"[data-testid=cancel-{pending.pk}]")
    page.wait_for_url(f"{base}/buy/")
    assert "The purchase was cancelled; nothing was charged." in page.inner_text(".messages")
    pending.refresh_from_db()
    assert pending.status == "canceled"

    page.goto(f"{base}/plan/")
    assert page.inner_text("[data-testid=no-plans]") == (
        "No plan is on sale yet; credits can be bought as packs."
    )
    assert axe_violations(page) == []
    shot(page, "portal-plan")
    assert BillingCustomer.objects.get(tenant=tenant).card_last4 == "4242"


def test_a_member_is_offered_nothing_to_buy_in_the_browser(
    live_server: Any, tenant: Tenant, pack: CreditPack, browser_page: Any
) -> None:
    page = browser_page
    user = User.objects.create_user("max", email="max@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.MEMBER)
    sign_in(page, live_server.url, "max", "s3cret-pass!")
    for path, name in [
        ("/buy/", "portal-buy-member"),
        ("/payment-methods/", "portal-payment-methods-member"),
        ("/auto-top-up/", "portal-auto-top-up-member"),
    ]:
        page.goto(f"{live_server.url}{path}")
        assert page.locator("main form[method=post]").count() == 0, path
        assert page.is_visible("[data-testid=cannot-buy], [data-testid=cannot-change]"), path
        assert axe_violations(page) == [], path
        shot(page, name)
