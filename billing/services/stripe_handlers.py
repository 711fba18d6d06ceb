"""Stripe events about top-ups and saved cards, registered by type (stripe_events.py).

Each is idempotent: completion, failure and expiry lock the top-up and do nothing once it has
ended; the grant is unique by external reference; saving the card already saved changes
nothing; a refund or a lost dispute takes back credits only for money not yet accounted for
on the top-up or the invoice it paid (billing/services/refunds.py, invoice_refunds.py). They
run in the processing task, outside any transaction, so the gateway calls they make (a
receipt, a card's details, which invoice a payment paid) hold no locks.
"""

from django.db.models import Q

from billing.gateways import gateway_get
from billing.gateways.stripe_gateway import StripeGateway
from billing.models import ContractInvoice, RefundReason, StripeEvent, SubscriptionInvoice, TopUp
from billing.money import money_format
from billing.services.invoice_refunds import invoice_take_back
from billing.services.payment_methods import payment_method_save
from billing.services.refunds import topup_take_back
from billing.services.stripe_events import stripe_handler
from billing.services.stripe_payloads import ObjectReader
from billing.services.topups import (
    topup_complete,
    topup_expire,
    topup_fail,
    topup_receipt_record,
)
from tenants.models import Tenant

NO_TOP_UP = "No top-up matches this event's metadata."
NOT_A_TOP_UP = "Not the payment of a top-up."


@stripe_handler("checkout.session.completed", "checkout.session.async_payment_succeeded")
def checkout_paid(obj: ObjectReader, event: StripeEvent) -> str:
    if obj.text("mode") == "setup":
        return "A card setup session: setup_intent.succeeded saves the card."
    if obj.text("payment_status") != "paid":
        return "Not paid yet; waiting for async_payment_succeeded."
    reference = obj.text("payment_intent") or obj.text("id", required=True)
    return _complete(obj, obj.amount("amount_total"), reference)


@stripe_handler("payment_intent.succeeded")
def payment_succeeded(obj: ObjectReader, event: StripeEvent) -> str:
    received = obj.amount("amount_received")
    amount = received if received is not None else obj.amount("amount")
    return _complete(obj, amount, obj.text("id", required=True))


@stripe_handler("payment_intent.payment_failed", "checkout.session.async_payment_failed")
def payment_failed(obj: ObjectReader, event: StripeEvent) -> str:
    top_up = _top_up_of(obj)
    if top_up is None:
        return NO_TOP_UP
    message = obj.mapping("last_payment_error").get("message")
    reason = message if isinstance(message, str) and message else "The payment failed."
    topup_fail(top_up=top_up, reason=reason, gateway_reference=obj.text("id") or "")
    return ""


@stripe_handler("checkout.session.expired")
def checkout_expired(obj: ObjectReader, event: StripeEvent) -> str:
    if obj.text("mode") == "setup":
        return ""
    top_up = _top_up_of(obj)
    if top_up is None:
        return NO_TOP_UP
    topup_expire(top_up=top_up)
    return ""


@stripe_handler("setup_intent.succeeded")
def card_set_up(obj: ObjectReader, event: StripeEvent) -> str:
    tenant_id = obj.metadata_id("tenant_id")
    tenant = Tenant.objects.filter(pk=tenant_id).first() if tenant_id is not None else None
    customer, payment_method = obj.text("customer"), obj.text("payment_method")
    if tenant is None or not customer or not payment_method:
        return "The setup intent names no tenant, customer or payment method."
    payment_method_save(
        tenant=tenant,
        gateway=StripeGateway.name,
        customer_id=customer,
        payment_method_id=payment_method,
    )
    return ""


@stripe_handler("charge.refunded")
def charge_refunded(obj: ObjectReader, event: StripeEvent) -> str:
    """A refund (ours from the admin, or the vendor's in Stripe's dashboard): the credits
    that the refunded share of the price bought leave the balance."""
    top_up = _top_up_of(obj) or _top_up_paid_by(obj.text("payment_intent"))
    if top_up is None:
        return _invoice_refunded(obj)
    refunded = obj.amount("amount_refunded")
    currency = (obj.text("currency") or "").upper()
    if refunded is None or currency != top_up.currency:
        return f"Refunded {refunded} {currency}: not in the top-up's currency {top_up.currency}."
    topup_take_back(top_up=top_up, refunded_minor=refunded, reason=RefundReason.REFUND)
    return ""


@stripe_handler("charge.dispute.closed")
def dispute_closed(obj: ObjectReader, event: StripeEvent) -> str:
    """A dispute the vendor lost: the money is gone, and the unspent credits it paid for with
    it: a pack's, or a subscription period's or contract tranche's (its invoice found as a
    refund's is: a dispute names its payment intent, never the invoice)."""
    status = obj.text("status", required=True)
    if status != "lost":
        return f"The dispute closed {status}: nothing is taken back."
    # What the dispute took: its `amount` (a dispute may be of part of a charge), in its
    # currency; the credits that share bought go, once per dispute (its id).
    disputed = obj.amount("amount")
    if disputed is None:
        return "The lost dispute names no amount: nothing is taken back."
    currency = (obj.text("currency") or "").upper()
    top_up = _top_up_paid_by(obj.text("payment_intent"))
    if top_up is None:
        return _invoice_disputed(obj, disputed, currency)
    if currency != top_up.currency:
        return f"Disputed {disputed} {currency}: not in the top-up's currency {top_up.currency}."
    topup_take_back(
        top_up=top_up,
        disputed_minor=disputed,
        reason=RefundReason.DISPUTE_LOST,
        refund_reference=obj.text("id", required=True) or "",
    )
    return ""


def _invoice_disputed(obj: ObjectReader, disputed: int, currency: str) -> str:
    invoice = _invoice_paid_by(_invoice_of(obj.text("payment_intent")))
    if invoice is None:
        return NOT_A_TOP_UP
    if currency != invoice.currency:
        return f"Disputed {disputed} {currency}: not in the invoice's currency {invoice.currency}."
    invoice_take_back(
        invoice=invoice,
        disputed_minor=disputed,
        reason=RefundReason.DISPUTE_LOST,
        refund_reference=obj.text("id", required=True) or "",
    )
    return ""


def _invoice_refunded(obj: ObjectReader) -> str:
    """The charge paid a subscription's or a contract's invoice (its `invoice`): the credits
    that the refunded share paid for leave the balance (billing/services/invoice_refunds.py)."""
    invoice = _invoice_paid_by(obj.text("invoice") or _invoice_of(obj.text("payment_intent")))
    if invoice is None:
        return NOT_A_TOP_UP
    refunded = obj.amount("amount_refunded")
    currency = (obj.text("currency") or "").upper()
    if refunded is None or currency != invoice.currency:
        return f"Refunded {refunded} {currency}: not in the invoice's currency {invoice.currency}."
    invoice_take_back(
        invoice=invoice, refunded_minor=refunded, refund_reference=obj.text("id") or ""
    )
    return ""


def _invoice_of(payment_intent: str | None) -> str | None:
    """The invoice a PaymentIntent paid, asked of Stripe (a Charge names its invoice only in API
    versions before 2025-03-31)."""
    gateway = gateway_get(StripeGateway.name)
    if not payment_intent or not isinstance(gateway, StripeGateway):
        return None
    return gateway.invoice_of_payment(payment_intent=payment_intent)


def _invoice_paid_by(reference: str | None) -> SubscriptionInvoice | ContractInvoice | None:
    """The Stripe invoice of a subscription or contract (not led by the tenant, as a top-up's
    refund: a charge names none, and refunds are rare)."""
    if not reference:
        return None
    return (
        SubscriptionInvoice.objects.filter(
            gateway=StripeGateway.name, gateway_reference=reference
        ).first()
        or ContractInvoice.objects.filter(
            gateway=StripeGateway.name, gateway_reference=reference
        ).first()
    )


def _top_up_paid_by(payment_intent: str | None) -> TopUp | None:
    """The Stripe top-up that this PaymentIntent paid (a checkout records it at completion; an
    auto top-up's charge is its reference). Not led by the tenant (a dispute names none):
    refunds and disputes are rare."""
    if not payment_intent:
        return None
    return (
        TopUp.objects.select_related("pack")
        .filter(gateway=StripeGateway.name)
        .filter(Q(payment_reference=payment_intent) | Q(gateway_reference=payment_intent))
        .first()
    )


def _top_up_of(obj: ObjectReader) -> TopUp | None:
    tenant_id, top_up_id = obj.metadata_id("tenant_id"), obj.metadata_id("top_up_id")
    if tenant_id is None or top_up_id is None:
        return None
    return TopUp.objects.select_related("pack").filter(tenant_id=tenant_id, pk=top_up_id).first()


def _complete(obj: ObjectReader, amount: int | None, reference: str | None) -> str:
    top_up = _top_up_of(obj)
    if top_up is None:
        return NO_TOP_UP
    currency = (obj.text("currency") or "").upper()
    if amount != top_up.amount_minor or currency != top_up.currency:
        # Never grant credits for a payment that is not the price of the pack.
        paid = money_format(amount, currency) if amount is not None else f"nothing in {currency}"
        return f"Paid {paid}, expected {money_format(top_up.amount_minor, top_up.currency)}."
    completed = topup_complete(top_up=top_up, gateway_reference=reference or "")
    topup_receipt_record(top_up=completed)
    return ""
