"""Reads of workflow runs. Tenant is always given."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from ledger.models import ZERO, CreditHold
from metering.models import UsageEvent, WorkflowRun
from tenants.models import Tenant


@dataclass(frozen=True)
class WorkflowDetail:
    run: WorkflowRun
    steps: list[UsageEvent]
    hold_remaining: Decimal  # what is left of the reservation (0 once released)

    @property
    def margin_minor(self) -> Decimal:
        return self.run.revenue_minor - self.run.cogs_minor


def workflow_list(
    *, tenant: Tenant, state: str | None = None, external_id: str | None = None
) -> QuerySet[WorkflowRun]:
    qs = WorkflowRun.objects.filter(tenant=tenant).select_related("hold")
    if state:
        qs = qs.filter(state=state)
    if external_id is not None:
        qs = qs.filter(external_id=external_id)
    return qs


def workflow_steps(*, tenant: Tenant, run: WorkflowRun) -> QuerySet[UsageEvent]:
    return UsageEvent.objects.filter(tenant=tenant, workflow_run=run).order_by("step_index", "id")


def workflow_detail_get(*, tenant: Tenant, run: WorkflowRun) -> WorkflowDetail:
    # Read the hold afresh: the run's cached copy predates a release made while ending it.
    hold = CreditHold.objects.filter(tenant=tenant, pk=run.hold_id).first() if run.hold_id else None
    remaining = hold.remaining if hold is not None and hold.status == hold.Status.OPEN else ZERO
    return WorkflowDetail(
        run=run, steps=list(workflow_steps(tenant=tenant, run=run)), hold_remaining=remaining
    )
