"""Contract invoices with the Stripe adapter's own code against canned Stripe responses (no
network), and Stripe's deliveries signed with the stripe package's own helper: the requests it
builds (send_invoice, days_until_due, one line, finalized; an idempotency key on each), the
invoice.paid handler that hands a contract's invoice over, and a delivery before its row."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from billing.models import Contract, ContractInvoice, StripeEvent
from billing.services.contract_invoices import contract_invoices_due
from billing.services.contracts import contract_activate
from billing.services.stripe_events import stripe_events_retry
from ledger.models import CreditBucket
from ledger.selectors import balance_get
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.billing.stripe_canned import RoutedStripe
from tests.billing.test_stripe_subscriptions import deliver

pytestmark = pytest.mark.django_db(transaction=True)

START = datetime(2026, 1, 31, 12, tzinfo=UTC)
DUE = int(datetime(2026, 3, 17, 12, tzinfo=UTC).timestamp())


def stripe_invoice(
    *, status: str = "open", row: int, tenant: Tenant, amount: int = 800, number: str | None = None
) -> dict[str, Any]:
    return {
        "id": "in_contract_1",
        "object": "invoice",
        "status": status,
        "number": number if status != "draft" else None,
        "collection_method": "send_invoice",
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "currency": "usd",
        "due_date": DUE,
        "hosted_invoice_url": "https://invoice.stripe.com/i/in_contract_1",
        "metadata": {
            "tenant_id": str(tenant.pk),
            "contract_id": "1",
            "contract_invoice_id": str(row),
        },
        "lines": {"object": "list", "data": []},
    }


def make_contract(tenant: Tenant) -> Contract:
    return Contract.objects.create(
        tenant=tenant,
        name="Acme 2026",
        price_per_1000_minor=800,
        committed_credits=Decimal("1000"),
        start_at=START,
        end_at=datetime(2027, 1, 31, 12, tzinfo=UTC),
        rate_card=ratecard_seed_example(),
        credits_on=Contract.CreditsOn.PAYMENT,
        net_terms_days=45,
    )


def answer_issue(http: RoutedStripe, tenant: Tenant, row: int) -> None:
    http.answer("POST", "/v1/customers", 200, {"id": "cus_1", "object": "customer"})
    http.answer("POST", "/v1/invoices", 200, stripe_invoice(status="draft", row=row, tenant=tenant))
    http.answer("POST", "/v1/invoiceitems", 200, {"id": "ii_1", "object": "invoiceitem"})
    http.answer(
        "POST",
        "/v1/invoices/in_contract_1/finalize",
        200,
        stripe_invoice(row=row, tenant=tenant, number="ACME-0001"),
    )


def next_row_id() -> int:
    last = ContractInvoice.objects.order_by("-pk").values_list("pk", flat=True).first()
    return (last or 0) + 1


def test_the_commitment_is_a_send_invoice_on_net_terms_and_paid_grants_once(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    contract = make_contract(tenant)
    answer_issue(canned_stripe, tenant, next_row_id())
    with time_machine.travel(START, tick=False):
        contract_activate(contract=contract)

    row = ContractInvoice.objects.get(tenant=tenant)
    assert (row.status, row.gateway, row.gateway_reference, row.number) == (
        "open",
        "stripe",
        "in_contract_1",
        "ACME-0001",
    )
    assert row.hosted_url == "https://invoice.stripe.com/i/in_contract_1"
    assert row.due_at == datetime(2026, 3, 17, 12, tzinfo=UTC)
    sent = {(s["method"], s["path"]): s for s in canned_stripe.sent}
    create = sent[("POST", "/v1/invoices")]
    assert create["form"]["collection_method"] == ["send_invoice"]
    assert create["form"]["days_until_due"] == ["45"]
    assert create["form"]["currency"] == ["usd"]
    assert create["form"]["metadata[contract_invoice_id]"] == [str(row.pk)]
    assert create["idempotency_key"] == f"{row.idempotency_key}:invoice"
    line = sent[("POST", "/v1/invoiceitems")]
    assert (line["form"]["amount"], line["form"]["invoice"]) == (["800"], ["in_contract_1"])
    assert line["idempotency_key"] == f"{row.idempotency_key}:line"
    finalize = sent[("POST", "/v1/invoices/in_contract_1/finalize")]
    assert finalize["form"]["auto_advance"] == ["true"]
    assert finalize["idempotency_key"] == f"{row.idempotency_key}:finalize"
    assert CreditBucket.objects.filter(tenant=tenant).count() == 0  # payment terms: not yet

    # invoice.paid, twice: the subscription handler hands it over; credits granted once.
    paid = stripe_invoice(status="paid", row=row.pk, tenant=tenant, number="ACME-0001")
    assert deliver("invoice.paid", paid, "evt_paid_1") == 200
    assert deliver("invoice.paid", paid, "evt_paid_1") == 200
    assert deliver("invoice.paid", paid, "evt_paid_2") == 200
    row.refresh_from_db()
    assert row.status == "paid"
    assert balance_get(tenant=tenant).available == Decimal("1000")
    assert list(
        CreditBucket.objects.filter(tenant=tenant).values_list("external_reference", "price_minor")
    ) == [(f"contract:{contract.pk}:0", 800)]
    assert set(StripeEvent.objects.values_list("error", flat=True)) == {""}


def test_a_stripe_refusal_grants_nothing_and_leaves_the_request_to_retry(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    canned_stripe.answer("POST", "/v1/customers", 200, {"id": "cus_1", "object": "customer"})
    canned_stripe.answer(
        "POST",
        "/v1/invoices",
        400,
        {"error": {"type": "invalid_request_error", "message": "Missing email for customer."}},
    )
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
    row = ContractInvoice.objects.get(tenant=tenant)
    assert (row.status, row.gateway_reference) == ("requested", "")
    assert row.error == "Missing email for customer."
    assert CreditBucket.objects.filter(tenant=tenant).count() == 0


def test_a_paid_event_before_its_row_is_retried_not_dropped(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    # Stripe's invoice.paid names a contract invoice of this tenant that is not recorded yet.
    row_id = next_row_id() + 5
    paid = stripe_invoice(status="paid", row=row_id, tenant=tenant, number="ACME-0009")
    assert deliver("invoice.paid", paid, "evt_early") == 200
    event = StripeEvent.objects.get(event_id="evt_early")
    assert event.processed_at is None
    assert event.error == f"InvoiceTooEarly: Contract invoice {row_id} is not recorded yet."
    StripeEvent.objects.filter(pk=event.pk).update(
        received_at=timezone.now() - timedelta(minutes=5)
    )
    assert stripe_events_retry() == 1
    assert StripeEvent.objects.get(pk=event.pk).processed_at is None  # retried, still waiting
    # A day on, it is noted and acknowledged; so is one naming a tenant that is not ours.
    StripeEvent.objects.filter(pk=event.pk).update(received_at=timezone.now() - timedelta(days=2))
    stripe_events_retry()
    event.refresh_from_db()
    assert (event.processed_at is not None, event.error) == (
        True,
        "No contract invoice of ours matches this event.",
    )


def test_a_paid_event_before_the_issue_call_answered_applies_to_its_row(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    # The issue call did not answer (a 500 may hide an invoice Stripe made): the row waits.
    canned_stripe.answer("POST", "/v1/customers", 200, {"id": "cus_1", "object": "customer"})
    canned_stripe.answer(
        "POST", "/v1/invoices", 500, {"error": {"type": "api_error", "message": "Try again."}}
    )
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
    row = ContractInvoice.objects.get(tenant=tenant)
    assert (row.status, row.gateway_reference) == ("requested", "")
    # Stripe had made it, and the customer paid: the event finds the row by its metadata.
    paid = stripe_invoice(status="paid", row=row.pk, tenant=tenant, number="ACME-0001")
    assert deliver("invoice.paid", paid, "evt_paid") == 200
    row.refresh_from_db()
    assert (row.status, row.gateway_reference, row.number) == ("paid", "in_contract_1", "ACME-0001")
    assert balance_get(tenant=tenant).available == Decimal("1000")


def test_past_stripe_s_key_window_a_retry_looks_the_invoice_up_and_voided_is_recorded(
    tenant: Tenant, canned_stripe: RoutedStripe
) -> None:
    canned_stripe.answer("POST", "/v1/customers", 200, {"id": "cus_1", "object": "customer"})
    canned_stripe.answer(
        "POST", "/v1/invoices", 500, {"error": {"type": "api_error", "message": "Try again."}}
    )
    with time_machine.travel(START, tick=False):
        contract_activate(contract=make_contract(tenant))
    row = ContractInvoice.objects.get(tenant=tenant)
    assert row.status == "requested"
    # Two days on, the key is forgotten at Stripe: the sweep searches by the row's metadata
    # and finds the invoice the unanswered request had made, instead of making another.
    found = stripe_invoice(row=row.pk, tenant=tenant, number="ACME-0002")
    canned_stripe.answer(
        "GET", "/v1/invoices/search", 200, {"object": "search_result", "data": [found]}
    )
    canned_stripe.sent.clear()
    with time_machine.travel(datetime(2026, 2, 2, 12, tzinfo=UTC), tick=False):
        assert contract_invoices_due()["issued"] == 1
    # (then the reconciliation asks about the open invoice; this canned Stripe has no answer)
    assert canned_stripe.paths() == [
        ("GET", "/v1/invoices/search"),
        ("GET", "/v1/invoices/in_contract_1"),
    ]
    assert canned_stripe.sent[0]["query"]["query"] == [
        f"metadata['contract_invoice_id']:'{row.pk}' AND metadata['tenant_id']:'{tenant.pk}'"
    ]
    row.refresh_from_db()
    assert (row.status, row.number) == ("open", "ACME-0002")

    voided = stripe_invoice(status="void", row=row.pk, tenant=tenant, number="ACME-0002")
    assert deliver("invoice.voided", voided, "evt_void") == 200
    row.refresh_from_db()
    assert row.status == "void"
    assert CreditBucket.objects.filter(tenant=tenant).count() == 0
