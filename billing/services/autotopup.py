"""Auto top-up: when the available balance falls under the tenant's threshold, buy its pack with
the saved card, one at a time, never past the monthly spending cap.

The start decision is taken under the tenant's account lock (so the balance, the month's spend
and the in-flight check agree), the pending TopUp row is the committed intent, and the charge
runs after commit with the TopUp's idempotency key. A partial unique index (one pending auto
top-up per tenant) is the guarantee; the lock only keeps the common case quiet.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from billing import links, task_names
from billing.exceptions import CurrencyNotOffered, GatewayError, NoPaymentMethod, PackNotFound
from billing.gateways import gateway_get
from billing.locks import policy_lock
from billing.models import AutoTopUpPolicy, CreditPack, TopUp
from billing.money import money_format
from billing.pack_selectors import PackOffer, auto_topup_spent_in, pack_offer_of, pack_price_get
from billing.selectors import (
    billing_currency_get,
    billing_customer_get,
    month_start,
    spending_cap_minor,
    subscription_renewal_pending,
)
from billing.services.notify import notify
from billing.services.topups import (
    topup_complete,
    topup_create,
    topup_fail,
    topup_receipt_record,
)
from ledger.locks import account_lock
from ledger.selectors import available_get
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue, task_by_name

# A pending auto top-up older than this is looked at again: charged again when the charge call
# never returned (same idempotency key, so the gateway returns the original payment rather than
# making a second one), or its payment asked for when the gateway had answered.
STALE_PENDING = timedelta(minutes=5)

logger = logging.getLogger(__name__)


def portal_url(path: str) -> str:
    return settings.CREDITLINE_PUBLIC_URL.rstrip("/") + path


@dataclass(frozen=True)
class StartOutcome:
    top_up: TopUp | None
    reason: str  # "started", or why not


def auto_topup_policy_update(
    *,
    tenant: Tenant,
    enabled: bool,
    threshold: Decimal,
    pack: CreditPack,
    monthly_cap_minor: int,
) -> AutoTopUpPolicy:
    """Change the settings; saving them (re-)enables a policy that failures disabled. The pack
    must be sold in the tenant's billing currency (the cap is money in that currency)."""
    currency = billing_currency_get(tenant=tenant)
    if pack_price_get(pack=pack, currency=currency) is None:
        raise PackNotFound(
            f"No active credit pack in {currency} has the slug '{pack.slug}'.",
            pack=pack.slug,
            field="pack",
        )
    if enabled and billing_customer_get(tenant_id=tenant.pk) is None:
        raise NoPaymentMethod()
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant.pk)
        policy = policy_lock(tenant_id=tenant.pk)
        if policy is None:
            policy = AutoTopUpPolicy(tenant=tenant)
        policy.enabled = enabled
        policy.threshold = threshold
        policy.pack = pack
        policy.monthly_cap_minor = monthly_cap_minor
        # New settings deserve a fresh look at the cap (and a fresh alert if still capped).
        policy.capped_month = ""
        if enabled and policy.state == AutoTopUpPolicy.State.DISABLED:
            policy.state = AutoTopUpPolicy.State.ACTIVE
            policy.consecutive_failures = 0
            policy.disabled_reason = ""
            policy.backoff_until = None
        policy.save()
        outbox_enqueue(task_names.BALANCE_EVALUATE, {"tenant_id": tenant.pk})
    return policy


def auto_topup_start(*, tenant: Tenant, now: datetime | None = None) -> StartOutcome:
    """Start one auto top-up if the balance is under the threshold and the rules allow it."""
    now = now or timezone.now()
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant.pk)
        policy = policy_lock(tenant_id=tenant.pk)
        refused = auto_topup_refusal(policy, now)
        if refused or policy is None:
            return StartOutcome(None, refused or "no_policy")
        available = available_get(tenant=tenant, at=now)
        if available >= policy.threshold:
            return StartOutcome(None, "above_threshold")
        if subscription_renewal_pending(tenant_id=tenant.pk, at=now):
            # The new period's credits are about to arrive: no pack bought meanwhile.
            return StartOutcome(None, "renewal_pending")
        if billing_customer_get(tenant_id=tenant.pk) is None:
            return _refuse(policy, "no_payment_method", "No payment method is saved.")
        try:
            offer = pack_offer_of(pack=policy.pack, currency=billing_currency_get(tenant=tenant))
        except CurrencyNotOffered as exc:
            # The tenant bills in another currency since it chose the pack: never charge it
            # in a currency it does not pay in; it chooses a pack again.
            return _refuse(policy, "currency", f"{exc.message} Choose another pack.")
        cap = spending_cap_minor(policy=policy, at=now)
        spent = auto_topup_spent_in(
            tenant_id=tenant.pk, since=month_start(now), currency=offer.currency
        )
        if spent + offer.price_minor > cap:
            return _capped(policy, offer, now=now, spent=spent, cap=cap, available=available)
        try:
            with transaction.atomic():
                top_up = topup_create(tenant=tenant, pack=policy.pack, auto=True)
        except IntegrityError:
            return StartOutcome(None, "in_flight")
        if policy.last_refusal:
            policy.last_refusal = ""
            policy.save(update_fields=["last_refusal"])
        outbox_enqueue(task_names.AUTO_TOPUP_CHARGE, {"top_up_id": top_up.pk})
    return StartOutcome(top_up, "started")


def auto_topup_refusal(policy: AutoTopUpPolicy | None, now: datetime) -> str:
    """Why the policy cannot start a top-up now ("" when it can)."""
    if policy is None:
        return "no_policy"
    if not policy.enabled:
        return "disabled"
    if policy.state == AutoTopUpPolicy.State.DISABLED:
        return "disabled_after_failures"
    if policy.backoff_until is not None and now < policy.backoff_until:
        return "backing_off"
    return ""


def _refuse(policy: AutoTopUpPolicy, code: str, reason: str) -> StartOutcome:
    if policy.last_refusal != reason:
        policy.last_refusal = reason
        policy.save(update_fields=["last_refusal"])
    return StartOutcome(None, code)


def _capped(
    policy: AutoTopUpPolicy,
    pack: PackOffer,
    *,
    now: datetime,
    spent: int,
    cap: int,
    available: Decimal,
) -> StartOutcome:
    reason = (
        f"Buying the {pack.name} pack ({money_format(pack.price_minor, pack.currency)}) would "
        f"bring this month's auto top-ups to "
        f"{money_format(spent + pack.price_minor, pack.currency)}, over the monthly cap of "
        f"{money_format(cap, pack.currency)}."
    )
    outcome = _refuse(policy, "capped", reason)
    month = now.strftime("%Y-%m")
    if policy.capped_month != month:
        # Once a month: every debit under the threshold would otherwise say it again.
        policy.capped_month = month
        policy.save(update_fields=["capped_month"])
        notify(
            tenant_id=policy.tenant_id,
            type="auto_topup.capped",
            data={
                "reason": reason,
                "month": month,
                "spent_minor": spent,
                "cap_minor": cap,
                "pack": pack.slug,
                "pack_price_minor": pack.price_minor,
                "currency": pack.currency,
                "available": str(available),
            },
            subject="Auto top-up reached its monthly cap",
            body=reason + " Raise the cap or buy a pack by hand to keep going.",
        )
    return outcome


def auto_topup_charge(*, top_up_id: int) -> TopUp:
    """Charge the saved card for a pending auto top-up (runs outside any transaction)."""
    top_up = TopUp.objects.select_related("pack", "tenant").get(pk=top_up_id)
    if top_up.status != TopUp.Status.PENDING:
        return top_up
    customer = billing_customer_get(tenant_id=top_up.tenant_id)
    if customer is None or not customer.payment_method_id:
        return topup_fail(top_up=top_up, reason=NoPaymentMethod.message)
    charge = gateway_get(top_up.gateway).charge_off_session(
        top_up=top_up,
        customer_id=customer.customer_id,
        payment_method_id=customer.payment_method_id,
    )
    if charge.status == "succeeded":
        completed = topup_complete(top_up=top_up, gateway_reference=charge.reference)
        return topup_receipt_record(top_up=completed)
    if charge.status == "failed":
        return topup_fail(
            top_up=top_up,
            reason=charge.failure_reason,
            gateway_reference=charge.reference,
            # Off-session, the customer cannot confirm: they buy on the portal instead.
            action_url=portal_url(links.BUY) if charge.needs_authentication else "",
        )
    # Processing: the gateway's webhook finishes it.
    if charge.reference and not top_up.gateway_reference:
        TopUp.objects.filter(pk=top_up.pk).update(gateway_reference=charge.reference)
    return top_up


def auto_topup_reconcile(*, top_up_id: int) -> TopUp:
    """A stale pending auto top-up whose charge the gateway answered: ask the gateway where the
    payment stands and finish the top-up accordingly (runs outside any transaction)."""
    top_up = TopUp.objects.select_related("pack", "tenant").get(pk=top_up_id)
    if top_up.status != TopUp.Status.PENDING or not top_up.gateway_reference:
        return top_up
    try:
        payment = gateway_get(top_up.gateway).payment_status(reference=top_up.gateway_reference)
    except GatewayError:
        logger.warning("auto top-up %s: payment status unavailable", top_up.pk, exc_info=True)
        return top_up  # the next sweep asks again
    if payment.status == "succeeded":
        return topup_complete(top_up=top_up, gateway_reference=payment.reference)
    if payment.status == "processing":
        return top_up  # still clearing: the webhook (or a later sweep) finishes it
    if payment.status == "requires_capture":
        # Charges are created with automatic capture, so an authorization waiting for a manual
        # capture is not a payment we will ever collect: it counts as a failure.
        reason = "The payment was authorized but never captured."
    else:
        reason = payment.failure_reason or f"The payment did not complete ({payment.status})."
    if payment.status != "canceled":
        # Failing the top-up frees the monthly cap for another charge; a PaymentIntent left
        # open could still be captured or confirmed later and pay past the cap, so it is
        # cancelled first. If the gateway refuses (it just succeeded), the next sweep asks again.
        try:
            gateway_get(top_up.gateway).cancel_payment(
                reference=payment.reference, idempotency_key=f"cancel:{top_up.idempotency_key}"
            )
        except GatewayError:
            logger.warning(
                "auto top-up %s: cancelling %s failed", top_up.pk, payment.reference, exc_info=True
            )
            return top_up
    return topup_fail(top_up=top_up, reason=reason, gateway_reference=payment.reference)


def auto_topup_sweep(*, now: datetime | None = None) -> int:
    """The safety net: finish stale pending auto top-ups, and start the ones a lost listener
    call missed. Returns how many top-ups it started."""
    now = now or timezone.now()
    stale = TopUp.objects.filter(
        auto=True, status=TopUp.Status.PENDING, created_at__lt=now - STALE_PENDING
    ).values_list("pk", "gateway_reference")
    for top_up_id, reference in stale:
        if reference:
            # The gateway answered (a processing PaymentIntent): charging again would create a
            # second PaymentIntent, so ask about the one that exists.
            task_by_name(task_names.AUTO_TOPUP_RECONCILE).delay(top_up_id=top_up_id)
        else:
            # The charge call never returned: the same idempotency key makes this safe.
            task_by_name(task_names.AUTO_TOPUP_CHARGE).delay(top_up_id=top_up_id)
    started = 0
    policies = AutoTopUpPolicy.objects.filter(enabled=True).exclude(
        state=AutoTopUpPolicy.State.DISABLED
    )
    for policy in policies.select_related("tenant").iterator(chunk_size=500):
        if auto_topup_refusal(policy, now):
            continue
        if available_get(tenant=policy.tenant, at=now) >= policy.threshold:
            continue
        started += auto_topup_start(tenant=policy.tenant, now=now).top_up is not None
    return started
