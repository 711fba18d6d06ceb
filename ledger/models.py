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

from tenants.models import TenantKeyedModel
from tenants.tailing import Watermark

ZERO = Decimal("0")

# Consumption order of buckets (DESIGN.md, invariant 5): soonest expiry first (permanent
# buckets, no `expires_at`, last), then free before paid, then oldest grant. The debit draws in
# this order in SQL (ledger/sql/debit.sql, over bucket_tenant_spendable_idx); reads that list
# buckets use this same order.
CONSUMPTION_ORDER: tuple[OrderBy | str, ...] = (
    F("expires_at").asc(nulls_last=True),
    "cost_basis_minor",
    "granted_at",
    "id",
)


def credits_field(**kwargs: Any) -> models.DecimalField:
    """Credits: NUMERIC(18, 4), never float (DESIGN.md, invariant 8)."""
    return models.DecimalField(max_digits=18, decimal_places=4, **kwargs)


class CreditAccount(TenantKeyedModel):
    """One per tenant. Its row lock serializes every money move of that tenant, and it keeps
    the tenant's totals current in the same transaction as every entry, so a balance read is
    O(1) whatever the number of buckets (DESIGN.md, invariant 7; `ledger_verify` checks them).

    The per-policy totals are what is left in the tenant's buckets, including buckets past
    `expires_at` that the sweep has not written down yet: readers subtract those by an indexed
    query (ledger.selectors), so a balance is right before the sweep runs.
    """

    overdraft_limit = credits_field(default=ZERO)
    # Credits held by open reservations.
    reserved = credits_field(default=ZERO)
    monthly_reset_total = credits_field(default=ZERO)
    permanent_total = credits_field(default=ZERO)
    rolling_12m_total = credits_field(default=ZERO)
    # What the contracted overdraft has lent and not been repaid (minus the overdraft bucket).
    overdraft_used = credits_field(default=ZERO)
    # Available as of the last sweep: derived by the database, so it cannot drift.
    available = models.GeneratedField(
        expression=F("monthly_reset_total")
        + F("permanent_total")
        + F("rolling_12m_total")
        - F("overdraft_used")
        - F("reserved"),
        output_field=models.DecimalField(max_digits=20, decimal_places=4),
        db_persist=True,
    )
    # What the tenant was last topped up to: the available balance right after its latest
    # grant, raised (never lowered) by a refund or a positive adjustment; debits, holds and
    # expiry leave it. The base that billing's alerts and metering's soft cap take their
    # percentages of (docs/architecture.md, "Balances in O(1)").
    # (A database default too: the debit's SQL creates an account row without naming it.)
    topped_up_to = credits_field(default=ZERO, db_default=ZERO)
    # The available balance under which another app (billing: alerts, auto top-up) wants a
    # closer look. The ledger keeps and reports it with every change of the balance, so a
    # listener decides from the announcement alone; null: no level set yet (look every time).
    watch_level = credits_field(null=True, blank=True)
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
            models.CheckConstraint(
                condition=Q(
                    monthly_reset_total__gte=0,
                    permanent_total__gte=0,
                    rolling_12m_total__gte=0,
                    overdraft_used__gte=0,
                ),
                name="creditaccount_totals_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(topped_up_to__gte=0), name="creditaccount_topped_up_to_gte_0"
            ),
        ]
        # Staff moves of a tenant's credits (the vendor console's customer page) need these.
        permissions = [
            ("grant_credits", "Can grant credits to a customer"),
            ("adjust_credits", "Can adjust a customer's credits"),
        ]

    def __str__(self) -> str:
        return f"credit account of tenant {self.tenant_id}"


class CreditBucket(TenantKeyedModel):
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
    # `remaining > 0`, kept by PostgreSQL. The partial indexes below are conditioned on this
    # column instead of on `remaining`, so that a debit's update of `remaining` changes no
    # indexed column and is a HOT update (no new index entries; the row stays on its page):
    # only the update that spends a bucket's last credit, or the one that fills it again,
    # touches the indexes. Conditioned on `remaining`, every debit left a dead entry in all
    # four of the bucket's indexes, and a busy tenant's index scans walked thousands of them.
    unspent = models.GeneratedField(
        expression=models.ExpressionWrapper(Q(remaining__gt=0), models.BooleanField()),
        output_field=models.BooleanField(),
        db_persist=True,
    )

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
            # The debit draws in consumption order straight off this index and stops at the
            # buckets it needs; balance reads sum the expired-but-unswept prefix of it and
            # find the next expiry with it.
            # (PostgreSQL sorts NULL last in an ascending index: permanent buckets come last.)
            models.Index(
                fields=["tenant", "expires_at", "cost_basis_minor", "granted_at", "id"],
                condition=Q(unspent=True),
                name="bucket_tenant_spendable_idx",
            ),
            # The one index not led by `tenant`, on purpose: the expiry sweep looks for due
            # buckets across all tenants at once (ledger_expire_due), and a tenant-first index
            # would make that a scan of every tenant. Under Citus it would run per shard.
            models.Index(fields=["expires_at"], condition=Q(unspent=True), name="bucket_due_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_policy_display()} bucket {self.external_reference}"


# The one place that says which account total holds a bucket's credits, by expiry policy
# (the overdraft has its own, `overdraft_used`).
POLICY_TOTALS: dict[str, str] = {
    CreditBucket.Policy.MONTHLY_RESET.value: "monthly_reset_total",
    CreditBucket.Policy.PERMANENT.value: "permanent_total",
    CreditBucket.Policy.ROLLING_12M.value: "rolling_12m_total",
}


class CreditHold(TenantKeyedModel):
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


class LedgerTransaction(TenantKeyedModel, AppendOnlyModel):
    """One money move: its kind, its total, its idempotency key and who or what caused it."""

    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = credits_field()
    # The part of a debit paid out of its hold (the rest came straight from the balance).
    from_hold = credits_field(default=ZERO)
    # Callers prefix the keys they are given ("usage:<key>", "grant:<reference>", ...), which are
    # up to 255 characters themselves: the room above 255 is for a prefix of up to 65.
    idempotency_key = models.CharField(max_length=320)
    source_type = models.CharField(max_length=64, blank=True)
    source_id = models.CharField(max_length=255, blank=True)
    # Foreign keys without single-column indexes: the composites below start with the tenant.
    hold = models.ForeignKey(
        CreditHold, on_delete=models.PROTECT, null=True, blank=True, db_index=False
    )
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        db_index=False,
    )
    # Never looked up by actor; deleting a user (rare) scans instead.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    memo = models.TextField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="ledgertx_tenant_key_uniq"
            ),
        ]
        # No index by time or by source: statements read entries, and nothing looks
        # transactions up so. Every index here is one more write per debit, and with stale
        # statistics a tenant-led index that does not fit the lookup can look as cheap to the
        # planner as the unique key and turn a key probe into a scan of the tenant's rows.
        indexes = [
            # A hold's debits (ledger_verify); a debit's reversals (what is left to refund).
            models.Index(
                fields=["tenant", "hold"],
                condition=Q(hold__isnull=False),
                name="ledgertx_tenant_hold_idx",
            ),
            models.Index(
                fields=["tenant", "reverses"],
                condition=Q(reverses__isnull=False),
                name="ledgertx_tenant_reverses_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.idempotency_key})"


class LedgerEntry(TenantKeyedModel, AppendOnlyModel):
    """One posting: a signed amount on one bucket (or on a hold, for hold and release)."""

    # Foreign keys without single-column indexes: the composites below start with the tenant.
    transaction = models.ForeignKey(
        LedgerTransaction, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    kind = models.CharField(max_length=16, choices=EntryKind.choices)
    amount = credits_field()
    bucket = models.ForeignKey(
        CreditBucket,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        db_index=False,
    )
    hold = models.ForeignKey(
        CreditHold,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="entries",
        db_index=False,
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
            # The statement, newest first (cursor pages on created_at, id).
            models.Index(fields=["tenant", "created_at", "id"], name="entry_tenant_created_idx"),
            # A transaction's entries (a replayed debit, a refund), a bucket's (ledger_verify).
            models.Index(fields=["tenant", "transaction"], name="entry_tenant_tx_idx"),
            models.Index(fields=["tenant", "bucket"], name="entry_tenant_bucket_idx"),
            # The statement filtered by kind, and what one sweep expired.
            models.Index(fields=["tenant", "kind", "created_at"], name="entry_tenant_kind_idx"),
            # A hold's release (ledger_verify).
            models.Index(
                fields=["tenant", "hold"],
                condition=Q(hold__isnull=False),
                name="entry_tenant_hold_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} on bucket {self.bucket_id}"


class DebitDay(TenantKeyedModel):
    """A tenant's debits of one UTC day less the reversals (refunds) dated that day: the
    burn rate's input (ledger/rollup.py keeps it off the hot path; ledger.selectors
    burn_rate_get reads at most 30 rows of it)."""

    day = models.DateField()
    credits = models.DecimalField(max_digits=24, decimal_places=4, default=ZERO)

    class Meta:
        constraints = [
            # The job's upsert key and the burn rate's read (a tenant's last 30 days).
            models.UniqueConstraint(fields=["tenant", "day"], name="debitday_tenant_day_uniq"),
        ]

    def __str__(self) -> str:
        return f"{self.day}: {self.credits}"


class LedgerWatermark(Watermark):
    """How far the ledger's rollups have read their streams (tenants/tailing.py):
    `debit_days` (ledger transactions, into DebitDay)."""
