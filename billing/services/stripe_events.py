"""Stripe's deliveries: verified, stored (one row per event id), then processed by a task.

Processing is idempotent without holding the event row: every handler ends in topup_complete /
topup_fail, which lock the top-up and do nothing the second time, and the ledger grant is unique
by external reference. So a repeated or concurrent delivery grants once.
"""

import logging
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing.exceptions import InvalidWebhookSignature
from billing.models import StripeEvent, TopUp
from billing.money import money_format
from billing.services.stripe_payloads import (
    MALFORMED,
    MalformedEvent,
    ObjectReader,
    stripe_envelope_read,
)
from billing.services.topups import billing_customer_save, topup_complete, topup_fail
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300


def stripe_event_receive(*, payload: bytes, signature_header: str) -> tuple[StripeEvent, bool]:
    """Verify and store; returns the stored event and whether this delivery was its first.
    Raises InvalidWebhookSignature (nothing stored) for a forged, stale or tampered one.

    A signed body that is not a sound event is stored with its error, already processed (it
    will never become sound), and answered like any other (stripe_payloads)."""
    try:
        stripe.WebhookSignature.verify_header(
            payload, signature_header, settings.STRIPE_WEBHOOK_SECRET, tolerance=TOLERANCE_SECONDS
        )
    except stripe.SignatureVerificationError as exc:
        raise InvalidWebhookSignature(str(exc.user_message or exc)) from None
    except UnicodeDecodeError:
        # Stripe signs the body as UTF-8 text; other bytes cannot carry its signature.
        raise InvalidWebhookSignature(
            "The payload is not UTF-8 text, so its signature cannot be checked."
        ) from None
    envelope = stripe_envelope_read(payload)
    try:
        with transaction.atomic():
            stored = StripeEvent.objects.create(
                event_id=envelope.event_id,
                type=envelope.type,
                payload=envelope.payload,
                error=envelope.error,
                processed_at=timezone.now() if envelope.error else None,
            )
        created = True
    except IntegrityError:
        stored = StripeEvent.objects.get(event_id=envelope.event_id)
        created = False
    if stored.processed_at is None:
        from billing.tasks import stripe_event_process_task

        outbox_enqueue(stripe_event_process_task, {"event_pk": stored.pk})
    return stored, created


def stripe_event_process(*, event_pk: int) -> StripeEvent:
    event = StripeEvent.objects.get(pk=event_pk)
    if event.processed_at is not None:
        return event
    try:
        error = _handle(event.type, ObjectReader.of_event(event.payload))
    except MalformedEvent as exc:
        # The same bytes would fail the same way: recorded for the admin, not retried.
        error = MALFORMED + str(exc)
    except Exception as exc:
        # Kept for the admin and retried by the sweep; Stripe already has its 200.
        logger.exception("stripe event %s failed", event.event_id)
        StripeEvent.objects.filter(pk=event.pk).update(error=f"{type(exc).__name__}: {exc}")
        event.refresh_from_db()
        return event
    StripeEvent.objects.filter(pk=event.pk, processed_at__isnull=True).update(
        processed_at=timezone.now(), error=error
    )
    event.refresh_from_db()
    return event


def _handle(event_type: str, obj: ObjectReader) -> str:
    """Do what the event says; return a note for the admin when it could not apply."""
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        if obj.text("payment_status") != "paid":
            return "Not paid yet; waiting for async_payment_succeeded."
        reference = obj.text("payment_intent") or obj.text("id", required=True)
        return _complete(obj, obj.amount("amount_total"), reference)
    if event_type == "payment_intent.succeeded":
        received = obj.amount("amount_received")
        amount = received if received is not None else obj.amount("amount")
        return _complete(obj, amount, obj.text("id", required=True))
    if event_type in ("payment_intent.payment_failed", "checkout.session.async_payment_failed"):
        top_up = _top_up_of(obj)
        if top_up is None:
            return "No top-up matches this event's metadata."
        message = obj.mapping("last_payment_error").get("message")
        reason = message if isinstance(message, str) and message else "The payment failed."
        topup_fail(top_up=top_up, reason=reason, gateway_reference=obj.text("id") or "")
        return ""
    if event_type == "checkout.session.expired":
        top_up = _top_up_of(obj)
        if top_up is not None:
            topup_fail(top_up=top_up, reason="The checkout session expired unpaid.")
        return ""
    if event_type == "setup_intent.succeeded":
        return _save_card(obj)
    return f"Ignored event type {event_type}."


def _top_up_of(obj: ObjectReader) -> TopUp | None:
    tenant_id, top_up_id = obj.metadata_id("tenant_id"), obj.metadata_id("top_up_id")
    if tenant_id is None or top_up_id is None:
        return None
    return TopUp.objects.select_related("pack").filter(tenant_id=tenant_id, pk=top_up_id).first()


def _complete(obj: ObjectReader, amount: int | None, reference: str | None) -> str:
    top_up = _top_up_of(obj)
    if top_up is None:
        return "No top-up matches this event's metadata."
    currency = (obj.text("currency") or "").upper()
    if amount != top_up.amount_minor or currency != top_up.currency:
        # Never grant credits for a payment that is not the price of the pack.
        paid = money_format(amount, currency) if amount is not None else f"nothing in {currency}"
        return f"Paid {paid}, expected {money_format(top_up.amount_minor, top_up.currency)}."
    topup_complete(top_up=top_up, gateway_reference=reference or "")
    return ""


def _save_card(obj: ObjectReader) -> str:
    tenant_id = obj.metadata_id("tenant_id")
    tenant = Tenant.objects.filter(pk=tenant_id).first() if tenant_id is not None else None
    customer, payment_method = obj.text("customer"), obj.text("payment_method")
    if tenant is None or not customer or not payment_method:
        return "The setup intent names no tenant, customer or payment method."
    billing_customer_save(
        tenant=tenant, gateway="stripe", customer_id=customer, payment_method_id=payment_method
    )
    return ""


def stripe_events_retry(*, older_than_seconds: int = 120) -> int:
    """Process again the stored events whose processing failed or never ran."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
    count = 0
    for pk in pending.values_list("pk", flat=True)[:500]:
        stripe_event_process(event_pk=pk)
        count += 1
    return count
