"""Metering's listeners on the ledger's one fan-out (CREDITLINE_BALANCE_LISTENERS)."""

from ledger.events import BalanceChanged
from metering.models import WorkflowRun
from metering.tasks import workflow_mark_resumable_task

# Money moves that can make a suspended run payable again: credits arrived (grant, reversal,
# a positive adjustment) or a reservation gave some back (release).
_CREDITING = frozenset({"grant", "release", "reversal", "adjustment"})


def on_balance_changed(event: BalanceChanged) -> None:
    """Runs after commit in the request's process: one indexed query, and a task only when
    the tenant has suspended runs that have not been told yet."""
    if event.kind not in _CREDITING or event.amount <= 0:
        return
    waiting = WorkflowRun.objects.filter(
        tenant_id=event.tenant_id,
        state=WorkflowRun.State.SUSPENDED,
        resumable_at__isnull=True,
    ).exists()
    if waiting:
        workflow_mark_resumable_task.delay(event.tenant_id)
