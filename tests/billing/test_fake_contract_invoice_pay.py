"""The fake gateway's contract invoice page pays an open invoice ("Pay"), as a customer pays
Stripe's hosted invoice: the invoice is paid and a contract whose credits come on payment
grants its tranche, once; a member without a billing role may read the page but not pay."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core.cache import cache
from django.test import Client

from billing.models import Contract, ContractInvoice
from billing.services.contracts import contract_activate
from ledger.selectors import balance_get
from tenants.models import Membership, Tenant
from tenants.services import membership_add
from tests.billing.test_contract_invoices import START, make_contract

pytestmark = pytest.mark.django_db(transaction=True)
PAID_AT = datetime(2026, 2, 3, 9, tzinfo=UTC)


def browser(tenant: Tenant, role: str) -> Client:
    user = User.objects.create_user(f"{role}-user", password="pw-123456")
    membership_add(tenant=tenant, user=user, role=role)
    client = Client()
    client.force_login(user)
    return client


def test_pay_on_the_fake_invoice_page_pays_it_and_grants_the_tranche_once(
    tenant: Tenant,
) -> None:
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant, credits_on=Contract.CreditsOn.PAYMENT))
    invoice = ContractInvoice.objects.get(tenant=tenant)
    url = f"/billing/contract-invoices/{invoice.pk}/"
    member, owner = browser(tenant, Membership.Role.MEMBER), browser(tenant, Membership.Role.OWNER)
    assert 'data-testid="pay"' in owner.get(url).content.decode()
    assert balance_get(tenant=tenant).available == Decimal("0")

    assert member.post(url).status_code == 403
    with time_machine.travel(PAID_AT, tick=False):
        paid = owner.post(url, follow=True)
        again = owner.post(url)

    assert paid.status_code == 200
    html = paid.content.decode()
    assert f"Invoice {invoice.number} paid." in html
    assert "Paid on 2026-02-03 09:00 UTC" in html
    assert 'data-testid="pay"' not in html
    assert again.status_code == 302
    invoice.refresh_from_db()
    assert (invoice.status, invoice.paid_at) == ("paid", PAID_AT)
    assert balance_get(tenant=tenant).available == Decimal("1000")


def test_pay_on_an_invoice_the_fake_gateway_lost_says_so_and_grants_nothing(
    tenant: Tenant,
) -> None:
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant, credits_on=Contract.CreditsOn.PAYMENT))
    invoice = ContractInvoice.objects.get(tenant=tenant)
    cache.clear()  # the fake keeps its invoices in the cache: emptied, it knows none
    url = f"/billing/contract-invoices/{invoice.pk}/"

    refused = browser(tenant, Membership.Role.OWNER).post(url, follow=True)

    assert refused.redirect_chain == [(url, 302)]
    assert "The payment gateway could not be reached; nothing was charged." in (
        refused.content.decode()
    )
    invoice.refresh_from_db()
    assert invoice.status == "open"
    assert balance_get(tenant=tenant).available == Decimal("0")
