"""The portal's plan page: subscribe, add seats, cancel, with the fake gateway; the invoice is
the gateway's page; a past-due plan says why; a plain member sees the page and is offered and
allowed nothing."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from billing.models import Plan, PlanPrice, Subscription, SubscriptionInvoice
from ledger.selectors import balance_get
from tenants.models import Tenant
from tests.billing.test_portal_roles import login
from tests.billing.test_subscriptions import priced  # noqa: F401  (the fixture)
from tests.portal.tables import table_rows

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("priced")]


def test_an_owner_subscribes_adds_seats_and_cancels(tenant: Tenant) -> None:
    client = login(tenant, "owner")
    with time_machine.travel(datetime(2026, 4, 1, 0, tzinfo=UTC), tick=False) as clock:
        page = client.get("/plan/")
        assert page.status_code == 200
        assert b'data-testid="subscribe"' in page.content

        done = client.post("/plan/subscribe/", {"plan": "team", "seats": "3"}, follow=True)
        html = done.content.decode()
        assert done.redirect_chain == [("/plan/", 302)]
        assert "Subscribed to Team (Active)." in html
        assert 'data-testid="plan-name">Team<' in html
        assert 'data-testid="seats">3<' in html
        assert "<dt>Credits a period</dt><dd>250</dd>" in html
        assert 'data-testid="then">Renews on 2026-05-01.<' in html
        assert balance_get(tenant=tenant).available == Decimal("250")
        invoice = SubscriptionInvoice.objects.get(tenant=tenant)
        assert invoice.hosted_url == f"/billing/plan/invoices/{invoice.gateway_reference}/"
        assert f'href="{invoice.hosted_url}"' in html
        shown = client.get(invoice.hosted_url)
        assert shown.status_code == 200
        for text in (invoice.gateway_reference, "Paid on 2026-04-01 00:00 UTC", "3 seats", "50.00"):
            assert text in shown.content.decode()
        assert client.get("/billing/plan/invoices/fin_other/").status_code == 404

        clock.move_to(datetime(2026, 4, 16, 0, tzinfo=UTC))
        client.force_login(User.objects.get(username="owner"))  # the session expired meanwhile
        changed = client.post("/plan/change/", {"plan": "team", "seats": "5"}, follow=True)
        assert "Now on Team with 5 seat(s)." in changed.content.decode()
        assert balance_get(tenant=tenant).available == Decimal("300")

        refused = client.post("/plan/change/", {"plan": "team", "seats": "0"}, follow=True)
        assert "A subscription has at least one seat." in refused.content.decode()
        assert "seats: " not in refused.content.decode()

        cancelled = client.post("/plan/cancel/", follow=True).content.decode()
        assert "The subscription ends at the end of the period." in cancelled
        assert 'data-testid="then">Ends on 2026-05-01; its included credits expire then.<' in (
            cancelled
        )
        assert 'data-testid="change"' not in cancelled
    sub = Subscription.objects.get(tenant=tenant)
    assert (sub.seats, sub.cancel_at_period_end) == (5, True)


def test_a_member_sees_the_plan_but_is_offered_and_allowed_nothing(tenant: Tenant) -> None:
    owner = login(tenant, "owner")
    owner.post("/plan/subscribe/", {"plan": "pro"})
    client = login(tenant, "member")

    page = client.get("/plan/").content.decode()

    assert 'data-testid="plan-name">Pro<' in page
    for offer in ('data-testid="subscribe"', 'data-testid="change"', 'data-testid="cancel"'):
        assert offer not in page
    assert "Your role (Member) sees the plan" in page
    assert client.post("/plan/subscribe/", {"plan": "pro"}).status_code == 403
    assert client.post("/plan/change/", {"plan": "starter", "seats": "1"}).status_code == 403
    assert client.post("/plan/cancel/").status_code == 403
    sub = Subscription.objects.get(tenant=tenant)
    assert (sub.plan.slug, sub.cancel_at_period_end) == ("pro", False)
    assert Plan.objects.filter(slug="pro").exists()


def test_a_past_due_plan_says_why_on_the_plan_page_and_the_overview(tenant: Tenant) -> None:
    from billing.gateways.fake import FakeGateway
    from billing.services.subscriptions import subscription_renew_due

    client = login(tenant, "owner")
    with time_machine.travel(datetime(2026, 4, 1, 0, tzinfo=UTC), tick=False) as clock:
        client.post("/plan/subscribe/", {"plan": "pro"})
        sub = Subscription.objects.get(tenant=tenant)
        FakeGateway.payments_fail(reference=sub.gateway_reference)
        clock.move_to(datetime(2026, 5, 1, 1, tzinfo=UTC))
        subscription_renew_due()
        client.force_login(User.objects.get(username="owner"))
        plan_page = client.get("/plan/").content.decode()
        overview = client.get("/").content.decode()
    assert 'data-testid="status">Past due<' in plan_page
    assert "New workflow runs are refused from 2026-05-04 01:00 UTC until it is paid." in plan_page
    assert 'data-testid="plan-state">Past due<' in overview
    assert "(the payment failed). New workflow runs are refused from 2026-05-04 01:00 UTC" in (
        overview
    )


def test_a_contracts_invoices_are_listed_on_the_plan_page_with_their_page(tenant: Tenant) -> None:
    from billing.models import ContractInvoice
    from billing.services.contracts import contract_activate
    from tests.billing.test_contract_invoices import START, make_contract

    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
    invoice = ContractInvoice.objects.get(tenant=tenant)
    client = login(tenant, "member")

    page = client.get("/plan/").content.decode()
    shown = client.get(f"/billing/contract-invoices/{invoice.pk}/")

    assert f'<a href="{invoice.hosted_url}" rel="noopener">{invoice.number}</a>' in page
    assert "Open (unpaid)" in page
    assert invoice.hosted_url == f"/billing/contract-invoices/{invoice.pk}/"
    assert shown.status_code == 200
    assert '<a href="/plan/">Back</a>' in shown.content.decode()


def test_every_role_sees_the_plans_on_sale_in_its_currency(tenant: Tenant) -> None:
    # A plan not priced in the tenant's currency (USD) is not on sale to it.
    euro_only = Plan.objects.create(
        slug="euro", name="Euro", price_minor=1_000, included_credits=Decimal("80")
    )
    PlanPrice.objects.create(plan=euro_only, currency="EUR", base_minor=1_000)
    login(tenant, "owner").post("/plan/subscribe/", {"plan": "pro"})

    page = login(tenant, "member").get("/plan/")

    assert table_rows(page, region="Plans on sale") == [
        ["Team", "20.00 USD", "10.00 USD", "100", "50"],
        ["Starter", "29.00 USD", "—", "250", "—"],
        ["Pro (yours)", "79.00 USD", "—", "750", "—"],
        ["Enterprise", "499.00 USD", "—", "5,000", "—"],
    ]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ("plan=team&seats=%C2%B2", "Seats are a whole number, at least one."),
        ("plan=team&seats=abc", "Seats are a whole number, at least one."),
        ("plan=team&seats=99999999999", "A subscription has at most 100,000 seats."),
        ("plan=team%00&seats=2", "No active plan has that slug."),
    ],
)
def test_a_change_with_a_hostile_value_is_refused_and_changes_nothing(
    tenant: Tenant, body: str, said: str
) -> None:
    client = login(tenant, "owner")
    client.post("/plan/subscribe/", {"plan": "team", "seats": "1"})
    before = balance_get(tenant=tenant).available

    refused = client.post(
        "/plan/change/", body, content_type="application/x-www-form-urlencoded", follow=True
    )

    assert refused.redirect_chain == [("/plan/", 302)]
    assert said in refused.content.decode()
    sub = Subscription.objects.get(tenant=tenant)
    assert (sub.plan.slug, sub.seats, sub.next_plan) == ("team", 1, None)
    assert balance_get(tenant=tenant).available == before


def test_an_invoice_address_with_a_nul_is_a_404(tenant: Tenant) -> None:
    client = login(tenant, "owner")

    assert client.get("/billing/plan/invoices/fin_x%00/").status_code == 404
