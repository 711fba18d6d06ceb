"""Reads of workflow runs. Tenant is always given."""

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import QuerySet

from ledger.models import ZERO, CreditHold
from metering.models import UsageEvent, WorkflowRun
from tenants.keyset import Key, Page, page_of
from tenants.models import Tenant


@dataclass(frozen=True)
class WorkflowDetail:
    run: WorkflowRun
    steps: list[UsageEvent]
    hold_remaining: Decimal  # what is left of the reservation (0 once released)

    @property
    def margin_minor(self) -> Decimal | None:
        """None unless every step's revenue and COGS are in one currency (never subtracted
        across two)."""
        currencies = {c for s in self.steps for c in (s.revenue_currency, s.cogs_currency)}
        if len(currencies) > 1:
            return None
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


# The customer portal's pages (a fixed number of indexed queries each; tenants/keyset.py).

RUN_ORDER = (Key("created_at", descending=True), Key("id", descending=True))
STEP_ORDER = (Key("step_index", nullable=True), Key("id"))


def workflow_page(
    *, tenant: Tenant, state: str | None = None, after: int | None = None, limit: int = 50
) -> Page[WorkflowRun]:
    """The tenant's runs, newest first (optionally of one state), after the run `after`."""
    qs = WorkflowRun.objects.filter(tenant=tenant).select_related("hold")
    if state:
        qs = qs.filter(state=state)
    return page_of(qs, keys=RUN_ORDER, after=after, limit=limit)


def workflows_waiting(*, tenant: Tenant, limit: int = 20) -> tuple[list[WorkflowRun], int]:
    """Suspended runs, longest waiting first (at most `limit`), and how many there are."""
    qs = WorkflowRun.objects.filter(tenant=tenant, state=WorkflowRun.State.SUSPENDED)
    waiting = list(qs.select_related("hold").order_by("created_at", "id")[:limit])
    return waiting, qs.count()


def workflow_get(*, tenant: Tenant, run_id: int) -> WorkflowRun | None:
    """The tenant's run with this id (None for another tenant's)."""
    return WorkflowRun.objects.filter(tenant=tenant, pk=run_id).select_related("hold").first()


def workflow_step_page(
    *, tenant: Tenant, run: WorkflowRun, after: int | None = None, limit: int = 50
) -> Page[UsageEvent]:
    """A run's steps in order, after the step (event id) `after`."""
    qs = UsageEvent.objects.filter(tenant=tenant, workflow_run=run)
    return page_of(qs, keys=STEP_ORDER, after=after, limit=limit)
