"""The money truth: credit accounts, buckets, holds, transactions and their entries.

A LedgerTransaction groups the entries of one money move (a debit split across three buckets
is one transaction, three entries) and carries its idempotency key. Entries are append-only:
the ORM refuses to change them and a PostgreSQL trigger refuses UPDATE and DELETE.
"""

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.expressions import OrderBy

from tenants.models import TenantOwnedModel

ZERO = Decimal("0")

# Consumption order of buckets (DESIGN.md, invariant 5): soonest expiry first, then free
# before paid, then oldest grant. Permanent buckets (no `expires_at`) come last on every
# backend: PostgreSQL sorts NULL last by default but SQLite, the embedded default, first.
CONSUMPTION_ORDER: tuple[OrderBy | str, ...] = (
    F("expires_at").asc(nulls_last=True),
    "cost_basis_minor",
    "granted_at",
    "id",
)


def credits_field(**kwargs: Any) -> models.DecimalField:
    """Credits: NUMERIC(18, 4), never float (DESIGN.md, invariant 8)."""
    return models.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class CreditAccount(TenantOwnedModel):
    """One per tenant. Its row lock serializes every money move of that tenant."""

    overdraft_limit = credits_field(default=ZERO)
    # Credits held by open reservations; cached here, changed under the account lock.
    reserved = credits_field(default=ZERO)
    # Low-balance alert thresholds, percent of unexpired granted credits, e.g. [20, 10].
    alert_thresholds = models.JSONField(default=list)
    # New workflow runs are refused below this many available credits; null = the lowest
    # alert threshold's share of granted credits.
    soft_cap = credits_field(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="creditaccount_tenant_uniq"),
            models.CheckConstraint(
                condition=Q(overdraft_limit__gte=0), name="creditaccount_overdraft_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reserved__gte=0), name="creditaccount_reserved_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"credit account of tenant {self.tenant_id}"


class CreditBucket(TenantOwnedModel):
    class Source(models.TextChoices):
        SUBSCRIPTION = "subscription", "Subscription"
        TOPUP = "topup", "Top-up"
        CONTRACT = "contract", "Contract"
        PROMOTION = "promotion", "Promotion"
        ADJUSTMENT = "adjustment", "Adjustment"
        REFUND = "refund", "Refund"
        OVERDRAFT = "overdraft", "Overdraft"

    class Policy(models.TextChoices):
        MONTHLY_RESET = "monthly_reset", "Monthly reset"
        PERMANENT = "permanent", "Permanent"
        ROLLING_12M = "rolling_12m", "Rolling 12 months"

    source = models.CharField(max_length=16, choices=Source.choices)
    policy = models.CharField(max_length=16, choices=Policy.choices)
    granted = credits_field()
    remaining = credits_field()
    granted_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # What was paid for the bucket, and so per credit (minor units, unrounded): revenue of a
    # debit is credits x the cost basis of the buckets it drew from. Free credits: 0.
    price_minor = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="USD")
    cost_basis_minor = models.DecimalField(max_digits=20, decimal_places=8, default=ZERO)
    external_reference = models.CharField(max_length=200)
    is_overdraft = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_reference"], name="bucket_tenant_reference_uniq"
            ),
            models.UniqueConstraint(
                fields=["tenant"],
                condition=Q(is_overdraft=True),
                name="bucket_one_overdraft_per_tenant",
            ),
            models.CheckConstraint(
                condition=Q(granted__gt=0) | Q(is_overdraft=True), name="bucket_granted_gt_0"
            ),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) | Q(is_overdraft=True), name="bucket_remaining_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(remaining__lte=models.F("granted")), name="bucket_remaining_lte_granted"
            ),
            models.CheckConstraint(condition=Q(price_minor__gte=0), name="bucket_price_gte_0"),
            models.CheckConstraint(
                condition=Q(policy="permanent", expires_at__isnull=True)
                | (~Q(policy="permanent") & Q(expires_at__isnull=False)),
                name="bucket_expiry_matches_policy",
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "expires_at"],
                condition=Q(remaining__gt=0),
                name="bucket_tenant_spendable_idx",
            ),
            # The one index not led by `tenant`, on purpose: the expiry sweep looks for due
            # buckets across all tenants at once (ledger_expire_due), and a tenant-first index
            # would make that a scan of every tenant. Under Citus it would run per shard.
            models.Index(
                fields=["expires_at"], condition=Q(remaining__gt=0), name="bucket_due_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_policy_display()} bucket {self.external_reference}"


class CreditHold(TenantOwnedModel):
    """Credits reserved for one purpose (a workflow run): taken from the available balance at
    once, spent by debits that name the hold, and released when the purpose ends."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        RELEASED = "released", "Released"

    reference = models.CharField(max_length=200)
    amount = credits_field()
    remaining = credits_field()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "reference"], name="hold_tenant_reference_uniq"
            ),
            models.CheckConstraint(condition=Q(amount__gt=0), name="hold_amount_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0, remaining__lte=models.F("amount")),
                name="hold_remaining_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"hold {self.reference} ({self.remaining}/{self.amount})"


class EntryKind(models.TextChoices):
    GRANT = "grant", "Grant"
    DEBIT = "debit", "Debit"
    EXPIRY = "expiry", "Expiry"
    REVERSAL = "reversal", "Reversal"
    ADJUSTMENT = "adjustment", "Adjustment"
    HOLD = "hold", "Hold"
    RELEASE = "release", "Release"
    SETTLEMENT = "settlement", "Overdraft settlement"


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError(f"{self.model.__name__} rows are append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{self.model.__name__} rows are append-only.")


class AppendOnlyModel(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise PermissionError(f"{type(self).__name__} rows are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError(f"{type(self).__name__} rows are append-only.")


class LedgerTransaction(TenantOwnedModel, AppendOnlyModel):
    """One money move: its kind, its total, its idempotency key and who or what caused it."""

    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = credits_field()
    # The part of a debit paid out of its hold (the rest came straight from the balance).
    from_hold = credits_field(default=ZERO)
    idempotency_key = models.CharField(max_length=255)
    source_type = models.CharField(max_length=64, blank=True)
    source_id = models.CharField(max_length=255, blank=True)
    hold = models.ForeignKey(CreditHold, on_delete=models.PROTECT, null=True, blank=True)
    reverses = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversals"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    memo = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="ledgertx_tenant_key_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="ledgertx_tenant_created_idx"),
            models.Index(fields=["tenant", "source_type", "source_id"], name="ledgertx_source_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.idempotency_key})"


class LedgerEntry(TenantOwnedModel, AppendOnlyModel):
    """One posting: a signed amount on one bucket (or on a hold, for hold and release)."""

    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries"
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = credits_field()
    bucket = models.ForeignKey(
        CreditBucket, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    hold = models.ForeignKey(
        CreditHold, on_delete=models.PROTECT, null=True, blank=True, related_name="entries"
    )
    # The tenant's available balance right after this entry (unexpired buckets less holds).
    balance_after = credits_field()
    created_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "ledger entries"
        constraints = [
            models.CheckConstraint(condition=~Q(amount=0), name="entry_amount_ne_0"),
            models.CheckConstraint(
                condition=Q(bucket__isnull=False) | Q(hold__isnull=False),
                name="entry_has_bucket_or_hold",
            ),
            models.UniqueConstraint(
                fields=["tenant", "bucket"],
                condition=Q(kind="expiry"),
                name="entry_one_expiry_per_bucket",
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "created_at", "id"], name="entry_tenant_created_idx"),
            models.Index(fields=["tenant", "bucket"], name="entry_tenant_bucket_idx"),
            models.Index(fields=["tenant", "kind", "created_at"], name="entry_tenant_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on bucket {self.bucket_id}"
