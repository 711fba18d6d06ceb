"""Stripe events about subscriptions, registered by type (stripe_events.py's registry).

Each ends in subscription_invoice_apply or subscription_state_apply, which lock the
subscription and do nothing the second time (an invoice row's status, the ledger's unique
reference), so a repeated or concurrent delivery grants once. An invoice that names one of our
subscriptions before its row has the gateway's reference (a webhook overtaking the answer of
the call that made it) raises InvoiceTooEarly: the event stays unprocessed and
`stripe_events_retry` applies it later; nothing is dropped.

An invoice whose metadata names a contract invoice (`contract_invoice_id`) is a contract's:
handed to contract_invoices.contract_invoice_event, which applies it to that row.

Enable at Stripe (README, "Stripe set-up"): invoice.paid, invoice.payment_failed,
invoice.voided, invoice.marked_uncollectible, customer.subscription.updated,
customer.subscription.deleted.
"""

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from billing.gateways.stripe_contracts import INVOICE_ID_KEY as CONTRACT_INVOICE_KEY
from billing.gateways.stripe_subscriptions import stripe_invoice_read
from billing.models import StripeEvent, Subscription
from billing.services.contract_invoices import contract_invoice_event
from billing.services.stripe_events import stripe_handler
from billing.services.stripe_payloads import MalformedEvent, ObjectReader
from billing.services.subscription_invoices import (
    InvoiceTooEarly,
    subscription_invoice_apply,
    subscription_state_apply,
)

NOT_OURS = "No subscription of ours matches this event."


def _ours(reference: str, metadata: Mapping[str, Any]) -> Subscription | None:
    """Our subscription with the gateway reference; InvoiceTooEarly when the metadata names
    one of ours that does not carry the reference yet."""
    if reference:
        found = Subscription.objects.filter(gateway="stripe", gateway_reference=reference).first()
        if found is not None:
            return found
    sub_id = metadata.get("subscription_id")
    known = isinstance(sub_id, str) and sub_id.isdigit() and sub_id.isascii()
    if known and Subscription.objects.filter(pk=int(str(sub_id)), gateway="stripe").exists():
        raise InvoiceTooEarly(f"Subscription {sub_id} has no gateway reference yet.")
    return None


def _invoice_metadata(obj: ObjectReader) -> Mapping[str, Any]:
    details = obj.mapping("parent").get("subscription_details")
    metadata = details.get("metadata") if isinstance(details, dict) else None
    return metadata if isinstance(metadata, dict) else {}


@stripe_handler(
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.voided",
    "invoice.marked_uncollectible",
)
def subscription_invoice_event(obj: ObjectReader, event: StripeEvent) -> str:
    if obj.metadata_id(CONTRACT_INVOICE_KEY) is not None:
        # A contract's invoice (Stripe Invoicing, not a subscription): one handler per type, so
        # this one hands it over (contract_invoices.py).
        return contract_invoice_event(obj, event)
    try:
        invoice = stripe_invoice_read(obj.obj)
    except ValueError as exc:
        raise MalformedEvent(f"data.object: {exc}") from None
    if not invoice.subscription_reference:
        return "Not a subscription invoice."
    if event.type == "invoice.payment_failed" and invoice.status == "open":
        invoice = replace(invoice, failed=True)
    sub = _ours(invoice.subscription_reference, _invoice_metadata(obj))
    if sub is None:
        return NOT_OURS
    subscription_invoice_apply(subscription_id=sub.pk, tenant_id=sub.tenant_id, invoice=invoice)
    return ""


@stripe_handler("customer.subscription.updated", "customer.subscription.deleted")
def subscription_status_event(obj: ObjectReader, event: StripeEvent) -> str:
    reference = obj.text("id", required=True) or ""
    status = obj.text("status", required=True) or ""
    sub = _ours(reference, obj.mapping("metadata"))
    if sub is None:
        return NOT_OURS
    subscription_state_apply(subscription_id=sub.pk, tenant_id=sub.tenant_id, status=status)
    return ""
