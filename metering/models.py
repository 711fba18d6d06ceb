"""Usage events, workflow runs and a tenant's workflow settings (its soft cap)."""

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q

from ledger.models import CreditHold
from tenants.models import TenantKeyedModel
from tenants.tailing import Watermark

ZERO = Decimal("0")


class WorkflowRun(TenantKeyedModel):
    """A durable agent run: running -> suspended -> running -> completed | failed | cancelled."""

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        SUSPENDED = "suspended", "Suspended"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    external_id = models.CharField(max_length=200)
    name = models.CharField(max_length=200, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.RUNNING)
    # Credits reserved at start (a ledger hold); steps are paid from it first.
    hold = models.ForeignKey(CreditHold, on_delete=models.PROTECT, null=True, blank=True)
    reserved_credits = models.DecimalField(max_digits=18, decimal_places=4, default=ZERO)
    # Running totals over the run's charged steps, kept in the step's transaction.
    credits_charged = models.DecimalField(max_digits=18, decimal_places=4, default=ZERO)
    cogs_minor = models.DecimalField(max_digits=20, decimal_places=8, default=ZERO)
    revenue_minor = models.DecimalField(max_digits=20, decimal_places=8, default=ZERO)
    steps_charged = models.PositiveIntegerField(default=0)
    suspension_reason = models.CharField(max_length=64, blank=True)
    # The idempotency key of the step that could not be paid: the integration resumes there.
    suspended_at_step = models.CharField(max_length=255, blank=True)
    # What that step needed (its charge), so the portal can say what top-up resumes the run.
    suspended_step_credits = models.DecimalField(
        max_digits=18, decimal_places=4, null=True, blank=True
    )
    resumable_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "external_id"], name="workflowrun_tenant_external_uniq"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "state", "created_at"], name="workflowrun_state_idx"),
            # The portal's list of runs, newest first, a page at a time (tenants/keyset.py).
            models.Index(
                fields=["tenant", "-created_at", "-id"], name="workflowrun_tenant_created_idx"
            ),
            models.Index(
                fields=["tenant", "last_activity_at"],
                condition=Q(state__in=["running", "suspended"]),
                name="workflowrun_live_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"run {self.external_id} ({self.state})"

    @property
    def is_ended(self) -> bool:
        return self.state in {self.State.COMPLETED, self.State.FAILED, self.State.CANCELLED}


class UsageEvent(TenantKeyedModel):
    """One priced report of work an agent did: its credits, its cost to the vendor (COGS) and
    the revenue of the credits it spent. Idempotent on (tenant, idempotency_key), forever."""

    class Outcome(models.TextChoices):
        SUCCESS = "success", "Success"
        FAILURE = "failure", "Failure"

    idempotency_key = models.CharField(max_length=255)
    # SHA-256 of the canonical request body: same key + same hash is a replay, else a conflict.
    request_hash = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    model_class = models.CharField(max_length=64, blank=True, default="")
    quantity = models.DecimalField(max_digits=18, decimal_places=4)
    occurred_at = models.DateTimeField()
    # Foreign keys without single-column indexes: usageevent_run_idx serves a run's events;
    # versions and ledger transactions are never deleted and events are not looked up by them.
    workflow_run = models.ForeignKey(
        WorkflowRun,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="usage_events",
        db_index=False,
    )
    step_index = models.PositiveIntegerField(null=True, blank=True)
    # Customer-side attribution (end user, project, ...), free-form.
    labels = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SUCCESS)
    credits = models.DecimalField(max_digits=18, decimal_places=4)
    rate_card_version = models.ForeignKey(
        "ratecards.RateCardVersion", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # None when nothing was charged (a free action, or an outcome-priced one that failed).
    ledger_transaction = models.ForeignKey(
        "ledger.LedgerTransaction",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The buckets the debit drew from, as the API showed them: [{bucket_id, credits, policy}].
    buckets = models.JSONField(default=list, blank=True)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    tool_calls = models.PositiveIntegerField(default=0)
    vector_reads = models.PositiveBigIntegerField(default=0)
    orchestration_runs = models.PositiveIntegerField(default=0)
    # GPU time in seconds, to the millisecond. db_default: rows written by older code (and the
    # benchmarks' seeds) that do not name the column hold 0.
    gpu_seconds = models.DecimalField(
        max_digits=15, decimal_places=3, default=Decimal(0), db_default=Decimal(0)
    )
    # Minor units, unrounded (8 places) so sums over millions of events stay exact enough.
    cogs_minor = models.DecimalField(max_digits=20, decimal_places=8, default=ZERO)
    cogs_currency = models.CharField(max_length=3, default="USD")
    # credits x the cost basis of the buckets drawn (ledger DebitResult.revenue_minor).
    revenue_minor = models.DecimalField(max_digits=20, decimal_places=8, default=ZERO)
    revenue_currency = models.CharField(max_length=3, default="USD")
    # The tenant's available balance right after this event's debit.
    available_after = models.DecimalField(max_digits=18, decimal_places=4)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"], name="usageevent_tenant_key_uniq"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="usageevent_quantity_gt_0"),
            models.CheckConstraint(condition=Q(credits__gte=0), name="usageevent_credits_gte_0"),
            models.CheckConstraint(condition=Q(cogs_minor__gte=0), name="usageevent_cogs_gte_0"),
            models.CheckConstraint(
                condition=Q(gpu_seconds__gte=0), name="usageevent_gpu_seconds_gte_0"
            ),
        ]
        # Every index is written by every event (the hot path): each one here earns it.
        indexes = [
            # Margin and usage reports over a time window.
            models.Index(fields=["tenant", "occurred_at"], name="usageevent_occurred_idx"),
            # A run's events; most events belong to no run, so they are left out of it.
            models.Index(
                fields=["tenant", "workflow_run"],
                condition=Q(workflow_run__isnull=False),
                name="usageevent_run_idx",
            ),
            # The API list pages by (created_at, id), newest first (an `action` filter reads
            # it too, filtering as it goes).
            models.Index(fields=["tenant", "created_at", "id"], name="usageevent_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.action} x{self.quantity} ({self.idempotency_key})"


class WorkflowSettings(TenantKeyedModel):
    """A tenant's soft cap: new workflow runs are refused while the available balance is under
    it. Null (or no row): the default, the lowest alert threshold's share of what the tenant
    was last topped up to (metering/soft_cap.py)."""

    soft_cap = models.DecimalField(max_digits=18, decimal_places=4, null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "workflow settings"
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="workflowsettings_tenant_uniq"),
            models.CheckConstraint(
                condition=Q(soft_cap__gte=0), name="workflowsettings_soft_cap_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"workflow settings of tenant {self.tenant_id}"


class UsageDay(TenantKeyedModel):
    """The daily usage rollup (metering/rollup.py): a tenant's events of one UTC day, action,
    model class, workflow name ('' outside a run) and cost currency. Kept off the hot path by
    an incremental job; the portal's and the console's usage reads come from here, never from
    the events. `day` is the day an event was recorded (its debit's date, so a range's credits
    equal the statement's); `credits` is net of the refunds dated that day."""

    day = models.DateField()
    action = models.CharField(max_length=64)
    model_class = models.CharField(max_length=64, blank=True, default="")
    workflow = models.CharField(max_length=200, blank=True, default="")
    cogs_currency = models.CharField(max_length=3)
    events = models.BigIntegerField(default=0)
    quantity = models.DecimalField(max_digits=24, decimal_places=4, default=ZERO)
    # Charged less refunded (a day of refunds only may be negative).
    credits = models.DecimalField(max_digits=24, decimal_places=4, default=ZERO)
    credits_refunded = models.DecimalField(max_digits=24, decimal_places=4, default=ZERO)
    # The vendor's cost, as the events store it (minor units of cogs_currency, 8 places).
    cogs_minor = models.DecimalField(max_digits=28, decimal_places=8, default=ZERO)
    # Events reported without any cost component: their cost is unknown, not zero.
    events_without_cost = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            # The job's upsert key; it also serves every read (a tenant's days in a range).
            models.UniqueConstraint(
                fields=["tenant", "day", "action", "model_class", "workflow", "cogs_currency"],
                name="usageday_key_uniq",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.action}/{self.model_class}: {self.credits}"


class UsageRefusalDay(TenantKeyedModel):
    """Refusals counted per tenant, UTC day and reason (`insufficient_credits`: a 402 on an
    event, a step or a run's reservation; `soft_cap_reached`: a run refused at the soft cap).
    Written after the refused request, never by a successful one."""

    day = models.DateField()
    reason = models.CharField(max_length=32)
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "reason"], name="usagerefusalday_key_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.reason}: {self.count}"


class RollupWatermark(Watermark):
    """How far metering's rollup has read its streams (tenants/tailing.py): `usage_events`
    (new events) and `usage_refunds` (the ledger's reversals of event debits)."""


class UsageExport(TenantKeyedModel):
    """A CSV export of a tenant's usage over UTC days: its events, or the daily totals of the
    rollup. Made by metering/exports.py, in the request when it is small and by a Celery job
    otherwise; the file is kept in the database as UsageExportPart rows (why: exports.py)."""

    class Kind(models.TextChoices):
        EVENTS = "events", "Usage events"
        DAYS = "days", "Daily totals"

    class Status(models.TextChoices):
        PENDING = "pending", "Preparing"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    since = models.DateField()
    until = models.DateField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    rows = models.BigIntegerField(default=0)
    size = models.BigIntegerField(default=0)  # characters of CSV
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(since__lte=F("until")), name="usageexport_range"),
        ]
        indexes = [
            # The usage page's recent exports and the purge of a tenant's expired ones.
            models.Index(fields=["tenant", "created_at"], name="usageexport_tenant_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.since}..{self.until} ({self.status})"


class UsageExportPart(TenantKeyedModel):
    """One piece of an export's CSV text, in order of `number` (about 1 MB each)."""

    export = models.ForeignKey(
        UsageExport, on_delete=models.CASCADE, related_name="parts", db_index=False
    )
    number = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        constraints = [
            # The download reads an export's parts in order through it.
            models.UniqueConstraint(
                fields=["tenant", "export", "number"], name="usageexportpart_key_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"part {self.number} of export {self.export_id}"
