"""Workflows: the tenant's agent runs with their state, credits and steps. Runs waiting for
credits come first, each with why it stopped and what resumes it; a run's own page lists its
steps. Another tenant's run id is the portal's 404."""

from dataclasses import dataclass
from decimal import Decimal

from django.http import Http404, HttpRequest, HttpResponse

from billing.display import credit_display_get
from ledger.models import ZERO, CreditHold
from ledger.selectors import available_get
from metering.models import WorkflowRun
from metering.workflow_selectors import (
    workflow_get,
    workflow_page,
    workflow_step_page,
    workflows_waiting,
)
from portal.base import PortalView
from portal.paging import PAGE_SIZE, after_param

WAITING_SHOWN = 20
REASONS = {
    "insufficient_credits": "The balance could not pay its next step.",
    "expired": "It stopped reporting steps and timed out.",
}
STATES = [("", "All states"), *WorkflowRun.State.choices]


@dataclass(frozen=True)
class Waiting:
    """A suspended run and what it takes to go on."""

    run: WorkflowRun
    why: str
    # Credits the refused step needs (None: not recorded, a run suspended before the field).
    needs: Decimal | None
    # What it can draw now: the available balance and what is left of its own reservation.
    can_draw: Decimal
    # The smallest top-up that pays the refused step now (0: it can go on already).
    top_up: Decimal | None


def waiting_for(run: WorkflowRun, available: Decimal) -> Waiting:
    hold = run.hold
    held = hold.remaining if hold is not None and hold.status == CreditHold.Status.OPEN else ZERO
    can_draw = max(available, ZERO) + held
    needs = run.suspended_step_credits
    top_up = max(needs - can_draw, ZERO) if needs is not None else None
    why = REASONS.get(run.suspension_reason, run.suspension_reason.replace("_", " ").capitalize())
    return Waiting(run=run, why=why, needs=needs, can_draw=can_draw, top_up=top_up)


class WorkflowsPage(PortalView):
    template_name = "portal/workflows.html"
    section = "workflows"

    def get(self, request: HttpRequest) -> HttpResponse:
        state = request.GET.get("state", "")
        state = state if state in WorkflowRun.State.values else ""
        suspended, waiting_count = workflows_waiting(tenant=self.tenant, limit=WAITING_SHOWN)
        available = available_get(tenant=self.tenant) if suspended else ZERO
        page = workflow_page(
            tenant=self.tenant, state=state or None, after=after_param(request), limit=PAGE_SIZE
        )
        return self.page(
            {
                "waiting": [waiting_for(run, available) for run in suspended],
                "waiting_count": waiting_count,
                "available": available,
                "page": page,
                "state": state,
                "states": STATES,
                "credit_display": credit_display_get(tenant_id=self.tenant.pk),
            }
        )


class WorkflowPage(PortalView):
    template_name = "portal/workflow.html"
    section = "workflows"

    def get(self, request: HttpRequest, workflow_id: int) -> HttpResponse:
        run = workflow_get(tenant=self.tenant, run_id=workflow_id)
        if run is None:
            raise Http404("There is no such workflow run.")
        waiting = None
        if run.state == WorkflowRun.State.SUSPENDED:
            waiting = waiting_for(run, available_get(tenant=self.tenant))
        steps = workflow_step_page(
            tenant=self.tenant, run=run, after=after_param(request), limit=PAGE_SIZE
        )
        return self.page(
            {
                "run": run,
                "waiting": waiting,
                "page": steps,
                "credit_display": credit_display_get(tenant_id=self.tenant.pk),
            }
        )
