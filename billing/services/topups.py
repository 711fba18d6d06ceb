"""Buying a pack: a pending TopUp first, the gateway after commit, credits only once paid.

`topup_complete` is the one completion path: the Stripe webhook, an off-session charge that
succeeded at once and the fake gateway's confirm page all end here.
"""

import logging
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from billing.exceptions import TopUpNotPending
from billing.gateways import gateway_get
from billing.gateways.fake import FakeGateway
from billing.locks import policy_lock, topup_lock
from billing.models import AutoTopUpPolicy, BillingCustomer, CreditPack, TopUp
from billing.money import money_format
from billing.services.notify import notify
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.services import ledger_grant
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

# Backoff after a failed auto top-up payment: 15 min, 30 min, then disabled at the third.
BACKOFF_BASE = timedelta(minutes=15)
MAX_CONSECUTIVE_FAILURES = 3

logger = logging.getLogger(__name__)


def topup_create(
    *, tenant: Tenant, pack: CreditPack, auto: bool = False, gateway: str | None = None
) -> TopUp:
    """A pending top-up with its own idempotency key; nothing is charged yet."""
    return TopUp.objects.create(
        tenant=tenant,
        pack=pack,
        credits=pack.credits,
        amount_minor=pack.price_minor,
        currency=pack.currency,
        gateway=gateway_get(gateway).name,
        idempotency_key=f"topup_{uuid.uuid4().hex}",
        auto=auto,
        created_at=timezone.now(),
    )


def topup_checkout_start(*, top_up: TopUp, success_url: str, cancel_url: str) -> TopUp:
    """Open the gateway's checkout for a pending top-up (outside any transaction)."""
    if top_up.status != TopUp.Status.PENDING:
        raise TopUpNotPending(top_up=top_up.pk)
    session = gateway_get(top_up.gateway).checkout_create(
        top_up=top_up, success_url=success_url, cancel_url=cancel_url
    )
    TopUp.objects.filter(pk=top_up.pk).update(
        gateway_reference=session.reference, checkout_url=session.url
    )
    top_up.gateway_reference, top_up.checkout_url = session.reference, session.url
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


def topup_fail(*, top_up: TopUp, reason: str, gateway_reference: str = "") -> TopUp:
    """The payment failed: the top-up ends, nothing is granted; an auto top-up backs off."""
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
            _back_off(policy, reason, now)
            data["auto_top_up"] = {
                "state": policy.state,
                "consecutive_failures": policy.consecutive_failures,
                "backoff_until": policy.backoff_until.isoformat() if policy.backoff_until else None,
            }
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
        from billing.tasks import balance_evaluate_task

        # The watch level changes with the policy's state; recompute it.
        outbox_enqueue(balance_evaluate_task, {"tenant_id": locked.tenant_id})
    return locked


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
    if top_up.status == TopUp.Status.FAILED:
        raise TopUpNotPending(top_up=top_up.pk)
    return topup_complete(
        top_up=top_up, gateway_reference=FakeGateway().confirm_reference(top_up=top_up)
    )


def billing_customer_save(
    *, tenant: Tenant, gateway: str, customer_id: str, payment_method_id: str
) -> BillingCustomer:
    """Record the saved card (after a SetupIntent succeeded, or the fake one)."""
    customer, _ = BillingCustomer.objects.update_or_create(
        tenant=tenant,
        defaults={
            "gateway": gateway,
            "customer_id": customer_id,
            "payment_method_id": payment_method_id,
        },
    )
    return customer
