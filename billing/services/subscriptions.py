"""Subscriptions: each billing period's included credits as one `monthly_reset` bucket.

A period's bucket is named `sub:<subscription id>:<period index>`; the ledger's unique
external reference makes the grant happen once per subscription and period, however often (and
however concurrently) renewal runs. The bucket expires at the period end, where the ledger's
sweep writes its expiry.

Two kinds of subscription:

- **linked** to the gateway (`subscription_create`, or `subscription_link` for an old one):
  Stripe Billing collects the fee and its credits are granted when an invoice is paid
  (billing/services/subscription_invoices.py). `subscription_change` raises the plan or the
  seats now (invoiced at once, prorated) or lowers them at the period end;
  `subscription_cancel` ends it at the period end. Each gateway call runs outside any
  transaction, with an idempotency key, after the intent is committed.
- **unlinked** (made by `subscription_start`, as before billing collected fees: the demo, the
  vendor's own tenants, subscriptions older than this): the renewal sweep grants each period
  by itself, as it always did, until linked.
"""

import logging
import uuid
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import billing.services.subscription_events  # noqa: F401  (registers its Stripe handlers)
from billing.exceptions import (
    GatewayRefused,
    InvalidSubscriptionInput,
    SubscriptionExists,
    SubscriptionNotActive,
    SubscriptionNotFound,
)
from billing.gateways import gateway_get
from billing.gateways.base import PaymentGateway, SubscriptionItems
from billing.locks import subscription_lock, subscription_lock_by_id
from billing.models import (
    LIVE_SUBSCRIPTION,
    BillingCustomer,
    Contract,
    Plan,
    PlanPrice,
    Subscription,
    SubscriptionInvoice,
)
from billing.selectors import billing_currency_fixed, billing_currency_get
from billing.services.subscription_invoices import (
    fraction_left,
    period_of,
    subscription_invoice_apply,
    subscription_sync,
)
from billing.services.subscription_notices import subscription_data
from billing.services.tenant_billing import billing_currency_claim
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.periods import period_bounds, period_index
from ledger.services import GrantResult, ledger_grant
from ratecards.models import RateCard, RateCardAssignment
from ratecards.services import ratecard_assign
from tenants.events import publish
from tenants.models import Tenant

logger = logging.getLogger(__name__)

# Under Stripe's 24 hours: a creation retried within it gets what the first request made.
IDEMPOTENCY_WINDOW = timedelta(hours=23)
# How often the renewal sweep asks the gateway about one subscription (webhooks are the prompt
# path; the sweep is the safety net, and the fake gateway's clock).
RECONCILE_EVERY = timedelta(minutes=15)


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
            _announce_canceled(current)
        start, end = period_bounds(anchor, max(now, anchor))
        sub = Subscription.objects.create(
            tenant=tenant,
            plan=plan,
            currency=_currency_claim(tenant, plan.currency),
            anchor=anchor,
            current_period_start=start,
            current_period_end=end,
        )
        _grant_period(sub, max(now, anchor))
        _assign_rate_card(tenant, plan, now)
        publish(tenant_id=tenant.pk, type="subscription.activated", data=subscription_data(sub))
    return sub


def _currency_claim(tenant: Tenant, currency: str) -> str:
    """The tenant's billing currency, `currency` if it had none; InvalidSubscriptionInput
    naming `currency` if it has another."""
    fixed = billing_currency_claim(tenant_id=tenant.pk, currency=currency)
    if fixed != currency.upper():
        raise InvalidSubscriptionInput("currency", f"This tenant is billed in {fixed}.")
    return fixed


def _announce_canceled(sub: Subscription) -> None:
    data = subscription_data(sub, canceled_at=sub.canceled_at)
    publish(tenant_id=sub.tenant_id, type="subscription.canceled", data=data)


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
    """The renewal sweep (Celery beat). An unlinked subscription whose period has ended gets
    its current period granted, as before; a linked one grants nothing by itself: it is
    reconciled with the gateway (a period invoice paid without its webhook reaching us is
    applied, once; the fake gateway issues its period invoices when asked). Returns how many
    grants it made. Safe to run twice at once: the account lock serializes the two runs per
    tenant and every grant is idempotent."""
    now = now or timezone.now()
    due = list(
        Subscription.objects.filter(
            status=Subscription.Status.ACTIVE, gateway="", current_period_end__lte=now
        )
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
    return granted + _reconcile_due(now=now, batch_size=batch_size)


def _reconcile_due(*, now: datetime, batch_size: int) -> int:
    # A change whose invoice never turned up within the gateway's idempotency window: given up.
    SubscriptionInvoice.objects.filter(
        status=SubscriptionInvoice.Status.REQUESTED, created_at__lt=now - IDEMPOTENCY_WINDOW
    ).update(status=SubscriptionInvoice.Status.VOID)
    waiting = SubscriptionInvoice.objects.filter(
        status__in=(
            SubscriptionInvoice.Status.REQUESTED,
            SubscriptionInvoice.Status.OPEN,
            SubscriptionInvoice.Status.FAILED,
        )
    ).values("subscription_id")
    due = (
        Subscription.objects.filter(status__in=LIVE_SUBSCRIPTION)
        .exclude(gateway="")
        .filter(
            Q(current_period_end__lte=now)
            | Q(status__in=(Subscription.Status.PAST_DUE, Subscription.Status.INCOMPLETE))
            | Q(pk__in=waiting)
        )
        .filter(Q(reconciled_at__isnull=True) | Q(reconciled_at__lte=now - RECONCILE_EVERY))
        .select_related("plan", "tenant")
        .order_by("current_period_end")[:batch_size]
    )
    paid = 0
    for sub in due:
        try:
            paid += subscription_reconcile(sub=sub)
        except Exception:
            logger.exception("subscription %s: reconciliation failed", sub.pk)
    return paid


def subscription_reconcile(*, sub: Subscription) -> int:
    """Ask the gateway how the subscription stands and apply it (outside a transaction)."""
    if not sub.gateway_reference and timezone.now() - sub.created_at < timedelta(minutes=2):
        return 0  # its first request may still be waiting for the gateway's answer
    Subscription.objects.filter(pk=sub.pk).update(reconciled_at=timezone.now())
    if not sub.gateway_reference:
        return _paid_count(subscription_request_again(sub=sub))
    state = _gateway(sub).subscription_get(reference=sub.gateway_reference)
    return subscription_sync(sub=sub, state=state)


def _paid_count(sub: Subscription) -> int:
    return SubscriptionInvoice.objects.filter(
        subscription=sub, status=SubscriptionInvoice.Status.PAID
    ).count()


def _gateway(sub: Subscription) -> PaymentGateway:
    return gateway_get(sub.gateway or None)


def subscription_items(*, plan: Plan, seats: int, currency: str) -> SubscriptionItems:
    """What the plan charges in `currency` for `seats` (422 naming the field that is wrong)."""
    if not plan.active:
        raise InvalidSubscriptionInput("plan", "No active plan has that slug.")
    if seats < 1:
        raise InvalidSubscriptionInput("seats", "A subscription has at least one seat.")
    price = PlanPrice.objects.filter(plan=plan, currency=currency.upper()).first()
    if price is None:
        raise InvalidSubscriptionInput(
            "currency", f"The plan {plan.slug} has no price in {currency.upper()}."
        )
    if seats > 1 and not price.has_seats:
        raise InvalidSubscriptionInput("seats", f"The plan {plan.slug} is not sold per seat.")
    return SubscriptionItems(plan=plan, price=price, seats=seats)


def _customer(tenant: Tenant, gateway: PaymentGateway) -> BillingCustomer:
    customer = BillingCustomer.objects.filter(tenant=tenant, gateway=gateway.name).first()
    if customer is not None:
        return customer
    customer_id = gateway.customer_create(
        tenant_id=tenant.pk, name=tenant.name, idempotency_key=f"customer:{tenant.pk}"
    )
    customer, _ = BillingCustomer.objects.get_or_create(
        tenant=tenant, defaults={"gateway": gateway.name, "customer_id": customer_id}
    )
    return customer


def subscription_create(
    *, tenant: Tenant, plan: Plan, seats: int = 1, currency: str | None = None
) -> Subscription:
    """Subscribe through the gateway: the first period is invoiced at once and its credits come
    when that invoice is paid (now, if the saved card pays it). Unpaid, the subscription stays
    `incomplete` with the invoice to pay."""
    # One currency per tenant: the one it is billed in; it may name one only before it has one.
    fixed = billing_currency_fixed(tenant_id=tenant.pk)
    if currency is not None and fixed is not None and currency.upper() != fixed:
        raise InvalidSubscriptionInput("currency", f"This tenant is billed in {fixed}.")
    items = subscription_items(
        plan=plan, seats=seats, currency=currency or billing_currency_get(tenant=tenant)
    )
    gateway = gateway_get()
    customer = _customer(tenant, gateway)
    now = timezone.now()
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant.pk)
        if subscription_lock(tenant_id=tenant.pk) is not None:
            raise SubscriptionExists()
        _currency_claim(tenant, items.price.currency)
        start, end = period_bounds(now, now)
        sub = Subscription.objects.create(
            tenant=tenant,
            plan=plan,
            seats=seats,
            currency=items.price.currency,
            anchor=now,
            status=Subscription.Status.INCOMPLETE,
            current_period_start=start,
            current_period_end=end,
            gateway=gateway.name,
        )
    return _subscription_request(sub, items=items, gateway=gateway, customer=customer)


def _subscription_request(
    sub: Subscription,
    *,
    items: SubscriptionItems,
    gateway: PaymentGateway,
    customer: BillingCustomer,
) -> Subscription:
    """Ask the gateway for the subscription (the same idempotency key every time) and link it."""
    try:
        state = gateway.subscription_create(
            tenant_id=sub.tenant_id,
            subscription_id=sub.pk,
            customer_id=customer.customer_id,
            payment_method_id=customer.payment_method_id,
            items=items,
            idempotency_key=f"subscription:{sub.pk}",
        )
    except GatewayRefused:
        # The gateway made nothing: the row is closed, and no credits were granted.
        _close_unlinked(sub)
        raise
    # Any other failure (a timeout) may hide a subscription the gateway did make: the row waits,
    # incomplete and unlinked, for the renewal sweep to ask again with the same key.
    with transaction.atomic(durable=True):
        account_lock(tenant_id=sub.tenant_id)
        sub = subscription_lock_by_id(tenant_id=sub.tenant_id, subscription_id=sub.pk)
        # Periods follow the gateway's anchor from now on.
        sub.anchor = sub.current_period_start = state.period_start
        sub.current_period_end = state.period_end
        sub.gateway_reference, sub.gateway_items = state.reference, state.items
        sub.save()
        _assign_rate_card(sub.tenant, sub.plan, timezone.now())
    subscription_sync(sub=sub, state=state)
    sub.refresh_from_db()
    return sub


def _close_unlinked(sub: Subscription) -> None:
    Subscription.objects.filter(pk=sub.pk, gateway_reference="").update(
        status=Subscription.Status.CANCELED, canceled_at=timezone.now()
    )


def subscription_request_again(*, sub: Subscription) -> Subscription:
    """The sweep's second try at a subscription whose creation did not answer: within the
    gateway's idempotency window (24 h at Stripe) the same key returns what it made, if it made
    anything; past it, the row is closed (an unanswered Stripe subscription is `incomplete`
    and expires unpaid after 23 h)."""
    if timezone.now() - sub.created_at > IDEMPOTENCY_WINDOW:
        _close_unlinked(sub)
        sub.refresh_from_db()
        return sub
    gateway = _gateway(sub)
    items = SubscriptionItems(
        plan=sub.plan,
        price=PlanPrice.objects.get(plan=sub.plan, currency=sub.currency),
        seats=sub.seats,
    )
    return _subscription_request(
        sub, items=items, gateway=gateway, customer=_customer(sub.tenant, gateway)
    )


def subscription_change(*, tenant: Tenant, plan: Plan, seats: int) -> Subscription:
    """Move to `plan` with `seats`. A change that raises the period's allowance (an upgrade,
    more seats) is invoiced now, prorated, and its credits come when that invoice is paid; one
    that lowers it waits for the period end; asking for what the subscription already is drops
    a change that was waiting."""
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant.pk)
        sub = _changeable(tenant)
        items = subscription_items(plan=plan, seats=seats, currency=sub.currency)
        # What it is on now, priced even if that plan is no longer on sale.
        current = SubscriptionItems(
            plan=sub.plan,
            price=PlanPrice.objects.get(plan=sub.plan, currency=sub.currency),
            seats=sub.seats,
        )
        now = timezone.now()
        if plan.allowance(seats) > sub.allowance:
            index, _, _ = period_of(sub, now)
            change = SubscriptionInvoice.objects.create(
                tenant=tenant,
                subscription=sub,
                kind=SubscriptionInvoice.Kind.CHANGE,
                status=SubscriptionInvoice.Status.REQUESTED,
                gateway=sub.gateway,
                idempotency_key=f"subchange:{sub.pk}:{uuid.uuid4().hex}",
                period_index=index,
                plan=plan,
                seats=seats,
                fraction=fraction_left(sub, now),
                currency=sub.currency,
                created_at=now,
            )
        else:
            change = None
            same = plan.pk == sub.plan_id and seats == sub.seats
            sub.next_plan, sub.next_seats = (None, None) if same else (plan, seats)
            sub.save(update_fields=["next_plan", "next_seats"])
    gateway = _gateway(sub)
    if change is None:
        schedule = gateway.subscription_change_at_period_end(
            reference=sub.gateway_reference,
            schedule=sub.gateway_schedule,
            current=current,
            items=None if sub.next_plan is None else items,
            idempotency_key=f"subschedule:{sub.pk}:{uuid.uuid4().hex}",
        )
        Subscription.objects.filter(pk=sub.pk).update(gateway_schedule=schedule)
        sub.refresh_from_db()
        return sub
    if sub.gateway_schedule:
        # What waited for the period end is replaced by the change made now.
        gateway.subscription_change_at_period_end(
            reference=sub.gateway_reference,
            schedule=sub.gateway_schedule,
            current=current,
            items=None,
            idempotency_key=f"{change.idempotency_key}:release",
        )
        Subscription.objects.filter(pk=sub.pk).update(
            gateway_schedule="", next_plan=None, next_seats=None
        )
    try:
        invoice = gateway.subscription_change_now(
            reference=sub.gateway_reference,
            items=items,
            idempotency_key=change.idempotency_key,
        )
    except GatewayRefused:
        # The gateway made no invoice: the change never happened (nothing to pay or grant).
        SubscriptionInvoice.objects.filter(
            pk=change.pk, status=SubscriptionInvoice.Status.REQUESTED
        ).update(status=SubscriptionInvoice.Status.VOID)
        raise
    # Any other failure may hide an invoice the gateway made: the change stays `requested`
    # until its invoice turns up (a webhook, the sweep) or the sweep gives it up after 23 h.
    SubscriptionInvoice.objects.filter(
        pk=change.pk, status=SubscriptionInvoice.Status.REQUESTED
    ).update(gateway_reference=invoice.reference, status=SubscriptionInvoice.Status.OPEN)
    subscription_invoice_apply(subscription_id=sub.pk, tenant_id=tenant.pk, invoice=invoice)
    sub.refresh_from_db()
    return sub


def _changeable(tenant: Tenant) -> Subscription:
    sub = subscription_lock(tenant_id=tenant.pk)
    if sub is None:
        raise SubscriptionNotFound()
    if sub.status != Subscription.Status.ACTIVE or not sub.is_linked or sub.cancel_at_period_end:
        raise SubscriptionNotActive(status=sub.status)
    return sub


def subscription_cancel(*, tenant: Tenant) -> Subscription:
    """End the subscription at its period end: its credits run to then, nothing more is
    invoiced or granted. An unlinked one ends now (it has nothing to collect)."""
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant.pk)
        sub = subscription_lock(tenant_id=tenant.pk)
        if sub is None:
            raise SubscriptionNotFound()
        if not sub.is_linked:
            sub.status, sub.canceled_at = Subscription.Status.CANCELED, timezone.now()
            sub.save(update_fields=["status", "canceled_at"])
            _announce_canceled(sub)
            return sub
        if sub.cancel_at_period_end:
            return sub
        sub.cancel_at_period_end, sub.next_plan, sub.next_seats = True, None, None
        sub.save(update_fields=["cancel_at_period_end", "next_plan", "next_seats"])
    _gateway(sub).subscription_cancel_at_period_end(
        reference=sub.gateway_reference,
        schedule=sub.gateway_schedule,
        idempotency_key=f"subcancel:{sub.pk}",
    )
    Subscription.objects.filter(pk=sub.pk).update(gateway_schedule="")
    sub.refresh_from_db()
    return sub


def subscription_link(*, subscription: Subscription, gateway_reference: str) -> Subscription:
    """Link an unlinked subscription to the gateway's subscription `gateway_reference` (made by
    the vendor for it): from then on its credits follow paid invoices. Periods keep the old
    anchor, so a period already granted is not granted again."""
    gateway = gateway_get()
    state = gateway.subscription_get(reference=gateway_reference)
    with transaction.atomic(durable=True):
        account_lock(tenant_id=subscription.tenant_id)
        sub = subscription_lock_by_id(
            tenant_id=subscription.tenant_id, subscription_id=subscription.pk
        )
        if sub.is_linked:
            return sub
        sub.gateway, sub.gateway_reference, sub.gateway_items = (
            gateway.name,
            state.reference,
            state.items,
        )
        sub.save(update_fields=["gateway", "gateway_reference", "gateway_items"])
    subscription_sync(sub=sub, state=state)
    sub.refresh_from_db()
    return sub
