"""Metering's receiver on the one fan-out (tenants/events.py), connected in its ready()."""

from typing import Any

from ledger.events import BalanceChanged
from metering.models import WorkflowRun
from metering.tasks import workflow_mark_resumable_task
from tenants.outbox import outbox_enqueue

# Money moves that can make a suspended run payable again: credits arrived (grant, reversal,
# a positive adjustment) or a reservation gave some back (release).
_CREDITING = frozenset({"grant", "release", "reversal", "adjustment"})


def on_balance_changed(event: BalanceChanged, **_: Any) -> None:
    """Runs in the money move's transaction: one indexed query (two for a release), and an
    outbox message only when the tenant has suspended runs that have not been told yet.

    A release wakes every waiting run but the one whose own hold it gave back (the idle sweep
    releasing a suspended run's hold): that run's refused step already counted those credits,
    since its steps paid from the hold first, so it can pay nothing more than before.
    """
    if event.kind not in _CREDITING or event.amount <= 0:
        return
    waiting = WorkflowRun.objects.filter(
        tenant_id=event.tenant_id,
        state=WorkflowRun.State.SUSPENDED,
        resumable_at__isnull=True,
    )
    skip: list[int] = []
    if event.kind == "release" and event.hold_id is not None:
        skip = list(waiting.filter(hold_id=event.hold_id).values_list("pk", flat=True))
    if waiting.exclude(pk__in=skip).exists():
        outbox_enqueue(
            workflow_mark_resumable_task, {"tenant_id": event.tenant_id, "skip_run_ids": skip}
        )
