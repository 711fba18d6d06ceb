"""The portal's plan page: subscribe, add seats, cancel, with the fake gateway; a plain member
sees the page but changes nothing."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from billing.models import Plan, Subscription, SubscriptionInvoice
from ledger.selectors import balance_get
from tenants.models import Tenant
from tests.billing.test_portal_roles import login
from tests.billing.test_subscriptions import priced  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("priced")]


def test_an_owner_subscribes_adds_seats_and_cancels(tenant: Tenant) -> None:
    client = login(tenant, "owner")
    with time_machine.travel(datetime(2026, 4, 1, 0, tzinfo=UTC), tick=False) as clock:
        page = client.get("/billing/plan/")
        assert page.status_code == 200
        assert b'data-testid="subscribe"' in page.content

        done = client.post("/billing/plan/subscribe/", {"plan": "team", "seats": "3"}, follow=True)
        assert b"Subscribed to Team (Active)." in done.content
        assert b"Team \xc2\xb7 3 seats \xc2\xb7 250 credits a period" in done.content
        assert balance_get(tenant=tenant).available == Decimal("250")
        invoice = SubscriptionInvoice.objects.get(tenant=tenant)
        assert invoice.hosted_url == f"/billing/plan/invoices/{invoice.gateway_reference}/"
        shown = client.get(invoice.hosted_url)
        assert shown.status_code == 200
        for text in (invoice.gateway_reference, "Paid on 2026-04-01 00:00 UTC", "3 seats", "50.00"):
            assert text in shown.content.decode()
        assert client.get("/billing/plan/invoices/fin_other/").status_code == 404

        clock.move_to(datetime(2026, 4, 16, 0, tzinfo=UTC))
        client.force_login(User.objects.get(username="owner"))  # the session expired meanwhile
        changed = client.post("/billing/plan/change/", {"plan": "team", "seats": "5"}, follow=True)
        assert b"Now on Team with 5 seat(s)." in changed.content
        assert balance_get(tenant=tenant).available == Decimal("300")

        refused = client.post("/billing/plan/change/", {"plan": "team", "seats": "0"}, follow=True)
        assert b"seats: A subscription has at least one seat." in refused.content

        cancelled = client.post("/billing/plan/cancel/", follow=True)
        assert b"The subscription ends at the end of the period." in cancelled.content
    sub = Subscription.objects.get(tenant=tenant)
    assert (sub.seats, sub.cancel_at_period_end) == (5, True)


def test_a_member_sees_the_page_but_cannot_subscribe(tenant: Tenant) -> None:
    client = login(tenant, "member")
    assert client.get("/billing/plan/").status_code == 200
    assert client.post("/billing/plan/subscribe/", {"plan": "pro"}).status_code == 403
    assert not Subscription.objects.filter(tenant=tenant).exists()
    assert Plan.objects.filter(slug="pro").exists()


def test_the_balance_page_shows_a_past_due_plan_and_links_the_plan_page(tenant: Tenant) -> None:
    from billing.gateways.fake import FakeGateway
    from billing.services.subscriptions import subscription_renew_due

    client = login(tenant, "owner")
    with time_machine.travel(datetime(2026, 4, 1, 0, tzinfo=UTC), tick=False) as clock:
        client.post("/billing/plan/subscribe/", {"plan": "pro"})
        sub = Subscription.objects.get(tenant=tenant)
        FakeGateway.payments_fail(reference=sub.gateway_reference)
        clock.move_to(datetime(2026, 5, 1, 1, tzinfo=UTC))
        subscription_renew_due()
        client.force_login(User.objects.get(username="owner"))
        page = client.get("/billing/").content.decode()
        plan_page = client.get("/billing/plan/").content.decode()
    assert "Plan: Pro, renews 2026-05-01 · " in page
    assert '<strong data-testid="subscription-status">Past due</strong>' in page
    assert '<a href="/billing/plan/">Plan and invoices</a>' in page
    assert "New workflow runs are refused from 2026-05-04 01:00 UTC until it is paid." in plan_page
