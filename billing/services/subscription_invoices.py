"""A subscription's credits follow its paid invoices (DESIGN.md, "Billing collects what it grants").

`subscription_invoice_apply` is the one path from a gateway invoice to credits, called by the
services right after a gateway call, by the renewal sweep's reconciliation and by Stripe's
webhooks alike; it is idempotent (the invoice row's status, and the ledger's unique reference):

- a period's invoice paid: the period's allowance (plan + seats x credits per seat) as one
  `monthly_reset` bucket `sub:<id>:<period>`, expiring at the period end; a plan or seat change
  that waited for the period end takes effect first;
- a change's invoice paid (an upgrade, more seats): the allowance's rise times the part of the
  period that was left when it was asked for, `sub:<id>:<period>:change:<invoice>`, once. The
  allowance inside a period only rises (what lowers it waits for the period end) and each rise
  is granted at most once, prorated, so no sequence of changes grants more in a period than the
  highest allowance held in it (tests/billing/test_subscription_ceiling.py);
- a period's invoice declined: `past_due`; after the vendor's grace days
  (CREDITLINE_SUBSCRIPTION_GRACE_DAYS, 3) the tenant's new workflow runs are refused
  (`Tenant.runs_refused_from`, read by metering), until it is paid.
"""

import logging
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.utils import timezone

from billing.gateways.base import GatewayInvoice, GatewaySubscription
from billing.locks import subscription_lock_by_id
from billing.models import Subscription, SubscriptionInvoice
from billing.selectors import subscription_grace
from billing.services.subscription_notices import subscription_data
from ledger.locks import account_lock
from ledger.models import CreditBucket
from ledger.periods import add_months, period_bounds, period_index
from ledger.services import ledger_grant
from tenants.events import publish
from tenants.services import tenant_runs_refused_set

logger = logging.getLogger(__name__)

CREDIT_STEP = Decimal("0.0001")
PERIOD_REASONS = ("subscription_create", "subscription_cycle")
Status = Subscription.Status
InvoiceStatus = SubscriptionInvoice.Status

# Stripe's subscription statuses, mapped to ours.
STRIPE_STATUSES: dict[str, str] = {
    "incomplete": Status.INCOMPLETE,
    "trialing": Status.ACTIVE,
    "active": Status.ACTIVE,
    "past_due": Status.PAST_DUE,
    "unpaid": Status.PAST_DUE,
    "paused": Status.PAST_DUE,
    "incomplete_expired": Status.CANCELED,
    "canceled": Status.CANCELED,
}


class InvoiceTooEarly(Exception):
    """The invoice names a subscription or a change whose row is not recorded yet: the Stripe
    event stays unprocessed and `stripe_events_retry` tries it again."""


def fraction_left(sub: Subscription, at: datetime) -> Decimal:
    """The part of the current period still ahead at `at`, rounded down (never more credits)."""
    whole = (sub.current_period_end - sub.current_period_start).total_seconds()
    left = max((sub.current_period_end - at).total_seconds(), 0.0)
    return min(Decimal(left) / Decimal(whole), Decimal(1)).quantize(
        Decimal("0.000001"), rounding=ROUND_DOWN
    )


def _index_of(sub: Subscription, at: datetime) -> int:
    return period_index(sub.anchor, max(at, sub.anchor))


def subscription_invoice_apply(
    *, subscription_id: int, tenant_id: int, invoice: GatewayInvoice
) -> SubscriptionInvoice:
    """Record the invoice and do what its state says (see the module docstring), once."""
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant_id)
        sub = subscription_lock_by_id(tenant_id=tenant_id, subscription_id=subscription_id)
        row = _row_for(sub, invoice)
        if row.status in (InvoiceStatus.PAID, InvoiceStatus.VOID):
            return row
        row.gateway_reference = invoice.reference
        row.hosted_url = invoice.hosted_url or row.hosted_url
        row.amount_minor = invoice.amount_minor
        if invoice.status == "paid":
            _paid(sub, row)
        elif invoice.status == "void":
            row.status = InvoiceStatus.VOID
        elif invoice.failed or invoice.status == "uncollectible":
            row.status = InvoiceStatus.FAILED
            if row.kind == SubscriptionInvoice.Kind.PERIOD:
                _past_due(sub)
        else:
            row.status = InvoiceStatus.OPEN
        row.save()
    return row


def _row_for(sub: Subscription, invoice: GatewayInvoice) -> SubscriptionInvoice:
    found = SubscriptionInvoice.objects.filter(
        tenant_id=sub.tenant_id, gateway=sub.gateway, gateway_reference=invoice.reference
    ).first()
    if found is not None:
        return found
    if invoice.reason not in PERIOD_REASONS:
        # A change's invoice: its row was written before the gateway call and gets the
        # invoice's reference from the call's answer, which a webhook can overtake, or which
        # never came (a timeout): the change waiting for its answer is this one.
        waiting = (
            SubscriptionInvoice.objects.filter(
                subscription=sub,
                kind=SubscriptionInvoice.Kind.CHANGE,
                status=InvoiceStatus.REQUESTED,
                gateway_reference="",
            )
            .order_by("pk")
            .first()
        )
        if waiting is None:
            raise InvoiceTooEarly(
                f"No change of subscription {sub.pk} has invoice {invoice.reference}."
            )
        return waiting
    index = _index_of(sub, invoice.period_start)
    return SubscriptionInvoice(
        tenant_id=sub.tenant_id,
        subscription=sub,
        kind=SubscriptionInvoice.Kind.PERIOD,
        status=InvoiceStatus.OPEN,
        gateway=sub.gateway,
        gateway_reference=invoice.reference,
        idempotency_key=f"invoice:{invoice.reference}",
        period_index=index,
        plan=sub.plan,
        seats=sub.seats,
        currency=invoice.currency,
        created_at=timezone.now(),
    )


def _paid(sub: Subscription, row: SubscriptionInvoice) -> None:
    now = timezone.now()
    row.status, row.paid_at = InvoiceStatus.PAID, now
    if sub.status == Status.CANCELED:
        row.credits = Decimal(0)  # a cancelled subscription grants nothing more
        return
    first = sub.status == Status.INCOMPLETE
    if row.kind == SubscriptionInvoice.Kind.PERIOD:
        _period_paid(sub, row)
    else:
        _change_paid(sub, row)
    if (
        not SubscriptionInvoice.objects.filter(
            subscription=sub, kind=SubscriptionInvoice.Kind.PERIOD, status=InvoiceStatus.FAILED
        )
        .exclude(pk=row.pk)
        .exists()
    ):
        _in_good_standing(sub)
    sub.save()
    if row.kind == SubscriptionInvoice.Kind.PERIOD:
        _announce_paid(sub, row, first=first)


def _announce_paid(sub: Subscription, row: SubscriptionInvoice, *, first: bool) -> None:
    """A first invoice paid activates the subscription; a later period's paid renews it."""
    paid = {
        "period": row.period_index,
        "credits": str(row.credits or Decimal(0)),
        "amount_minor": row.amount_minor,
        "invoice_currency": row.currency,
    }
    data = subscription_data(sub, **paid)
    if first:
        publish(tenant_id=sub.tenant_id, type="subscription.activated", data=data)
    else:
        publish(tenant_id=sub.tenant_id, type="subscription.renewed", data=data)


def _period_paid(sub: Subscription, row: SubscriptionInvoice) -> None:
    current = _index_of(sub, sub.current_period_start)
    start = add_months(sub.anchor, row.period_index)
    end = add_months(sub.anchor, row.period_index + 1)
    if row.period_index > current or sub.status == Status.INCOMPLETE:
        # The period begins: a change that waited for its end takes effect now.
        sub.plan = sub.next_plan or sub.plan
        sub.seats = sub.next_seats or sub.seats
        sub.next_plan, sub.next_seats = None, None
        # A schedule that held the change has done its work (Stripe releases it).
        sub.gateway_schedule = ""
        sub.current_period_start, sub.current_period_end = start, end
        row.plan, row.seats = sub.plan, sub.seats
    if end <= timezone.now() or row.period_index < current:
        row.credits = Decimal(0)  # paid after its period ended: its credits would be expired
        return
    row.credits = row.plan.allowance(row.seats)
    if not _grant(sub, row, reference=f"sub:{sub.pk}:{row.period_index}", start=start, end=end):
        row.credits = Decimal(0)  # granted before it was linked (an old subscription's period)


def _change_paid(sub: Subscription, row: SubscriptionInvoice) -> None:
    rise = row.plan.allowance(row.seats) - sub.allowance
    if row.period_index != _index_of(sub, sub.current_period_start) or rise <= 0:
        row.credits = Decimal(0)
    else:
        row.credits = (rise * row.fraction).quantize(CREDIT_STEP, rounding=ROUND_DOWN)
    if rise > 0:
        sub.plan, sub.seats = row.plan, row.seats
    if row.credits > 0:
        _grant(
            sub,
            row,
            reference=f"sub:{sub.pk}:{row.period_index}:change:{row.pk}",
            start=sub.current_period_start,
            end=sub.current_period_end,
        )


def _grant(
    sub: Subscription, row: SubscriptionInvoice, *, reference: str, start: datetime, end: datetime
) -> bool:
    """Grant the row's credits as `reference`; False when that grant existed already."""
    what = "" if row.kind == SubscriptionInvoice.Kind.PERIOD else "change in "
    return ledger_grant(
        tenant=sub.tenant,
        credits=row.credits or Decimal(0),
        policy=CreditBucket.Policy.MONTHLY_RESET,
        source=CreditBucket.Source.SUBSCRIPTION,
        external_reference=reference,
        expires_at=end,
        price_minor=row.amount_minor,
        currency=row.currency,
        source_type="billing.subscription",
        source_id=str(sub.pk),
        memo=(
            f"{row.plan.name} x {row.seats} seat(s): {what}period {row.period_index + 1} "
            f"({start:%Y-%m-%d} to {end:%Y-%m-%d})"
        ),
    ).created


def _past_due(sub: Subscription) -> None:
    # Only a subscription that was paid for falls past due; a new one whose first invoice is
    # unpaid stays `incomplete` (it granted nothing, so it refuses nothing).
    if sub.status not in (Status.ACTIVE, Status.PAST_DUE):
        return
    was = sub.status
    sub.status = Status.PAST_DUE
    sub.past_due_since = sub.past_due_since or timezone.now()
    sub.save()
    refused_from = sub.past_due_since + subscription_grace()
    tenant_runs_refused_set(tenant_id=sub.tenant_id, at=refused_from)
    if was != Status.PAST_DUE:
        data = subscription_data(
            sub, past_due_since=sub.past_due_since, runs_refused_from=refused_from
        )
        publish(tenant_id=sub.tenant_id, type="subscription.past_due", data=data)


def _in_good_standing(sub: Subscription) -> None:
    if sub.status in (Status.PAST_DUE, Status.INCOMPLETE):
        sub.status = Status.ACTIVE
    if sub.past_due_since is not None:
        sub.past_due_since = None
        tenant_runs_refused_set(tenant_id=sub.tenant_id, at=None)


def subscription_state_apply(*, subscription_id: int, tenant_id: int, status: str) -> Subscription:
    """The gateway's status (Stripe's word) where it ends or suspends the subscription: a
    cancelled one grants nothing more and refuses nothing more."""
    ours = STRIPE_STATUSES.get(status)
    with transaction.atomic(durable=True):
        account_lock(tenant_id=tenant_id)
        sub = subscription_lock_by_id(tenant_id=tenant_id, subscription_id=subscription_id)
        if ours == Status.CANCELED and sub.status != Status.CANCELED:
            sub.status, sub.canceled_at = Status.CANCELED, timezone.now()
            sub.next_plan, sub.next_seats = None, None
            sub.save()
            if sub.past_due_since is not None:
                tenant_runs_refused_set(tenant_id=sub.tenant_id, at=None)
            data = subscription_data(sub, canceled_at=sub.canceled_at)
            publish(tenant_id=sub.tenant_id, type="subscription.canceled", data=data)
        elif ours == Status.PAST_DUE and sub.status == Status.ACTIVE:
            _past_due(sub)
    return sub


def subscription_sync(*, sub: Subscription, state: GatewaySubscription) -> int:
    """Apply what the gateway says of the subscription (oldest invoice first, then its status);
    returns how many invoices became paid here. The renewal sweep's reconciliation: a missed
    webhook is found and applied, once."""
    paid = 0
    for invoice in sorted(state.invoices, key=lambda i: i.period_start):
        try:
            before = (
                SubscriptionInvoice.objects.filter(
                    tenant_id=sub.tenant_id,
                    gateway=sub.gateway,
                    gateway_reference=invoice.reference,
                )
                .values_list("status", flat=True)
                .first()
            )
            row = subscription_invoice_apply(
                subscription_id=sub.pk, tenant_id=sub.tenant_id, invoice=invoice
            )
        except InvoiceTooEarly:
            logger.info("subscription %s: invoice %s not ours yet", sub.pk, invoice.reference)
            continue
        paid += row.status == InvoiceStatus.PAID and before != InvoiceStatus.PAID
    if STRIPE_STATUSES.get(state.status) in (Status.CANCELED, Status.PAST_DUE):
        subscription_state_apply(
            subscription_id=sub.pk, tenant_id=sub.tenant_id, status=state.status
        )
    return paid


def period_of(sub: Subscription, at: datetime) -> tuple[int, datetime, datetime]:
    start, end = period_bounds(sub.anchor, max(at, sub.anchor))
    return _index_of(sub, at), start, end
