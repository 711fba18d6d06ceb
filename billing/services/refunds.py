"""A purchase whose money went back: a refund (the vendor's, from the admin or Stripe's
dashboard) or a dispute the vendor lost. Its unspent credits leave the balance; what was
already spent is recorded on the top-up as the customer's debt, for the vendor (the admin
shows it).

`topup_take_back` is the one path: Stripe's `charge.refunded` and `charge.dispute.closed`
(stripe_handlers.py) and `topup_refund` (the vendor's refund through the gateway) end there.
It is idempotent by what it has already recorded on the top-up: the credits follow the share
of the price refunded so far, so a replayed event, or the webhook of a refund the admin
already applied, takes nothing twice.
"""

from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from billing.exceptions import GatewayError, TopUpNotRefundable
from billing.gateways import gateway_get
from billing.locks import policy_lock, topup_lock
from billing.models import AutoTopUpPolicy, RefundReason, TopUp
from billing.money import money_format
from billing.services.notify import notify
from ledger.locks import account_lock
from ledger.services import CREDIT_QUANTUM, ledger_grant_revoke

# Why the money went back, as the customer reads it (the reason's label, "Lost in a dispute",
# is the vendor's side: the customer won that dispute).
CUSTOMER_REASON = {RefundReason.REFUND: "refunded", RefundReason.DISPUTE_LOST: "after a dispute"}


def credits_for_share(credits: Decimal, amount_minor: int, refunded_minor: int) -> Decimal:
    """The credits a purchase of `amount_minor` bought, in proportion to the part of it gone
    back (all of them for the whole of it, or for a free one), at 4 places ROUND_HALF_UP
    (money invariant 8). A top-up's and an invoice's take-back both count with it."""
    if refunded_minor >= amount_minor or amount_minor <= 0:
        return credits
    share = credits * Decimal(refunded_minor) / Decimal(amount_minor)
    return share.quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def topup_take_back(
    *,
    top_up: TopUp,
    refunded_minor: int | None = None,
    disputed_minor: int = 0,
    reason: str,
    refund_reference: str = "",
    actor: User | None = None,
) -> TopUp:
    """`refunded_minor` of the top-up's price has gone back to the customer in all (Stripe's
    cumulative `amount_refunded`), or a lost dispute took `disputed_minor` on top of what was
    refunded before it (`refund_reference` the dispute's id: applied once): take back the
    credits that share bought, from what is left of its bucket; the rest is owed. Only a paid
    top-up granted anything, so only one has anything to give back. An auto top-up's policy is
    turned off, so it does not buy again at once what was just refunded or disputed."""
    reason = RefundReason(reason)
    with transaction.atomic(durable=True):
        account_lock(tenant_id=top_up.tenant_id)
        policy = policy_lock(tenant_id=top_up.tenant_id) if top_up.auto else None
        locked = topup_lock(tenant_id=top_up.tenant_id, top_up_id=top_up.pk)
        if disputed_minor and refund_reference and locked.refund_reference == refund_reference:
            return locked  # this dispute was applied already (Stripe may send it twice)
        refunded_minor = min(
            (locked.refunded_minor if refunded_minor is None else refunded_minor) + disputed_minor,
            locked.amount_minor,
        )
        if locked.status != TopUp.Status.SUCCEEDED or refunded_minor <= locked.refunded_minor:
            return locked
        due = (
            credits_for_share(locked.credits, locked.amount_minor, refunded_minor)
            - locked.credits_taken_back
            - locked.credits_owed
        )
        if due > 0:
            revoked = ledger_grant_revoke(
                tenant=locked.tenant,
                external_reference=f"topup:{locked.pk}",
                credits=due,
                idempotency_key=f"takeback:topup:{locked.pk}:{refunded_minor}",
                source_type="billing.topup",
                source_id=str(locked.pk),
                actor=actor,
                memo=f"{reason.label}: {money_format(refunded_minor, locked.currency)}.",
            )
            locked.credits_taken_back += revoked.taken
            locked.credits_owed += revoked.short
        locked.refunded_minor = refunded_minor
        locked.refund_reason = reason
        locked.refund_reference = refund_reference or locked.refund_reference
        locked.refunded_at = timezone.now()
        locked.save(
            update_fields=[
                "refunded_minor",
                "credits_taken_back",
                "credits_owed",
                "refund_reason",
                "refund_reference",
                "refunded_at",
            ]
        )
        if policy is not None and policy.enabled:
            _auto_topup_stop(policy, locked, reason)
        _tell(locked)
    return locked


def _auto_topup_stop(policy: AutoTopUpPolicy, top_up: TopUp, reason: RefundReason) -> None:
    policy.enabled = False
    policy.state = AutoTopUpPolicy.State.DISABLED
    policy.backoff_until = None
    policy.disabled_reason = (
        f"Auto top-up {top_up.pk} was {reason.label.lower()}: turn auto top-up on again to resume."
    )
    policy.save(update_fields=["enabled", "state", "backoff_until", "disabled_reason"])


def _tell(top_up: TopUp) -> None:
    refunded = money_format(top_up.refunded_minor, top_up.currency)
    notify(
        tenant_id=top_up.tenant_id,
        type="topup.refunded",
        data={
            "top_up_id": top_up.pk,
            "pack": top_up.pack.slug,
            "reason": top_up.refund_reason,
            "refunded_minor": top_up.refunded_minor,
            "currency": top_up.currency,
            "credits_taken_back": str(top_up.credits_taken_back),
            "auto": top_up.auto,
        },
        subject=f"{refunded} refunded",
        body=(
            f"{refunded} of your {top_up.pack.name} purchase went back to you "
            f"({CUSTOMER_REASON[RefundReason(top_up.refund_reason)]}); "
            f"{top_up.credits_taken_back.normalize():f} unspent credits of it were removed from "
            "your balance."
        ),
    )


def topup_refund(*, top_up: TopUp, actor: User | None = None) -> TopUp:
    """The vendor refunds what is left of a paid top-up's price through the gateway, then
    takes back its credits. Runs outside any transaction: the refund's idempotency key is
    committed on the top-up first, so a retry (a timeout, a second click) asks the gateway
    with the same key and never refunds twice; Stripe's `charge.refunded` for it finds the
    credits already taken back."""
    if top_up.status != TopUp.Status.SUCCEEDED or not top_up.payment_reference:
        raise TopUpNotRefundable(top_up=top_up.pk)
    if top_up.refunded_minor >= top_up.amount_minor:
        raise TopUpNotRefundable("This top-up is refunded already.", top_up=top_up.pk)
    key = _refund_key(top_up)
    refund = gateway_get(top_up.gateway).refund_create(
        top_up=top_up, amount_minor=top_up.amount_minor - top_up.refunded_minor, idempotency_key=key
    )
    if refund.status not in ("succeeded", "pending"):
        raise GatewayError(detail=refund.failure_reason or f"The refund is {refund.status}.")
    return topup_take_back(
        top_up=top_up,
        refunded_minor=top_up.amount_minor,
        reason=RefundReason.REFUND,
        refund_reference=refund.reference,
        actor=actor,
    )


def _refund_key(top_up: TopUp) -> str:
    """The refund's gateway idempotency key, written on the top-up before the call (once)."""
    key = f"refund:{top_up.idempotency_key}:{top_up.refunded_minor}"
    with transaction.atomic(durable=True):
        locked = topup_lock(tenant_id=top_up.tenant_id, top_up_id=top_up.pk)
        if locked.refunded_minor != top_up.refunded_minor:
            raise TopUpNotRefundable("This top-up was refunded meanwhile.", top_up=top_up.pk)
        if locked.refund_idempotency_key != key:
            locked.refund_idempotency_key = key
            locked.save(update_fields=["refund_idempotency_key"])
    return key
