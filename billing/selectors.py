"""Reads of billing records; tenant-owned reads always take the tenant."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection
from django.db.models import Q, QuerySet

from billing.exceptions import PackNotFound, PlanNotFound, SubscriptionNotFound
from billing.models import (
    LIVE_SUBSCRIPTION,
    AlertSettings,
    AutoTopUpPolicy,
    BillingCustomer,
    Contract,
    ContractInvoice,
    CreditPack,
    Plan,
    PlanPrice,
    Subscription,
    TenantBilling,
    TopUp,
    default_alert_thresholds,
)
from billing.pack_selectors import auto_topup_spent_in
from tenants.models import Membership, Tenant

BILLING_ROLES = (Membership.Role.OWNER, Membership.Role.ADMIN, Membership.Role.BILLING)


def billing_role_held(*, tenant: Tenant, user_id: int) -> bool:
    """Whether the user may spend the tenant's money or save its card (BILLING_ROLES)."""
    return Membership.objects.filter(
        tenant=tenant, user_id=user_id, role__in=BILLING_ROLES
    ).exists()


def plan_get(*, slug: str) -> Plan:
    plan = Plan.objects.filter(slug=slug, active=True).first()
    if plan is None:
        raise PlanNotFound(f"No active plan has the slug '{slug}'.", plan=slug)
    return plan


def plan_list() -> QuerySet[Plan]:
    return Plan.objects.filter(active=True).order_by("price_minor", "included_credits", "slug")


@dataclass(frozen=True)
class PlanOffer:
    """An active plan at its price in one currency: what subscribing in it charges a month
    (`price_minor`, and `per_seat_minor` more for each seat)."""

    plan: Plan
    currency: str
    price_minor: int
    per_seat_minor: int = 0


def plan_offer_list(*, currency: str) -> list[PlanOffer]:
    """The active plans on sale in `currency`: those with a price in it (PlanPrice, what a
    subscription charges; a plan without one is refused there, so it is not offered), cheapest
    first, then fewer credits, then slug. One query."""
    prices = PlanPrice.objects.filter(plan__active=True, currency=currency.upper())
    return [
        PlanOffer(
            plan=price.plan,
            currency=price.currency,
            price_minor=price.base_minor,
            per_seat_minor=price.per_seat_minor,
        )
        for price in prices.select_related("plan").order_by(
            "base_minor", "plan__included_credits", "plan__slug"
        )
    ]


def pack_get(*, slug: str, currency: str | None = None) -> CreditPack:
    """An active pack (sold in `currency`, when given); PackNotFound names the `pack` field."""
    packs = CreditPack.objects.filter(slug=slug, active=True)
    if currency is not None:
        packs = packs.filter(currency=currency)
    pack = packs.first()
    if pack is None:
        in_currency = f" in {currency}" if currency is not None else ""
        raise PackNotFound(
            f"No active credit pack{in_currency} has the slug '{slug}'.", pack=slug, field="pack"
        )
    return pack


def pack_list(*, currency: str | None = None) -> QuerySet[CreditPack]:
    packs = CreditPack.objects.filter(active=True)
    if currency is not None:
        packs = packs.filter(currency=currency)
    return packs.order_by("price_minor", "slug")


def billing_currency_get(*, tenant: Tenant) -> str:
    """The one currency the tenant is billed in (every reader comes here): the one stored for
    it (TenantBilling, set by its first subscription, purchase or contract), else the vendor's
    default (settings.BILLING_DEFAULT_CURRENCY)."""
    return billing_currency_of(tenant_id=tenant.pk)


def billing_currency_of(*, tenant_id: int) -> str:
    """billing_currency_get by the tenant's id."""
    return billing_currency_fixed(tenant_id=tenant_id) or default_currency()


def billing_currency_fixed(*, tenant_id: int) -> str | None:
    """The tenant's currency if it has one yet: the stored one, else (a subscription written
    outside billing's services, which store it) its live subscription's; None before its first
    subscription, purchase or contract. One query, in SQL: metering asks for it on every usage
    event that earned nothing (free credits), where the ORM's building of it cost more than
    the rest of the event's Python (bench/README.md, issue 9)."""
    with connection.cursor() as cursor:
        cursor.execute(_FIXED_CURRENCY, [tenant_id, tenant_id, list(LIVE_SUBSCRIPTION)])
        row = cursor.fetchone()
    return row[0] if row else None


_FIXED_CURRENCY = (
    "SELECT COALESCE("
    "(SELECT b.currency FROM billing_tenantbilling b"
    " WHERE b.tenant_id = %s AND b.currency <> '' LIMIT 1),"
    " (SELECT s.currency FROM billing_subscription s"
    " WHERE s.tenant_id = %s AND s.status = ANY(%s::varchar[]) LIMIT 1))"
)


def default_currency() -> str:
    return str(settings.BILLING_DEFAULT_CURRENCY).upper()


def tenant_billing_get(*, tenant_id: int) -> TenantBilling | None:
    return TenantBilling.objects.filter(tenant_id=tenant_id).first()


def subscription_get_active(*, tenant: Tenant) -> Subscription | None:
    """The tenant's live subscription (active, past due or not yet paid), if any."""
    return (
        Subscription.objects.select_related("plan")
        .filter(tenant=tenant, status__in=LIVE_SUBSCRIPTION)
        .first()
    )


def subscription_grace() -> timedelta:
    """How long a past-due subscription keeps starting workflow runs (the vendor's setting)."""
    return timedelta(days=getattr(settings, "CREDITLINE_SUBSCRIPTION_GRACE_DAYS", 3))


def subscription_renewal_pending(*, tenant_id: int, at: datetime) -> bool:
    """Whether the tenant's next period's credits are on their way: its linked subscription's
    period has ended and its renewal invoice is not paid yet, within the grace days (auto
    top-up waits for them rather than buying a pack)."""
    sub = (
        Subscription.objects.filter(tenant_id=tenant_id, status__in=LIVE_SUBSCRIPTION)
        .exclude(gateway="")
        .first()
    )
    if sub is None or sub.cancel_at_period_end:
        return False
    due_since = sub.past_due_since or sub.current_period_end
    return due_since <= at < due_since + subscription_grace()


def subscription_current_get(*, tenant: Tenant) -> Subscription:
    """The live subscription, else the one that ended last; SubscriptionNotFound if none."""
    found = subscription_get_active(tenant=tenant) or (
        Subscription.objects.select_related("plan")
        .filter(tenant=tenant)
        .order_by("-created_at", "-pk")
        .first()
    )
    if found is None:
        raise SubscriptionNotFound()
    return found


def topup_list(*, tenant: Tenant) -> QuerySet[TopUp]:
    return TopUp.objects.filter(tenant=tenant).select_related("pack")


def contract_invoice_list(
    *, tenant: Tenant, status: str | None = None
) -> QuerySet[ContractInvoice]:
    """The tenant's contract invoices the gateway has issued (a request it has not answered yet
    has no number or page to show)."""
    found = (
        ContractInvoice.objects.filter(tenant=tenant)
        .exclude(status=ContractInvoice.Status.REQUESTED)
        .select_related("contract")
    )
    return found.filter(status=status) if status else found


def auto_topup_policy_get(*, tenant: Tenant) -> AutoTopUpPolicy | None:
    return AutoTopUpPolicy.objects.select_related("pack").filter(tenant=tenant).first()


def alert_thresholds_get(*, tenant_id: int) -> list[int]:
    """The tenant's low-balance thresholds, percent of what it was last topped up to, highest
    first (the defaults until it sets its own)."""
    thresholds = (
        AlertSettings.objects.filter(tenant_id=tenant_id)
        .values_list("thresholds", flat=True)
        .first()
    )
    return default_alert_thresholds() if thresholds is None else sorted(thresholds, reverse=True)


def billing_customer_get(*, tenant_id: int) -> BillingCustomer | None:
    return BillingCustomer.objects.filter(tenant_id=tenant_id).first()


def month_start(at: datetime) -> datetime:
    """The first instant of `at`'s calendar month (UTC): the auto top-up cap resets then."""
    return at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def auto_topup_month_spent(*, tenant_id: int, at: datetime) -> int:
    """Minor units of this calendar month's auto top-ups in the tenant's billing currency,
    pending ones included (an amount in another currency is never added to them)."""
    return auto_topup_spent_in(
        tenant_id=tenant_id,
        since=month_start(at),
        currency=billing_currency_of(tenant_id=tenant_id),
    )


def contract_active_get(*, tenant_id: int, at: datetime) -> Contract | None:
    return (
        Contract.objects.filter(tenant_id=tenant_id, status=Contract.Status.ACTIVE)
        .filter(Q(start_at__lte=at), Q(end_at__gt=at))
        .order_by("-start_at")
        .first()
    )


def spending_cap_minor(*, policy: AutoTopUpPolicy, at: datetime) -> int:
    """The tenant's own auto top-up cap, lowered by a contract's monthly spending cap."""
    contract = contract_active_get(tenant_id=policy.tenant_id, at=at)
    if contract is not None and contract.monthly_spending_cap_minor is not None:
        return min(policy.monthly_cap_minor, contract.monthly_spending_cap_minor)
    return policy.monthly_cap_minor


def billing_contacts(*, tenant_id: int) -> list[str]:
    """Who hears about the tenant's balance: owners, admins and billing members with an email."""
    emails = (
        Membership.objects.filter(tenant_id=tenant_id, role__in=BILLING_ROLES)
        .exclude(user__email="")
        .order_by("user__email")
        .values_list("user__email", flat=True)
    )
    return list(dict.fromkeys(emails))


def cheapest_plan_covering(*, credits: Decimal) -> Plan | None:
    return plan_list().filter(included_credits__gte=credits).first()
