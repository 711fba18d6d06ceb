"""Buying a pack: a pending TopUp first, the gateway after commit, credits only once paid.

`topup_purchase` is the one way a customer buys a pack (the API and the portal call it);
`topup_complete` the one completion path: the Stripe webhook, an off-session charge that
succeeded at once and the fake gateway's confirm page all end here. A pending checkout ends
paid, failed, expired (the gateway's session ran out: its webhook, or `topups_expire_due`) or
cancelled by the customer (`topup_cancel`).
"""

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from billing import task_names
from billing.exceptions import (
    CurrencyNotOffered,
    GatewayError,
    TopUpIdempotencyConflict,
    TopUpNotPending,
)
from billing.gateways import Card, gateway_get
from billing.gateways.fake import FakeGateway
from billing.locks import policy_lock, topup_lock
from billing.models import AutoTopUpPolicy, BillingCustomer, CreditPack, TopUp
from billing.money import money_format
from billing.pack_selectors import pack_offer_get, pack_offer_of
from billing.selectors import billing_currency_get
from billing.services.notify import notify
from billing.services.tenant_billing import billing_currency_claim
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.services import ledger_grant
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

# Backoff after a failed auto top-up payment: 15 min, 30 min, then disabled at the third.
BACKOFF_BASE = timedelta(minutes=15)
MAX_CONSECUTIVE_FAILURES = 3
# How long a checkout session takes payment (Stripe accepts 30 minutes to 24 hours).
CHECKOUT_TTL = timedelta(hours=1)
# A checkout opened before top-ups recorded their expiry: Stripe's default session lifetime.
LEGACY_CHECKOUT_TTL = timedelta(hours=24)

logger = logging.getLogger(__name__)


def topup_create(
    *,
    tenant: Tenant,
    pack: CreditPack,
    auto: bool = False,
    gateway: str | None = None,
    request_key: str = "",
    request_fingerprint: str = "",
) -> TopUp:
    """A pending top-up with its own idempotency key; nothing is charged yet. One paid at a
    checkout page (not auto) takes payment until `expires_at`. It costs the pack's price in the
    tenant's billing currency (CurrencyNotOffered when the pack has none)."""
    offer = pack_offer_of(pack=pack, currency=billing_currency_get(tenant=tenant))
    # A first purchase fixes the tenant's currency (one currency per tenant).
    fixed = billing_currency_claim(tenant_id=tenant.pk, currency=offer.currency)
    if fixed != offer.currency:
        raise CurrencyNotOffered(
            f"Packs are sold in {fixed} to this tenant, not '{offer.currency}'.", field="currency"
        )
    now = timezone.now()
    return TopUp.objects.create(
        tenant=tenant,
        pack=pack,
        credits=pack.credits,
        amount_minor=offer.price_minor,
        currency=offer.currency,
        gateway=gateway_get(gateway).name,
        idempotency_key=f"topup_{uuid.uuid4().hex}",
        request_key=request_key,
        request_fingerprint=request_fingerprint,
        auto=auto,
        expires_at=None if auto else now + CHECKOUT_TTL,
        created_at=now,
    )


@dataclass(frozen=True)
class Purchase:
    top_up: TopUp
    created: bool  # False: an earlier request with the same Idempotency-Key made it


def topup_purchase(
    *,
    tenant: Tenant,
    pack_slug: str,
    return_url: str,
    currency: str | None = None,
    request_key: str = "",
) -> Purchase:
    """Buy a pack: a pending top-up and the gateway's checkout for it (runs outside any
    transaction; the gateway is called after the row is committed).

    The pack must have a price in the tenant's billing currency (`currency`, if given, must be
    it).
    With a `request_key` (the client's Idempotency-Key), the same key returns the same top-up
    and another request under it raises TopUpIdempotencyConflict. The checkout returns the
    customer to `return_url` (with `?top_up=<id>` once paid). A gateway error fails the top-up
    (nothing granted, nothing left pending) and is raised."""
    billing_currency = billing_currency_get(tenant=tenant)
    if currency is not None and currency.upper() != billing_currency:
        raise CurrencyNotOffered(
            f"Packs are sold in {billing_currency} to this tenant, not '{currency}'.",
            field="currency",
        )
    pack = pack_offer_get(slug=pack_slug, currency=billing_currency).pack
    fingerprint = hashlib.sha256(f"{pack.slug}\n{billing_currency}".encode()).hexdigest()
    if request_key:
        earlier = TopUp.objects.filter(tenant=tenant, request_key=request_key).first()
        if earlier is not None:
            return _replayed(earlier, fingerprint, return_url)
    try:
        with transaction.atomic():
            top_up = topup_create(
                tenant=tenant, pack=pack, request_key=request_key, request_fingerprint=fingerprint
            )
    except IntegrityError:
        # A concurrent request with the same key made it first.
        earlier = TopUp.objects.get(tenant=tenant, request_key=request_key)
        return _replayed(earlier, fingerprint, return_url)
    try:
        top_up = topup_checkout_start(
            top_up=top_up,
            success_url=f"{return_url}?top_up={top_up.pk}",
            cancel_url=return_url,
        )
    except GatewayError as exc:
        topup_fail(top_up=top_up, reason=exc.message)
        raise
    return Purchase(top_up=top_up, created=True)


def _replayed(top_up: TopUp, fingerprint: str, return_url: str) -> Purchase:
    if top_up.request_fingerprint != fingerprint:
        raise TopUpIdempotencyConflict(
            f"This Idempotency-Key was used for top-up {top_up.pk} ({top_up.pack.slug}, "
            f"{top_up.currency}) with another request.",
            top_up=top_up.pk,
        )
    if top_up.status == TopUp.Status.PENDING and not top_up.checkout_url:
        # The first request's checkout never came back (its process died, or it is still
        # waiting): the top-up's own gateway idempotency key makes asking again return the same
        # session, never a second one. A gateway error here leaves the top-up as it is.
        top_up = topup_checkout_start(
            top_up=top_up,
            success_url=f"{return_url}?top_up={top_up.pk}",
            cancel_url=return_url,
        )
    return Purchase(top_up=top_up, created=False)


def topup_checkout_start(*, top_up: TopUp, success_url: str, cancel_url: str) -> TopUp:
    """Open the gateway's checkout for a pending top-up (outside any transaction)."""
    if top_up.status != TopUp.Status.PENDING:
        raise TopUpNotPending(top_up=top_up.pk)
    session = gateway_get(top_up.gateway).checkout_create(
        top_up=top_up, success_url=success_url, cancel_url=cancel_url
    )
    expires_at = session.expires_at or top_up.expires_at
    TopUp.objects.filter(pk=top_up.pk).update(
        gateway_reference=session.reference, checkout_url=session.url, expires_at=expires_at
    )
    top_up.gateway_reference, top_up.checkout_url = session.reference, session.url
    top_up.expires_at = expires_at
    return top_up


def topup_cancel(*, top_up: TopUp) -> TopUp:
    """The customer gives up a pending checkout: the gateway's session is closed first (so it
    can no longer be paid; a GatewayError leaves the top-up pending), then the top-up ends."""
    if top_up.status != TopUp.Status.PENDING or top_up.auto:
        raise TopUpNotPending(top_up=top_up.pk)
    if top_up.gateway_reference:
        gateway_get(top_up.gateway).checkout_expire(
            reference=top_up.gateway_reference,
            idempotency_key=f"expire:{top_up.idempotency_key}",
        )
    return _topup_close(
        top_up, TopUp.Status.CANCELED, "Given up before payment: nothing was charged."
    )


def topup_expire(*, top_up: TopUp) -> TopUp:
    """The checkout session ran out unpaid (its webhook, or the sweep): nothing is granted."""
    return _topup_close(top_up, TopUp.Status.EXPIRED, "The checkout session expired unpaid.")


def _topup_close(top_up: TopUp, status: TopUp.Status, reason: str) -> TopUp:
    with transaction.atomic(durable=True):
        locked = topup_lock(tenant_id=top_up.tenant_id, top_up_id=top_up.pk)
        if locked.status != TopUp.Status.PENDING or locked.auto:
            return locked
        locked.status = status
        locked.failure_reason = reason
        locked.completed_at = timezone.now()
        locked.save(update_fields=["status", "failure_reason", "completed_at"])
    return locked


def topups_expire_due(*, now: datetime | None = None, limit: int = 500) -> int:
    """The sweep (beat): expire pending checkouts past their session's expiry (one opened
    before expiries were recorded: a day after it was made). Stripe also says so
    (checkout.session.expired); the fake gateway's sessions have only this."""
    now = now or timezone.now()
    past_expiry = Q(expires_at__lt=now) | Q(
        expires_at__isnull=True, created_at__lt=now - LEGACY_CHECKOUT_TTL
    )
    pending = TopUp.objects.filter(status=TopUp.Status.PENDING, auto=False)
    due = list(pending.filter(past_expiry)[:limit])
    for top_up in due:
        topup_expire(top_up=top_up)
    return len(due)


def topup_receipt_record(*, top_up: TopUp) -> TopUp:
    """Ask the gateway for a paid top-up's receipt and keep its address (outside any
    transaction). A gateway error leaves it blank: the portal's receipt link asks again."""
    if top_up.status != TopUp.Status.SUCCEEDED or top_up.receipt_url:
        return top_up
    try:
        url = gateway_get(top_up.gateway).receipt_url(top_up=top_up)
    except GatewayError:
        logger.warning("top-up %s: receipt unavailable", top_up.pk, exc_info=True)
        return top_up
    if url:
        TopUp.objects.filter(pk=top_up.pk).update(receipt_url=url)
        top_up.receipt_url = url
    return top_up


def topup_complete(*, top_up: TopUp, gateway_reference: str) -> TopUp:
    """The payment succeeded: grant the pack's credits, once, however often this is called."""
    with transaction.atomic(durable=True):
        account_lock(tenant_id=top_up.tenant_id)
        if top_up.auto:
            policy_lock(tenant_id=top_up.tenant_id)
        locked = topup_lock(tenant_id=top_up.tenant_id, top_up_id=top_up.pk)
        if locked.status == TopUp.Status.SUCCEEDED:
            return locked
        if locked.status == TopUp.Status.FAILED and locked.auto:
            # A failed auto top-up no longer counts against the monthly cap and may have been
            # replaced by another charge: granting it now could pay past the cap. Its payment
            # was cancelled when it failed; one that succeeded anyway is for a human (refund).
            logger.error(
                "auto top-up %s had failed but payment %s succeeded: not granted, needs review",
                locked.pk,
                gateway_reference,
            )
            return locked
        # A portal payment that failed and later succeeds (a second card in the same Checkout,
        # 3-D Secure) still pays for the credits: money received is what grants them.
        ledger_grant(
            tenant=locked.tenant,
            credits=locked.credits,
            policy=CreditBucket.Policy.PERMANENT,
            source=CreditBucket.Source.TOPUP,
            external_reference=f"topup:{locked.pk}",
            price_minor=locked.amount_minor,
            currency=locked.currency,
            source_type="billing.topup",
            source_id=str(locked.pk),
        )
        locked.status = TopUp.Status.SUCCEEDED
        locked.payment_reference = gateway_reference
        locked.gateway_reference = locked.gateway_reference or gateway_reference
        locked.failure_reason = ""
        locked.completed_at = timezone.now()
        locked.save(
            update_fields=[
                "status",
                "payment_reference",
                "gateway_reference",
                "failure_reason",
                "completed_at",
            ]
        )
        if locked.auto:
            AutoTopUpPolicy.objects.filter(tenant_id=locked.tenant_id).exclude(
                state=AutoTopUpPolicy.State.DISABLED
            ).update(consecutive_failures=0, backoff_until=None, state=AutoTopUpPolicy.State.ACTIVE)
        notify(
            tenant_id=locked.tenant_id,
            type="topup.succeeded",
            data=_topup_data(locked),
            subject=f"{locked.credits.normalize():f} credits added",
            body=(
                f"Your payment of {money_format(locked.amount_minor, locked.currency)} went "
                f"through and {locked.credits.normalize():f} credits were added to your balance."
            ),
        )
    return locked


def topup_fail(
    *, top_up: TopUp, reason: str, gateway_reference: str = "", action_url: str = ""
) -> TopUp:
    """The payment failed: the top-up ends, nothing is granted; an auto top-up backs off.

    With `action_url` the customer must act before another charge can succeed (the bank asks
    them to confirm: SCA): an auto top-up is turned off at once, and told where to go."""
    with transaction.atomic(durable=True):
        account_lock(tenant_id=top_up.tenant_id)
        policy = None
        if top_up.auto:
            policy = policy_lock(tenant_id=top_up.tenant_id)
        locked = topup_lock(tenant_id=top_up.tenant_id, top_up_id=top_up.pk)
        if locked.status != TopUp.Status.PENDING:
            return locked
        now = timezone.now()
        locked.status = TopUp.Status.FAILED
        locked.failure_reason = reason
        locked.gateway_reference = locked.gateway_reference or gateway_reference
        locked.completed_at = now
        locked.save(update_fields=["status", "failure_reason", "gateway_reference", "completed_at"])
        data = _topup_data(locked)
        if policy is not None:
            if action_url:
                _give_up(policy, reason, action_url)
            else:
                _back_off(policy, reason, now)
            data["auto_top_up"] = {
                "state": policy.state,
                "consecutive_failures": policy.consecutive_failures,
                "backoff_until": policy.backoff_until.isoformat() if policy.backoff_until else None,
                "disabled_reason": policy.disabled_reason,
            }
        if action_url:
            data["action_url"] = action_url
            reason = f"{reason} {_act_at(action_url)}"
        notify(
            tenant_id=locked.tenant_id,
            type="topup.failed",
            data=data,
            subject="A top-up payment failed",
            body=(
                f"Your payment of {money_format(locked.amount_minor, locked.currency)} "
                f"failed: {reason}"
            ),
        )
        # The watch level changes with the policy's state; recompute it.
        outbox_enqueue(task_names.BALANCE_EVALUATE, {"tenant_id": locked.tenant_id})
    return locked


def _act_at(action_url: str) -> str:
    return (
        f"Your bank asks you to confirm payments yourself: buy a pack at {action_url} (your bank "
        "will ask you there), then turn auto top-up on again."
    )


def _give_up(policy: AutoTopUpPolicy, reason: str, action_url: str) -> None:
    policy.consecutive_failures += 1
    policy.state = AutoTopUpPolicy.State.DISABLED
    policy.backoff_until = None
    policy.disabled_reason = f"{reason} {_act_at(action_url)}"
    policy.save(update_fields=["consecutive_failures", "state", "backoff_until", "disabled_reason"])


def _back_off(policy: AutoTopUpPolicy, reason: str, now: datetime) -> None:
    policy.consecutive_failures += 1
    if policy.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
        policy.state = AutoTopUpPolicy.State.DISABLED
        policy.backoff_until = None
        policy.disabled_reason = (
            f"{policy.consecutive_failures} payments failed in a row; the last: {reason}"
        )
    else:
        policy.state = AutoTopUpPolicy.State.BACKING_OFF
        policy.backoff_until = now + BACKOFF_BASE * 2 ** (policy.consecutive_failures - 1)
    policy.save(update_fields=["consecutive_failures", "state", "backoff_until", "disabled_reason"])


def _topup_data(top_up: TopUp) -> dict[str, object]:
    return {
        "top_up_id": top_up.pk,
        "pack": top_up.pack.slug,
        "credits": str(top_up.credits),
        "amount_minor": top_up.amount_minor,
        "currency": top_up.currency,
        "status": top_up.status,
        "auto": top_up.auto,
        "failure_reason": top_up.failure_reason,
    }


def fake_checkout_confirm(*, top_up: TopUp) -> TopUp:
    """The fake gateway's "Pay" button: the payment succeeds and completes like Stripe's."""
    if top_up.gateway != FakeGateway.name:
        raise TopUpNotPending("Only a fake-gateway top-up can be confirmed here.")
    open_until = top_up.expires_at
    if top_up.status == TopUp.Status.PENDING and open_until and open_until <= timezone.now():
        # As at Stripe, a session past its expiry takes no payment, swept or not.
        top_up = topup_expire(top_up=top_up)
    if top_up.status in (TopUp.Status.FAILED, TopUp.Status.EXPIRED, TopUp.Status.CANCELED):
        raise TopUpNotPending(top_up=top_up.pk)
    completed = topup_complete(
        top_up=top_up, gateway_reference=FakeGateway().confirm_reference(top_up=top_up)
    )
    return topup_receipt_record(top_up=completed)


def billing_customer_save(
    *,
    tenant: Tenant,
    gateway: str,
    customer_id: str,
    payment_method_id: str,
    card: Card | None = None,
) -> BillingCustomer:
    """Record the saved card and what the customer is shown of it (payment_methods.py reads
    the card from the gateway; tests and the demo seed call this directly)."""
    customer, _ = BillingCustomer.objects.update_or_create(
        tenant=tenant,
        defaults={
            "gateway": gateway,
            "customer_id": customer_id,
            "payment_method_id": payment_method_id,
            "card_brand": card.brand if card else "",
            "card_last4": card.last4 if card else "",
            "card_exp_month": card.exp_month if card else None,
            "card_exp_year": card.exp_year if card else None,
        },
    )
    return customer
