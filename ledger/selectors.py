"""Reads of the ledger: balance, buckets, statement, verification. Tenant is always given."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from ledger.models import (
    CONSUMPTION_ORDER,
    ZERO,
    CreditAccount,
    CreditBucket,
    CreditHold,
    LedgerEntry,
    LedgerTransaction,
)
from tenants.models import Tenant


@dataclass(frozen=True)
class Balance:
    as_of: datetime
    available: Decimal
    reserved: Decimal
    overdraft_used: Decimal
    overdraft_limit: Decimal
    granted_unexpired: Decimal
    by_policy: dict[str, Decimal]
    next_expiry_at: datetime | None
    next_expiry_amount: Decimal
    soft_cap: Decimal
    alert_thresholds: list[int]
    buckets: list[CreditBucket]


def credit_account_get(*, tenant: Tenant) -> CreditAccount:
    """The tenant's account settings; an unsaved default when no money has moved yet."""
    account = CreditAccount.objects.filter(tenant=tenant).first()
    return account or CreditAccount(tenant=tenant, alert_thresholds=[20, 10])  # never saved


def bucket_list(*, tenant: Tenant, include_spent: bool = False) -> QuerySet[CreditBucket]:
    qs = CreditBucket.objects.filter(tenant=tenant, is_overdraft=False)
    if not include_spent:
        qs = qs.filter(remaining__gt=0).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        )
    return qs.order_by(*CONSUMPTION_ORDER)


def balance_get(*, tenant: Tenant, at: datetime | None = None) -> Balance:
    now = at or timezone.now()
    account = credit_account_get(tenant=tenant)
    unexpired = CreditBucket.objects.filter(tenant=tenant, is_overdraft=False).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now)
    )
    granted = unexpired.aggregate(total=Sum("granted"))["total"] or ZERO
    buckets = list(unexpired.filter(remaining__gt=0).order_by(*CONSUMPTION_ORDER))
    overdraft = (
        CreditBucket.objects.filter(tenant=tenant, is_overdraft=True)
        .values_list("remaining", flat=True)
        .first()
        or ZERO
    )
    by_policy: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for policy in CreditBucket.Policy.values:
        by_policy[policy] = ZERO
    for bucket in buckets:
        by_policy[bucket.policy] += bucket.remaining
    expiring = [b for b in buckets if b.expires_at is not None]
    next_at = expiring[0].expires_at if expiring else None
    next_amount = sum((b.remaining for b in expiring if b.expires_at == next_at), ZERO)
    available = sum((b.remaining for b in buckets), ZERO) + overdraft - account.reserved
    return Balance(
        as_of=now,
        available=available,
        reserved=account.reserved,
        overdraft_used=-overdraft,
        overdraft_limit=account.overdraft_limit,
        granted_unexpired=granted,
        by_policy=dict(by_policy),
        next_expiry_at=next_at,
        next_expiry_amount=next_amount,
        soft_cap=soft_cap_of(account=account, granted_unexpired=granted),
        alert_thresholds=list(account.alert_thresholds),
        buckets=buckets,
    )


def soft_cap_of(*, account: CreditAccount, granted_unexpired: Decimal) -> Decimal:
    """The tenant's soft cap in credits: its own setting, else the lowest alert threshold's
    share of the unexpired credits granted."""
    if account.soft_cap is not None:
        return account.soft_cap
    lowest = min(account.alert_thresholds or [10])
    return (granted_unexpired * lowest / 100).quantize(Decimal("0.0001"))


def available_get(*, tenant: Tenant, at: datetime | None = None) -> Decimal:
    """Just the available balance, in one query plus the account row."""
    now = at or timezone.now()
    total = (
        CreditBucket.objects.filter(tenant=tenant)
        .filter(
            Q(is_overdraft=True)
            | Q(remaining__gt=0, expires_at__isnull=True)
            | Q(remaining__gt=0, expires_at__gt=now)
        )
        .aggregate(total=Sum("remaining"))["total"]
        or ZERO
    )
    reserved = (
        CreditAccount.objects.filter(tenant=tenant).values_list("reserved", flat=True).first()
        or ZERO
    )
    return total - reserved


def entry_list(
    *,
    tenant: Tenant,
    kinds: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[LedgerEntry]:
    """The statement, newest first."""
    qs = LedgerEntry.objects.filter(tenant=tenant).select_related("transaction", "bucket")
    if kinds:
        qs = qs.filter(kind__in=kinds)
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    return qs.order_by("-created_at", "-id")


def transaction_get(*, tenant: Tenant, idempotency_key: str) -> LedgerTransaction | None:
    return LedgerTransaction.objects.filter(tenant=tenant, idempotency_key=idempotency_key).first()


ZERO_4 = Decimal("0.0000")


@dataclass(frozen=True)
class Mismatch:
    tenant_id: int
    what: str  # "bucket", "hold" or "account"
    id: int
    cached: Decimal
    computed: Decimal


def ledger_verify(*, tenant: Tenant | None = None) -> list[Mismatch]:
    """Recompute every bucket from its entries, every hold from its debits and release, and
    each account's `reserved` from its open holds; list every difference (there must be none)."""
    buckets = CreditBucket.objects.all()
    holds = CreditHold.objects.all()
    accounts = CreditAccount.objects.all()
    if tenant is not None:
        buckets, holds, accounts = (
            buckets.filter(tenant=tenant),
            holds.filter(tenant=tenant),
            accounts.filter(tenant=tenant),
        )
    mismatches = []
    sums = buckets.annotate(computed=Sum("entries__amount")).values_list(
        "tenant_id", "id", "remaining", "computed"
    )
    for tenant_id, pk, remaining, total in sums.iterator(chunk_size=5000):
        computed = ZERO_4 if total is None else total
        if remaining != computed:
            mismatches.append(Mismatch(tenant_id, "bucket", pk, remaining, computed))
    spent = dict(
        LedgerTransaction.objects.filter(hold__in=holds)
        .values("hold_id")
        .annotate(total=Sum("from_hold"))
        .values_list("hold_id", "total")
    )
    released = dict(
        LedgerEntry.objects.filter(hold__in=holds, kind="release")
        .values("hold_id")
        .annotate(total=Sum("amount"))
        .values_list("hold_id", "total")
    )
    open_by_tenant: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for hold in holds.iterator(chunk_size=5000):
        computed = hold.amount - spent.get(hold.pk, ZERO) - released.get(hold.pk, ZERO)
        if hold.remaining != computed:
            mismatches.append(Mismatch(hold.tenant_id, "hold", hold.pk, hold.remaining, computed))
        if hold.status == CreditHold.Status.OPEN:
            open_by_tenant[hold.tenant_id] += computed
    for account in accounts.iterator(chunk_size=5000):
        computed = open_by_tenant.get(account.tenant_id, ZERO)
        if account.reserved != computed:
            mismatches.append(
                Mismatch(account.tenant_id, "account", account.pk, account.reserved, computed)
            )
    return mismatches


def granted_unexpired_get(*, tenant: Tenant, at: datetime | None = None) -> Decimal:
    """Credits granted in the tenant's unexpired buckets (the denominator of "% remaining")."""
    now = at or timezone.now()
    total = (
        CreditBucket.objects.filter(tenant=tenant, is_overdraft=False)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .aggregate(total=Sum("granted"))["total"]
    )
    return total or ZERO


def soft_cap_get(
    *, tenant: Tenant, account: CreditAccount | None = None, at: datetime | None = None
) -> tuple[Decimal, Decimal]:
    """(available, soft cap) without listing buckets: what starting a workflow run asks."""
    account = account or credit_account_get(tenant=tenant)
    available = available_get(tenant=tenant, at=at)
    if account.soft_cap is not None:
        return available, account.soft_cap
    granted = granted_unexpired_get(tenant=tenant, at=at)
    return available, soft_cap_of(account=account, granted_unexpired=granted)


def expired_total(*, tenant: Tenant, at: datetime) -> Decimal:
    """What the expiry sweep that ran at `at` took from the tenant (a positive number)."""
    total = LedgerEntry.objects.filter(tenant=tenant, kind="expiry", created_at=at).aggregate(
        total=Sum("amount")
    )["total"]
    return -(total or ZERO)
