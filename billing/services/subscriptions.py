"""Subscriptions: each billing period's included credits as one `monthly_reset` bucket.

A period's bucket is named `sub:<subscription id>:<period index>`; the ledger's unique
external reference makes the grant happen once per subscription and period, however often (and
however concurrently) renewal runs. The bucket expires at the period end, where the ledger's
sweep writes its expiry.
"""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from billing.locks import subscription_lock
from billing.models import Contract, Plan, Subscription
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.periods import period_bounds, period_index
from ledger.services import GrantResult, ledger_grant
from ratecards.models import RateCard, RateCardAssignment
from ratecards.services import ratecard_assign
from tenants.models import Tenant

logger = logging.getLogger(__name__)


def _grant_period(sub: Subscription, at: datetime) -> GrantResult:
    start, end = period_bounds(sub.anchor, at)
    index = period_index(sub.anchor, at)
    plan = sub.plan
    result = ledger_grant(
        tenant=sub.tenant,
        credits=plan.included_credits,
        policy=CreditBucket.Policy.MONTHLY_RESET,
        source=CreditBucket.Source.SUBSCRIPTION,
        external_reference=f"sub:{sub.pk}:{index}",
        expires_at=end,
        price_minor=plan.price_minor,
        currency=plan.currency,
        source_type="billing.subscription",
        source_id=str(sub.pk),
        memo=f"{plan.name}: period {index + 1} ({start:%Y-%m-%d} to {end:%Y-%m-%d})",
    )
    sub.current_period_start, sub.current_period_end = start, end
    sub.save(update_fields=["current_period_start", "current_period_end"])
    return result


def subscription_start(
    *, tenant: Tenant, plan: Plan, anchor: datetime | None = None
) -> Subscription:
    """Subscribe the tenant (replacing an active subscription to another plan), grant the
    current period's credits and put the tenant on the plan's rate card. The replaced
    subscription's bucket runs to its own period end: no proration."""
    now = timezone.now()
    anchor = anchor or now
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant.pk)
        current = subscription_lock(tenant_id=tenant.pk)
        if current is not None:
            if current.plan_id == plan.pk:
                return current
            current.status = Subscription.Status.CANCELED
            current.canceled_at = now
            current.save(update_fields=["status", "canceled_at"])
        start, end = period_bounds(anchor, max(now, anchor))
        sub = Subscription.objects.create(
            tenant=tenant,
            plan=plan,
            anchor=anchor,
            current_period_start=start,
            current_period_end=end,
        )
        _grant_period(sub, max(now, anchor))
        _assign_rate_card(tenant, plan, now)
    return sub


def _assign_rate_card(tenant: Tenant, plan: Plan, now: datetime) -> None:
    # A contract's assignment (possibly pinned) outranks the plan's card.
    has_contract = Contract.objects.filter(
        tenant=tenant, status=Contract.Status.ACTIVE, end_at__gt=now
    ).exists()
    card = plan.rate_card or RateCard.objects.filter(is_default=True).first()
    if card is None or has_contract:
        return
    ratecard_assign(tenant=tenant, rate_card=card, mode=RateCardAssignment.Mode.FOLLOW)


def subscription_renew_due(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """The renewal sweep (Celery beat): grant the current period of every subscription whose
    period has ended. Returns how many buckets it granted. Safe to run twice at once: the
    account lock serializes the two runs per tenant and the grant is idempotent anyway."""
    now = now or timezone.now()
    due = list(
        Subscription.objects.filter(status=Subscription.Status.ACTIVE, current_period_end__lte=now)
        .order_by("current_period_end")
        .values_list("pk", "tenant_id")[:batch_size]
    )
    granted = 0
    for pk, tenant_id in due:
        try:
            with transaction.atomic(durable=True):
                account_lock(tenant_id=tenant_id)
                sub = Subscription.objects.select_related("plan", "tenant").get(pk=pk)
                if sub.status != Subscription.Status.ACTIVE or sub.current_period_end > now:
                    continue
                granted += _grant_period(sub, now).created
        except Exception:
            # One subscription that cannot renew must not starve the others.
            logger.exception("subscription %s: renewal failed", pk)
    return granted
