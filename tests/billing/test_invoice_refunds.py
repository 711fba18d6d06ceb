"""A refunded subscription or contract invoice takes back what it paid for, as a refunded pack
does: the period's (or the tranche's) unspent credits leave the balance by a reversal naming
their grant, what was spent is recorded on the invoice; through Stripe's signed charge.refunded
(the charge found by its `invoice`, or by asking Stripe which invoice its payment paid), and
replayed without taking anything twice."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine

from billing.models import ContractInvoice, Plan, StripeEvent, SubscriptionInvoice
from billing.services.contracts import contract_activate
from ledger.models import EntryKind, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_debit
from tenants.models import Tenant
from tests.billing.stripe_canned import RoutedStripe
from tests.billing.test_stripe_contract_invoices import (
    START,
    answer_issue,
    make_contract,
    next_row_id,
)
from tests.billing.test_stripe_contract_invoices import stripe_invoice as contract_stripe_invoice
from tests.billing.test_stripe_gateway import CannedHttpClient
from tests.billing.test_stripe_subscriptions import (  # noqa: F401 (fixtures)
    NOW,
    deliver,
    stripe_billing,
    stripe_invoice,
    subscribe_unpaid,
    team,
)

pytestmark = pytest.mark.django_db(transaction=True)
D = Decimal


def charge(
    *, refunded: int, amount: int, invoice: str | None, intent: str = "pi_inv"
) -> dict[str, Any]:
    made: dict[str, Any] = {
        "id": "ch_inv",
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "currency": "usd",
        "payment_intent": intent,
        "refunded": refunded == amount,
    }
    if invoice is not None:
        made["invoice"] = invoice  # API versions before 2025-03-31 name it
    return made


def reversals(tenant: Tenant) -> list[Decimal]:
    return list(
        LedgerTransaction.objects.filter(tenant=tenant, kind=EntryKind.REVERSAL)
        .order_by("id")
        .values_list("amount", flat=True)
    )


def test_a_refunded_subscription_invoice_takes_back_the_periods_unspent_credits(
    tenant: Tenant,
    team: Plan,  # noqa: F811
    stripe_billing: CannedHttpClient,  # noqa: F811
) -> None:
    sub = subscribe_unpaid(tenant, team, stripe_billing)
    paid = stripe_invoice(metadata={"subscription_id": str(sub.pk), "tenant_id": str(tenant.pk)})
    with time_machine.travel(NOW, tick=False):
        assert deliver("invoice.paid", paid, "evt_paid") == 200
        row = SubscriptionInvoice.objects.get(subscription=sub)
        assert (row.status, row.credits, row.amount_minor) == ("paid", D("850"), 7_900)
        ledger_debit(tenant=tenant, amount=D("100"), idempotency_key="usage:1")

        # Half the invoice back: half its credits (425) leave; all of them were unspent.
        half = charge(refunded=3_950, amount=7_900, invoice="in_1")
        assert deliver("charge.refunded", half, "evt_r1") == 200
        assert balance_get(tenant=tenant).available == D("325")
        # The rest back: 425 more are due, 325 are left, 100 were spent.
        whole = charge(refunded=7_900, amount=7_900, invoice="in_1")
        assert deliver("charge.refunded", whole, "evt_r2") == 200
        assert deliver("charge.refunded", whole, "evt_r2") == 200  # Stripe retries
        assert deliver("charge.refunded", whole, "evt_r3") == 200  # and duplicates

    row.refresh_from_db()
    assert (row.refunded_minor, row.credits_taken_back, row.credits_owed) == (
        7_900,
        D("750"),
        D("100"),
    )
    assert balance_get(tenant=tenant).available == D("0")
    assert reversals(tenant) == [D("-425"), D("-325")]
    assert set(StripeEvent.objects.values_list("error", flat=True)) == {""}
    assert ledger_verify() == []


def test_a_refunded_contract_invoice_takes_back_its_tranche_found_through_stripe(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    contract = make_contract(tenant)
    answer_issue(canned_stripe, tenant, next_row_id())
    with time_machine.travel(START, tick=False):
        contract_activate(contract=contract)
        row = ContractInvoice.objects.get(tenant=tenant)
        paid = contract_stripe_invoice(status="paid", row=row.pk, tenant=tenant, number="ACME-0001")
        assert deliver("invoice.paid", paid, "evt_paid") == 200
        assert balance_get(tenant=tenant).available == D("1000")
        ledger_debit(tenant=tenant, amount=D("250"), idempotency_key="usage:1")

        # The charge names no invoice (today's API): Stripe says which invoice it paid.
        canned_stripe.answer(
            "GET",
            "/v1/invoice_payments",
            200,
            {
                "object": "list",
                "data": [
                    {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_contract_1"}
                ],
            },
        )
        refunded = charge(refunded=800, amount=800, invoice=None, intent="pi_contract")
        assert deliver("charge.refunded", refunded, "evt_r1") == 200
        assert deliver("charge.refunded", refunded, "evt_r2") == 200

    row.refresh_from_db()
    assert (row.refunded_minor, row.credits_taken_back, row.credits_owed) == (
        800,
        D("750"),
        D("250"),
    )
    assert balance_get(tenant=tenant).available == D("0")
    assert reversals(tenant) == [D("-750")]
    asked = [s for s in canned_stripe.sent if s["path"] == "/v1/invoice_payments"]
    assert asked[0]["query"]["payment[payment_intent]"] == ["pi_contract"]
    assert set(StripeEvent.objects.values_list("error", flat=True)) == {""}
    assert ledger_verify() == []
