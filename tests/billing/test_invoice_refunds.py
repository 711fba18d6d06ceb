"""A refunded subscription or contract invoice takes back what it paid for, as a refunded pack
does: the period's (or the tranche's) unspent credits leave the balance by a reversal naming
their grant, what was spent is recorded on the invoice; through Stripe's signed charge.refunded
(the charge found by its `invoice`, or by asking Stripe which invoice its payment paid), and
replayed without taking anything twice. A lost dispute of the invoice's payment
(charge.dispute.closed, found through Stripe the same way) takes back the whole the same way;
one won takes nothing. The billing contacts get the e-mail a refunded top-up sends."""

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail

from billing.models import ContractInvoice, Plan, StripeEvent, SubscriptionInvoice
from billing.services.contracts import contract_activate
from ledger.models import EntryKind, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_debit
from tenants.models import Tenant
from tenants.services import membership_add
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


def memos(tenant: Tenant) -> list[str]:
    return list(
        LedgerTransaction.objects.filter(tenant=tenant, kind=EntryKind.REVERSAL)
        .order_by("id")
        .values_list("memo", flat=True)
    )


def billing_contact(tenant: Tenant) -> None:
    """Someone who hears about the tenant's money (an owner with an address)."""
    user = User.objects.create_user("olive", email="olive@acme.test")
    membership_add(tenant=tenant, user=user, role="owner")


def mails() -> list[tuple[list[str], str, str]]:
    """The refund e-mails sent (the balance's alerts go to the same people)."""
    return [
        (m.to, str(m.subject), str(m.body))
        for m in mail.outbox
        if str(m.subject).endswith(" refunded")
    ]


def dispute(status: str, intent: str, amount: int) -> dict[str, Any]:
    return {
        "id": "dp_1",
        "object": "dispute",
        "amount": amount,
        "currency": "usd",
        "charge": "ch_inv",
        "payment_intent": intent,
        "status": status,
    }


def invoice_paid_by(stripe: RoutedStripe, invoice: str) -> None:
    """Stripe's answer to which invoice a payment paid."""
    stripe.answer(
        "GET",
        "/v1/invoice_payments",
        200,
        {
            "object": "list",
            "data": [{"id": "inpay_1", "object": "invoice_payment", "invoice": invoice}],
        },
    )


def test_a_refunded_subscription_invoice_takes_back_the_periods_unspent_credits(
    tenant: Tenant,
    team: Plan,  # noqa: F811
    stripe_billing: CannedHttpClient,  # noqa: F811
) -> None:
    billing_contact(tenant)
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
    assert memos(tenant) == ["Refunded: 39.50 USD.", "Refunded: 79.00 USD."]
    assert row.refund_reason == "refund"
    # The customer hears of each refund once, as of a refunded pack (replays send nothing).
    assert mails() == [
        (
            ["olive@acme.test"],
            "[Creditline] 39.50 USD refunded",
            "39.50 USD of your Team plan's invoice of 2026-01-31 went back to you (refunded); "
            "425 unspent credits it paid for were removed from your balance.",
        ),
        (
            ["olive@acme.test"],
            "[Creditline] 79.00 USD refunded",
            "79.00 USD of your Team plan's invoice of 2026-01-31 went back to you (refunded); "
            "750 unspent credits it paid for were removed from your balance.",
        ),
    ]
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


def test_a_lost_dispute_of_a_subscription_invoice_takes_back_the_periods_unspent_credits(
    tenant: Tenant,
    team: Plan,  # noqa: F811
    stripe_billing: CannedHttpClient,  # noqa: F811
    stripe_offline: RoutedStripe,
) -> None:
    billing_contact(tenant)
    sub = subscribe_unpaid(tenant, team, stripe_billing)
    paid = stripe_invoice(metadata={"subscription_id": str(sub.pk), "tenant_id": str(tenant.pk)})
    with time_machine.travel(NOW, tick=False):
        assert deliver("invoice.paid", paid, "evt_paid") == 200
        row = SubscriptionInvoice.objects.get(subscription=sub)
        ledger_debit(tenant=tenant, amount=D("100"), idempotency_key="usage:1")

        # Won: nothing moves, and Stripe is not even asked.
        assert deliver("charge.dispute.closed", dispute("won", "pi_sub", 7_900), "evt_d0") == 200
        assert balance_get(tenant=tenant).available == D("750")
        assert stripe_offline.sent == []
        # Lost: the whole invoice is gone; its 750 unspent credits leave, 100 were spent.
        invoice_paid_by(stripe_offline, "in_1")
        lost = dispute("lost", "pi_sub", 7_900)
        assert deliver("charge.dispute.closed", lost, "evt_d1") == 200
        assert deliver("charge.dispute.closed", lost, "evt_d1") == 200  # Stripe retries
        invoice_paid_by(stripe_offline, "in_1")
        assert deliver("charge.dispute.closed", lost, "evt_d2") == 200  # and duplicates

    row.refresh_from_db()
    assert (row.refunded_minor, row.credits_taken_back, row.credits_owed, row.refund_reason) == (
        7_900,
        D("750"),
        D("100"),
        "dispute_lost",
    )
    assert balance_get(tenant=tenant).available == D("0")
    assert reversals(tenant) == [D("-750")]
    assert memos(tenant) == ["Lost in a dispute: 79.00 USD."]
    assert StripeEvent.objects.get(event_id="evt_d0").error == (
        "The dispute closed won: nothing is taken back."
    )
    assert set(StripeEvent.objects.exclude(event_id="evt_d0").values_list("error", flat=True)) == {
        ""
    }
    asked = [s for s in stripe_offline.sent if s["path"] == "/v1/invoice_payments"]
    assert [a["query"]["payment[payment_intent]"] for a in asked] == [["pi_sub"], ["pi_sub"]]
    assert mails() == [
        (
            ["olive@acme.test"],
            "[Creditline] 79.00 USD refunded",
            "79.00 USD of your Team plan's invoice of 2026-01-31 went back to you (after a "
            "dispute); 750 unspent credits it paid for were removed from your balance.",
        )
    ]
    assert ledger_verify() == []


def test_a_lost_dispute_of_a_contract_invoice_takes_back_its_tranche(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    billing_contact(tenant)
    contract = make_contract(tenant)
    answer_issue(canned_stripe, tenant, next_row_id())
    with time_machine.travel(START, tick=False):
        contract_activate(contract=contract)
        row = ContractInvoice.objects.get(tenant=tenant)
        paid = contract_stripe_invoice(status="paid", row=row.pk, tenant=tenant, number="ACME-0001")
        assert deliver("invoice.paid", paid, "evt_paid") == 200
        ledger_debit(tenant=tenant, amount=D("250"), idempotency_key="usage:1")

        invoice_paid_by(canned_stripe, "in_contract_1")
        assert (
            deliver("charge.dispute.closed", dispute("lost", "pi_contract", 800), "evt_d1") == 200
        )

    row.refresh_from_db()
    assert (row.refunded_minor, row.credits_taken_back, row.credits_owed, row.refund_reason) == (
        800,
        D("750"),
        D("250"),
        "dispute_lost",
    )
    assert balance_get(tenant=tenant).available == D("0")
    assert reversals(tenant) == [D("-750")]
    assert mails() == [
        (
            ["olive@acme.test"],
            "[Creditline] 8.00 USD refunded",
            "8.00 USD of your contract Acme 2026's invoice ACME-0001 went back to you (after a "
            "dispute); 750 unspent credits it paid for were removed from your balance.",
        )
    ]
    assert set(StripeEvent.objects.values_list("error", flat=True)) == {""}
    assert ledger_verify() == []


def test_a_lost_dispute_of_an_unknown_payment_is_noted(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    canned_stripe.answer("GET", "/v1/invoice_payments", 200, {"object": "list", "data": []})

    assert deliver("charge.dispute.closed", dispute("lost", "pi_elsewhere", 100), "evt_d") == 200

    assert StripeEvent.objects.get(event_id="evt_d").error == "Not the payment of a top-up."
    assert mails() == []
