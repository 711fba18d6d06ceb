"""A customer tops up in a real browser (headless chromium) on the fake gateway: log in, see
the balance, buy a pack, pay on the confirm page, see the new balance."""

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection

from billing.models import CreditPack, TopUp
from ledger.selectors import balance_get
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.conftest import grant

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture
def browser_page() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls the test makes
    # around it are plain synchronous ones.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield browser.new_page()
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def test_top_up_in_the_browser(
    live_server: Any, tenant: Tenant, pack: CreditPack, browser_page: Any
) -> None:
    page = browser_page
    user = User.objects.create_user("carol", email="carol@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=user, role=Membership.Role.BILLING)
    grant(tenant, 120, "welcome")

    page.goto(f"{live_server.url}/billing/")
    page.fill("input[name=username]", "carol")
    page.fill("input[name=password]", "s3cret-pass!")
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/billing/")
    assert page.inner_text("[data-testid=available]") == "120"

    page.click("[data-testid=buy-pack-500]")
    page.wait_for_url("**/billing/checkout/fake/*/")
    assert "500 credits for 65.00 USD" in page.inner_text("main")
    page.click("[data-testid=pay]")
    page.wait_for_url(f"{live_server.url}/billing/")

    assert page.inner_text("[data-testid=available]") == "620"
    assert "Payment received: 500 credits added." in page.inner_text(".messages")
    assert balance_get(tenant=tenant).available == Decimal("620")
    assert TopUp.objects.get(tenant=tenant).status == "succeeded"
    # Playwright's greenlets give this code its own context, hence its own connection: close
    # it, or the test database cannot be dropped at the end of the session.
    connection.close()
