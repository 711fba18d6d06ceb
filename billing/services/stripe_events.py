"""Stripe's deliveries: verified, stored (one row per event id), then processed by a task that
hands each to the handler registered for its type (dj-stripe's pattern).

Adding a handler from another module is one decorator:

    from billing.services.stripe_events import stripe_handler

    @stripe_handler("invoice.paid", "invoice.payment_failed")
    def _invoice_paid(obj: ObjectReader, event: StripeEvent) -> str:
        ...  # return "" when applied, else a note for the admin

The module must be imported by `billing/services/__init__.py` (every billing service module
is), so the registry is complete wherever a service is importable. A type has one handler:
registering a second raises at import. Handlers are idempotent: a delivery may come twice, or
concurrently, or be retried by `stripe_events_retry` after a handler raised; they end in a
service that locks its row and does nothing the second time (topup_complete, a grant unique by
external reference). An event of a type nobody handles is stored and acknowledged, processed
with a note ("No handler ...").

`obj` reads `data.object` with typed accessors (stripe_payloads.ObjectReader); a field of the
wrong shape raises MalformedEvent, which records the event as malformed (never retried).
"""

import logging
from collections.abc import Callable
from datetime import timedelta

import stripe
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import task_names
from billing.exceptions import InvalidWebhookSignature
from billing.models import StripeEvent
from billing.services.stripe_payloads import (
    MALFORMED,
    MalformedEvent,
    ObjectReader,
    stripe_envelope_read,
)
from tenants.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

TOLERANCE_SECONDS = 300

StripeHandler = Callable[[ObjectReader, StripeEvent], str]
_HANDLERS: dict[str, StripeHandler] = {}


def stripe_handler(*event_types: str) -> Callable[[StripeHandler], StripeHandler]:
    """Register the decorated function as the handler of `event_types` (see the docstring)."""

    def register(handler: StripeHandler) -> StripeHandler:
        for event_type in event_types:
            existing = _HANDLERS.get(event_type)
            if existing is not None and existing is not handler:
                raise ValueError(
                    f"Stripe event type {event_type} already has a handler: "
                    f"{existing.__module__}.{existing.__qualname__}."
                )
            _HANDLERS[event_type] = handler
        return handler

    return register


def stripe_handler_get(event_type: str) -> StripeHandler | None:
    return _HANDLERS.get(event_type)


def stripe_handled_types() -> list[str]:
    """Every event type with a handler (the README lists those to enable at Stripe)."""
    return sorted(_HANDLERS)


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
        # Its own transaction, after the event's: the stored, unprocessed event is itself the
        # record that work is owed (billing.stripe_events_retry processes what this message
        # does not), so a crash between the two loses nothing. A redelivery enqueues again;
        # processing is idempotent (processed_at).
        outbox_enqueue(task_names.STRIPE_EVENT_PROCESS, {"event_pk": stored.pk})
    return stored, created


def stripe_event_process(*, event_pk: int) -> StripeEvent:
    event = StripeEvent.objects.get(pk=event_pk)
    if event.processed_at is not None:
        return event
    try:
        handler = stripe_handler_get(event.type)
        if handler is None:
            error = f"No handler for event type {event.type}; stored and acknowledged."
        else:
            error = handler(ObjectReader.of_event(event.payload), event)
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


def stripe_events_retry(*, older_than_seconds: int = 120) -> int:
    """Process again the stored events whose processing failed or never ran."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    pending = StripeEvent.objects.filter(processed_at__isnull=True, received_at__lt=cutoff)
    count = 0
    for pk in pending.values_list("pk", flat=True)[:500]:
        stripe_event_process(event_pk=pk)
        count += 1
    return count
