"""The portal's money pages by role: every member sees buy credits, payment methods, auto
top-up and plan; only owners, admins and billing members are offered (and allowed) to buy, pay,
cancel, save or remove a card, set auto top-up or change the plan. Another tenant's purchase is a
404. The old `/billing/...` addresses redirect; billing's links name the portal's pages."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import resolve

from billing import links
from billing.models import AutoTopUpPolicy, BillingCustomer, CreditPack, Subscription, TopUp
from billing.services import fake_checkout_confirm, topup_create
from ledger.selectors import balance_get
from ledger.services import ledger_debit
from portal.base import SESSION_KEY
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.conftest import grant

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = ("/buy/", "/payment-methods/", "/auto-top-up/", "/plan/")
# What only a billing role is offered, by the test id of its control.
OFFERS = ("buy-pack-500", "pay-", "cancel-", "add-card", "replace-card", "remove-card", "save")


def login(tenant: Tenant, role: str) -> Client:
    user = User.objects.create_user(role, email=f"{role}@acme.test", password="pw-123456")
    membership_add(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def _offered(html: str) -> list[str]:
    return [offer for offer in OFFERS if f'data-testid="{offer}' in html]


def test_a_member_sees_every_money_page_is_offered_nothing_and_is_refused_everything(
    tenant: Tenant, pack: CreditPack
) -> None:
    client = login(tenant, Membership.Role.MEMBER)
    top_up = topup_create(tenant=tenant, pack=pack)
    top_up.checkout_url = f"/billing/checkout/fake/{top_up.pk}/"
    top_up.save(update_fields=["checkout_url"])

    for path in PAGES:
        page = client.get(path)
        html = page.content.decode()
        assert page.status_code == 200, path
        assert _offered(html) == [], path
        assert 'data-testid="cannot-' in html, path
        for label in ("Buy credits", "Payment methods", "Auto top-up", "Plan"):
            assert f">{label}</a>" in html
    assert "65.00 USD" in client.get("/buy/").content.decode()  # prices are shown

    refused = [
        client.post("/buy/", {"pack": pack.slug}),
        client.get(f"/buy/{top_up.pk}/pay/"),
        client.post(f"/buy/{top_up.pk}/cancel/"),
        client.post("/payment-methods/"),
        client.post("/payment-methods/remove/"),
        client.post("/auto-top-up/", {"threshold": "100", "pack": pack.slug, "monthly_cap": "1"}),
        client.post("/plan/subscribe/", {"plan": "pro"}),
        client.post("/plan/change/", {"plan": "pro", "seats": "2"}),
        client.post("/plan/cancel/"),
        client.post(f"/billing/checkout/fake/{top_up.pk}/"),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "Your role (Member) cannot do this." in refused[0].content.decode()
    assert client.get(f"/billing/checkout/fake/{top_up.pk}/").status_code == 200  # looking is fine

    assert list(TopUp.objects.values_list("status", flat=True)) == ["pending"]
    assert balance_get(tenant=tenant).available == 0
    assert not BillingCustomer.objects.exists()
    assert not AutoTopUpPolicy.objects.exists()
    assert not Subscription.objects.exists()


@pytest.mark.parametrize(
    "role", [Membership.Role.BILLING, Membership.Role.ADMIN, Membership.Role.OWNER]
)
def test_billing_roles_buy_pay_see_the_receipt_and_save_a_card(
    tenant: Tenant, pack: CreditPack, role: str
) -> None:
    client = login(tenant, role)
    page = client.get("/buy/").content.decode()
    assert _offered(page) == ["buy-pack-500"]
    assert '<p class="amount">65.00 USD</p>' in page
    assert (
        '<span data-testid="pack-credits">500</span> credits · '
        '<span data-testid="pack-per-1000">130.00 USD</span> per 1,000'
    ) in page

    bought = client.post("/buy/", {"pack": pack.slug})
    top_up = TopUp.objects.get()
    assert (bought.status_code, bought["Location"]) == (302, f"/billing/checkout/fake/{top_up.pk}/")
    paid = client.post(f"/billing/checkout/fake/{top_up.pk}/")
    assert (paid.status_code, paid["Location"]) == (302, f"/buy/?top_up={top_up.pk}")
    back = client.get(paid["Location"]).content.decode()
    assert "Payment received: 500 credits added." in back
    assert "Your purchase of 500 credits is paid and in your balance." in back
    assert f'href="/buy/receipts/{top_up.pk}/"' in back
    receipt = client.get(f"/buy/receipts/{top_up.pk}/", follow=True)
    assert receipt.redirect_chain == [(f"/billing/top-ups/{top_up.pk}/receipt/", 302)]
    number = f"CL-{tenant.pk}-{top_up.pk:06d}"
    assert f'data-testid="receipt-number">{number}<' in receipt.content.decode()

    setup = client.post("/payment-methods/")
    assert setup.status_code == 302
    assert setup["Location"].startswith("/billing/cards/fake-setup/?session=fcs_setup_")
    saved = client.post("/billing/cards/fake-setup/", {"card": "4242"})
    assert (saved.status_code, saved["Location"]) == (302, "/payment-methods/")
    cards = client.get("/payment-methods/").content.decode()
    assert 'data-testid="card-brand">Visa ending 4242<' in cards
    assert "pm_fake" not in cards
    assert _offered(cards) == ["replace-card", "remove-card"]

    assert balance_get(tenant=tenant).available == 500
    saved_card = BillingCustomer.objects.get()
    assert (saved_card.payment_method_id, saved_card.card_last4) == ("pm_fake_visa", "4242")


def test_auto_top_up_shows_its_cap_spending_and_attempts_and_a_card_in_use_is_kept(
    tenant: Tenant, pack: CreditPack
) -> None:
    client = login(tenant, Membership.Role.BILLING)
    form = {"enabled": "on", "threshold": "50", "pack": pack.slug, "monthly_cap": "200"}
    refused = client.post("/auto-top-up/", form, follow=True).content.decode()
    assert "Save a payment method before turning on auto top-up." in refused
    assert not AutoTopUpPolicy.objects.exists()

    grant(tenant, 100, "start")
    client.post("/payment-methods/")
    client.post("/billing/cards/fake-setup/", {"card": "4242"})
    saved = client.post("/auto-top-up/", form)
    assert (saved.status_code, saved["Location"]) == (302, "/auto-top-up/")
    ledger_debit(tenant=tenant, amount=Decimal(60), idempotency_key="d1")  # 40 left, under 50

    page = client.get("/auto-top-up/").content.decode()
    attempt = TopUp.objects.get(auto=True)
    assert attempt.status == "succeeded"
    assert 'data-testid="spent">65.00 USD spent of a 200.00 USD cap<' in page
    assert f'data-testid="attempt-{attempt.pk}"' in page
    assert '<label for="id_threshold">Top up when available credits fall below</label>' in page
    assert '<input type="checkbox" name="enabled" id="id_enabled" checked>' in page
    assert '<label for="id_enabled">Turn auto top-up on</label>' in page
    cards = client.get("/payment-methods/").content.decode()
    assert _offered(cards) == ["replace-card"]  # no Remove while auto top-up charges it
    assert 'data-testid="remove-blocked"' in cards
    assert balance_get(tenant=tenant).available == 540


def test_another_tenants_purchase_is_a_404_everywhere(
    tenant: Tenant, other_tenant: Tenant, pack: CreditPack
) -> None:
    client = login(tenant, Membership.Role.OWNER)
    theirs = topup_create(tenant=other_tenant, pack=pack)
    for response in (
        client.get(f"/buy/{theirs.pk}/pay/"),
        client.post(f"/buy/{theirs.pk}/cancel/"),
        client.get(f"/buy/receipts/{theirs.pk}/"),
        client.get(f"/billing/checkout/fake/{theirs.pk}/"),
        client.post(f"/billing/checkout/fake/{theirs.pk}/"),
        client.get(f"/billing/top-ups/{theirs.pk}/receipt/"),
    ):
        assert response.status_code == 404
    fake_checkout_confirm(top_up=theirs)
    assert client.get(f"/buy/receipts/{theirs.pk}/").status_code == 404
    assert client.get(f"/billing/top-ups/{theirs.pk}/receipt/").status_code == 404
    theirs.refresh_from_db()
    assert (theirs.status, balance_get(tenant=tenant).available) == ("succeeded", 0)


def test_the_old_billing_addresses_redirect_to_the_portal(tenant: Tenant, pack: CreditPack) -> None:
    client = login(tenant, Membership.Role.OWNER)
    for old, new in [
        ("/billing/", "/buy/"),
        ("/billing/?tenant=acme", "/buy/?tenant=acme"),
        ("/billing/auto-top-up/", "/auto-top-up/"),
        ("/billing/plan/", "/plan/"),
        ("/billing/top-ups/7/pay/", "/buy/7/pay/"),
    ]:
        moved = client.get(old)
        assert (moved.status_code, moved["Location"]) == (301, new), old
    posted = client.post("/billing/top-ups/", {"pack": pack.slug})
    assert (posted.status_code, posted["Location"]) == (308, "/buy/")
    assert client.post("/billing/plan/cancel/").status_code == 308
    assert not TopUp.objects.exists()  # the redirect itself does nothing


def test_billings_links_name_the_portals_pages() -> None:
    assert [resolve(path).view_name for path in (links.BUY, links.PAYMENT_METHODS)] == [
        "portal:buy",
        "portal:payment-methods",
    ]
    assert resolve(links.AUTO_TOP_UP).view_name == "portal:auto-top-up"
    assert resolve(links.PLAN).view_name == "portal:plan"
    assert resolve(links.receipt(3)).view_name == "portal:topup-receipt"
    assert resolve(links.top_up_pay(3)).view_name == "portal:topup-pay"
    assert resolve(links.top_up_cancel(3)).view_name == "portal:topup-cancel"
    assert links.TENANT_SESSION_KEY == SESSION_KEY


def test_the_money_pages_run_as_many_statements_with_many_purchases_as_with_one(
    tenant: Tenant, pack: CreditPack
) -> None:
    client = login(tenant, Membership.Role.OWNER)
    fake_checkout_confirm(top_up=topup_create(tenant=tenant, pack=pack))
    counts = {}
    for path in (*PAGES, "/"):
        with CaptureQueriesContext(connection) as one:
            assert client.get(path).status_code == 200
        counts[path] = len(one.captured_queries)
    for _ in range(30):
        fake_checkout_confirm(top_up=topup_create(tenant=tenant, pack=pack))
        topup_create(tenant=tenant, pack=pack)  # and as many left pending

    for path in (*PAGES, "/"):
        with CaptureQueriesContext(connection) as many:
            assert client.get(path).status_code == 200
        assert len(many.captured_queries) == counts[path], path
