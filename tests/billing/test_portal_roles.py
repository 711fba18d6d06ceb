"""Portal roles: a plain `member` sees the billing pages but cannot spend money or save a card;
owners, admins and billing members can."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from billing.models import AutoTopUpPolicy, BillingCustomer, CreditPack, TopUp
from billing.services import topup_create
from ledger.selectors import BUCKETS_EMBEDDED, balance_get
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.ledger.helpers import seed_due_buckets

pytestmark = pytest.mark.django_db(transaction=True)


def login(tenant: Tenant, role: str) -> Client:
    user = User.objects.create_user(role, email=f"{role}@acme.test", password="pw-123456")
    membership_add(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_a_member_cannot_buy_pay_save_a_card_or_set_auto_top_up(
    tenant: Tenant, pack: CreditPack
) -> None:
    client = login(tenant, Membership.Role.MEMBER)
    top_up = topup_create(tenant=tenant, pack=pack)

    assert client.get("/billing/").status_code == 200  # looking is fine
    assert client.get("/billing/auto-top-up/").status_code == 200
    assert client.get(f"/billing/checkout/fake/{top_up.pk}/").status_code == 200
    assert client.post("/billing/top-ups/", {"pack": pack.slug}).status_code == 403
    assert client.post(f"/billing/checkout/fake/{top_up.pk}/").status_code == 403
    assert client.post("/billing/payment-method/").status_code == 403
    assert client.post("/billing/payment-method/remove/").status_code == 403
    assert client.post(f"/billing/top-ups/{top_up.pk}/cancel/").status_code == 403
    auto = {"enabled": "", "threshold": "100", "pack": pack.pk, "monthly_cap": "100"}
    assert client.post("/billing/auto-top-up/", auto).status_code == 403

    assert list(TopUp.objects.values_list("status", flat=True)) == ["pending"]
    assert balance_get(tenant=tenant).available == 0
    assert not BillingCustomer.objects.exists()
    assert not AutoTopUpPolicy.objects.exists()


@pytest.mark.parametrize("role", [Membership.Role.BILLING, Membership.Role.ADMIN])
def test_billing_roles_can_buy_and_pay(tenant: Tenant, pack: CreditPack, role: str) -> None:
    client = login(tenant, role)

    bought = client.post("/billing/top-ups/", {"pack": pack.slug})
    top_up = TopUp.objects.get()
    assert bought.status_code == 302
    assert bought["Location"] == f"/billing/checkout/fake/{top_up.pk}/"
    assert client.post(f"/billing/checkout/fake/{top_up.pk}/").status_code == 302
    setup = client.post("/billing/payment-method/")
    assert setup.status_code == 302
    assert setup["Location"].startswith("/billing/cards/fake-setup/?session=")
    assert client.post("/billing/cards/fake-setup/", {"card": "4242"}).status_code == 302

    assert balance_get(tenant=tenant).available == 500
    saved = BillingCustomer.objects.get()
    assert (saved.payment_method_id, saved.card_brand, saved.card_last4) == (
        "pm_fake_visa",
        "visa",
        "4242",
    )


def test_the_balance_page_lists_every_live_bucket_beyond_the_balances_first_page(
    tenant: Tenant,
) -> None:
    now = timezone.now()
    seed_due_buckets([tenant], BUCKETS_EMBEDDED + 5, granted=now, expires=now + timedelta(days=30))
    client = login(tenant, Membership.Role.MEMBER)

    page = client.get("/billing/").content.decode()

    assert page.count("<td>Monthly reset</td>") == BUCKETS_EMBEDDED + 5
