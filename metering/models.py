"""Usage events and workflow runs. (UsageEvent is added by the metering services work.)"""

from decimal import Decimal

from django.db import models
from django.db.models import Q

from ledger.models import CreditHold
from tenants.models import TenantOwnedModel

ZERO = Decimal("0")


class WorkflowRun(TenantOwnedModel):
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
