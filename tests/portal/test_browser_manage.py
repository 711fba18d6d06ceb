"""The management pages in a real browser: an owner creates an API key, adds a webhook
endpoint, sets alerts and invites a member (listed as pending, with Withdraw), who accepts;
each page at 1280 and 390 px, with no accessibility violations axe-core can find."""

import re
from typing import Any

import pytest
from django.contrib.auth.models import User

from billing.services.webhooks import webhook_endpoint_create
from tenants.models import Membership, OutboxMessage, Tenant
from tenants.services import membership_add
from tests.billing.conftest import grant
from tests.billing.test_webhooks_out import Receiver, receiver
from tests.browser import axe_violations, browser_page, shot, sign_in

__all__ = ["browser_page", "receiver"]

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def look(page: Any, url: str, name: str) -> None:
    page.goto(url)
    assert axe_violations(page) == [], name
    shot(page, name)


def test_an_owner_manages_keys_webhooks_alerts_and_the_team(
    live_server: Any, tenant: Tenant, browser_page: Any, receiver: Receiver, settings: Any
) -> None:
    settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS = True  # the receiver listens on 127.0.0.1
    page, base = browser_page, live_server.url
    owner = User.objects.create_user("olive", email="olive@acme.test", password="s3cret-pass!")
    membership_add(tenant=tenant, user=owner, role=Membership.Role.OWNER)
    grant(tenant, 120, "welcome")
    endpoint = webhook_endpoint_create(tenant=tenant, url=receiver.url)
    sign_in(page, base, "olive", "s3cret-pass!")

    page.goto(f"{base}/keys/")
    page.get_by_label("Name").fill("agent runtime")
    page.get_by_label("Billing").check()
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_label("API key").input_value()
    assert re.fullmatch(r"cl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}", key)
    assert axe_violations(page) == []
    shot(page, "portal-keys-created")
    look(page, f"{base}/keys/", "portal-keys")
    assert key not in page.content()

    look(page, f"{base}/webhooks/", "portal-webhooks")
    page.goto(f"{base}/webhooks/{endpoint.pk}/")
    page.get_by_role("button", name="Send a test event").click()
    page.wait_for_url(f"{base}/webhooks/{endpoint.pk}/")
    assert "HTTP 200" in page.inner_text("main table")
    assert len(receiver.requests) == 1
    assert axe_violations(page) == []
    shot(page, "portal-webhook")
    look(page, f"{base}/alerts/", "portal-alerts")
    assert "Soft cap: 12 credits." in page.inner_text("main")

    page.goto(f"{base}/team/")
    page.get_by_label("E-mail").fill("nina@example.com")
    page.get_by_label("Role", exact=True).select_option("billing")
    page.get_by_role("button", name="Send invitation").click()
    page.wait_for_url(f"{base}/team/")
    assert "Invitation sent to nina@example.com as Billing." in page.inner_text("main")
    pending = page.locator("section", has=page.get_by_role("heading", name="Pending invitations"))
    (invited,) = pending.locator("tbody tr td:first-child").all_inner_texts()
    assert invited.startswith("nina@example.com\nBilling · sent ")
    assert " by olive · expires " in invited
    assert page.get_by_role("button", name="Withdraw the invitation to nina@example.com").count()
    assert axe_violations(page) == []
    shot(page, "portal-team")

    link = OutboxMessage.objects.get(task="tenants.invite_email_send").kwargs["link"]
    User.objects.create_user("nina", email="nina@example.com", password="s3cret-pass!")
    page.context.clear_cookies()
    sign_in(page, base, "nina", "s3cret-pass!")
    look(page, link, "portal-join")
    page.get_by_role("button", name="Join Acme Agents").click()
    page.wait_for_url(f"{base}/")
    assert page.inner_text("nav.side .role") == "Billing"
    look(page, f"{base}/team/", "portal-team-billing")
    assert page.get_by_role("button", name="Remove").count() == 0
