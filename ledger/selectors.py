"""Reads of the ledger: balance, buckets, statement, verification. Tenant is always given."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection
from django.db.models import Q, QuerySet, Sum
from django.utils import timezone

from ledger.models import (
    CONSUMPTION_ORDER,
    POLICY_TOTALS,
    ZERO,
    CreditAccount,
    CreditBucket,
    CreditHold,
    LedgerEntry,
    LedgerTransaction,
)
from tenants.models import Tenant

BUCKETS_EMBEDDED = 20


@dataclass(frozen=True)
class Balance:
    as_of: datetime
    available: Decimal
    reserved: Decimal
    overdraft_used: Decimal
    overdraft_limit: Decimal
    # What the tenant was last topped up to (CreditAccount.topped_up_to): the base of
    # "% remaining" for alerts and the soft cap.
    topped_up_to: Decimal
    by_policy: dict[str, Decimal]
    next_expiry_at: datetime | None
    next_expiry_amount: Decimal
    # The first BUCKETS_EMBEDDED live buckets in consumption order (all of them: bucket_list).
    buckets: list[CreditBucket]


def credit_account_get(*, tenant: Tenant) -> CreditAccount:
    """The tenant's account (totals, overdraft limit, topped_up_to, watch level); an unsaved
    default when no money has moved yet."""
    account = CreditAccount.objects.filter(tenant=tenant).first()
    return account or CreditAccount(tenant=tenant)  # never saved


def _live(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def bucket_list(*, tenant: Tenant, include_spent: bool = False) -> QuerySet[CreditBucket]:
    qs = CreditBucket.objects.filter(tenant=tenant, is_overdraft=False)
    if not include_spent:
        qs = qs.filter(unspent=True).filter(_live(timezone.now()))
    return qs.order_by(*CONSUMPTION_ORDER)


def due_by_policy(*, tenant_id: int, at: datetime) -> dict[str, Decimal]:
    """What is left in buckets past their expiry that the sweep has not written down yet, by
    policy: it left the balance at `expires_at`, though the account's totals still hold it.
    Indexed (the prefix of bucket_tenant_spendable_idx up to `at`); usually nothing."""
    rows = (
        CreditBucket.objects.filter(tenant_id=tenant_id, unspent=True, expires_at__lte=at)
        .values("policy")
        .annotate(total=Sum("remaining"))
        .values_list("policy", "total")
    )
    return dict(rows)


# The balance's numbers in one statement (the account's totals, what expired unswept by policy,
# the next expiry): three indexed reads of one snapshot, whatever the number of buckets. No
# account yet: one row of NULLs (no money has moved).
_BALANCE = f"""
SELECT {", ".join(f"a.{name}" for name in POLICY_TOTALS.values())},
       a.overdraft_used, a.reserved, a.overdraft_limit, a.topped_up_to,
       due.policies, due.totals, nx.expires_at, nx.total
  FROM (SELECT 1) AS one
  LEFT JOIN ledger_creditaccount a ON a.tenant_id = %(tenant)s
  CROSS JOIN LATERAL (
        SELECT array_agg(d.policy) AS policies, array_agg(d.total) AS totals
          FROM (SELECT b.policy, sum(b.remaining) AS total FROM ledger_creditbucket b
                 WHERE b.tenant_id = %(tenant)s AND b.unspent AND b.expires_at <= %(now)s
                 GROUP BY b.policy) d
  ) due
  LEFT JOIN LATERAL (
        SELECT b.expires_at, sum(b.remaining) AS total FROM ledger_creditbucket b
         WHERE b.tenant_id = %(tenant)s AND b.unspent AND b.expires_at > %(now)s
         GROUP BY b.expires_at ORDER BY b.expires_at LIMIT 1
  ) nx ON true
"""  # noqa: S608  (column names from POLICY_TOTALS, values as parameters)


def balance_get(*, tenant: Tenant, at: datetime | None = None) -> Balance:
    """The balance from the account's totals: two indexed reads (the numbers, then the first
    buckets) whatever the number of buckets (DESIGN.md, invariant 7)."""
    now = at or timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_BALANCE, {"tenant": tenant.pk, "now": now})
        row = cursor.fetchone()
    n = len(POLICY_TOTALS)
    totals = row[:n]
    overdraft_used, reserved, overdraft_limit, topped_up_to = (
        value if value is not None else ZERO for value in row[n : n + 4]
    )
    policies, due_totals, next_at, next_amount = row[n + 4 :]
    due = dict(zip(policies or [], due_totals or [], strict=True))
    by_policy = {
        policy: (total if total is not None else ZERO) - due.get(policy, ZERO)
        for policy, total in zip(POLICY_TOTALS, totals, strict=True)
    }
    available = sum(by_policy.values(), ZERO) - overdraft_used - reserved
    return Balance(
        as_of=now,
        available=available,
        reserved=reserved,
        overdraft_used=overdraft_used,
        overdraft_limit=overdraft_limit,
        topped_up_to=topped_up_to,
        by_policy=by_policy,
        next_expiry_at=next_at,
        next_expiry_amount=next_amount if next_amount is not None else ZERO,
        buckets=list(bucket_list(tenant=tenant)[:BUCKETS_EMBEDDED]),
    )


_AVAILABLE = """
SELECT a.available - coalesce((
    SELECT sum(b.remaining) FROM ledger_creditbucket b
     WHERE b.tenant_id = a.tenant_id AND b.unspent AND b.expires_at <= %s
), 0)
  FROM ledger_creditaccount a WHERE a.tenant_id = %s
"""


def available_get(*, tenant: Tenant, at: datetime | None = None) -> Decimal:
    """Just the available balance: one indexed query, whatever the number of buckets."""
    with connection.cursor() as cursor:
        cursor.execute(_AVAILABLE, [at or timezone.now(), tenant.pk])
        row = cursor.fetchone()
    return row[0] if row is not None else ZERO


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
    what: str  # "bucket", "hold", "account" (reserved) or "account <total>"
    id: int
    cached: Decimal
    computed: Decimal


def ledger_verify(*, tenant: Tenant | None = None) -> list[Mismatch]:
    """Recompute every bucket from its entries, every hold from its debits and release, and
    each account's totals from its buckets and `reserved` from its open holds; list every
    difference (there must be none)."""
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
    # What each account's totals should be: the buckets' sums of entries, not their caches.
    totals: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    sums = buckets.annotate(computed=Sum("entries__amount")).values_list(
        "tenant_id", "id", "policy", "is_overdraft", "remaining", "computed"
    )
    for tenant_id, pk, policy, is_overdraft, remaining, total in sums.iterator(chunk_size=5000):
        computed = ZERO_4 if total is None else total
        if remaining != computed:
            mismatches.append(Mismatch(tenant_id, "bucket", pk, remaining, computed))
        if is_overdraft:
            totals[tenant_id]["overdraft_used"] -= computed
        else:
            totals[tenant_id][POLICY_TOTALS[policy]] += computed
    open_by_tenant = _verify_holds(holds, mismatches)
    for account in accounts.iterator(chunk_size=5000):
        expected = totals[account.tenant_id]
        expected["reserved"] = open_by_tenant.get(account.tenant_id, ZERO)
        for name in _ACCOUNT_TOTALS:
            cached, computed = getattr(account, name), expected[name]
            if cached != computed:
                what = "account" if name == "reserved" else f"account {name}"
                mismatches.append(Mismatch(account.tenant_id, what, account.pk, cached, computed))
    return mismatches


_ACCOUNT_TOTALS = ("reserved", *POLICY_TOTALS.values(), "overdraft_used")


def _verify_holds(holds: QuerySet[CreditHold], mismatches: list[Mismatch]) -> dict[int, Decimal]:
    """Check each hold against its debits and release; what the open ones hold, by tenant."""
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
    return open_by_tenant


def expired_total(*, tenant: Tenant, at: datetime) -> Decimal:
    """What the expiry sweep that ran at `at` took from the tenant (a positive number)."""
    total = LedgerEntry.objects.filter(tenant=tenant, kind="expiry", created_at=at).aggregate(
        total=Sum("amount")
    )["total"]
    return -(total or ZERO)


def overdraft_owed(*, tenant_id: int, at: datetime | None = None) -> Decimal:
    """What the tenant's contracted overdraft has lent and not had repaid (by a grant) or
    cleared (by an invoice), now or as of `at`: the sum of the overdraft bucket's entries dated
    before it, which is what a contract month ending at `at` left owing."""
    entries = LedgerEntry.objects.filter(tenant_id=tenant_id, bucket__is_overdraft=True)
    if at is not None:
        entries = entries.filter(created_at__lt=at)
    total = entries.aggregate(total=Sum("amount"))["total"]
    return max(-(total or ZERO), ZERO)
