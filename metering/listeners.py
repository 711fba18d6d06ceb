"""Metering's receivers on tenants/events.py, connected in its ready(): the one fan-out
(waking suspended runs) and the tenant settings other apps ask for (its soft cap)."""

from collections.abc import Collection, Mapping
from typing import Any

from ledger.events import BalanceChanged
from metering.models import WorkflowRun
from metering.soft_cap import soft_cap_get, workflow_settings_get, workflow_settings_update
from metering.tasks import workflow_mark_resumable_task
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

_SETTINGS = frozenset({"soft_cap", "soft_cap_effective"})

# Money moves that can make a suspended run payable again: credits arrived (grant, reversal,
# a positive adjustment), a reservation gave some back (release), or an invoice cleared what
# the overdraft owed, which gives its room back (settlement; a grant's own settlement is
# announced as the grant).
_CREDITING = frozenset({"grant", "release", "reversal", "adjustment", "settlement"})


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


def on_tenant_settings(
    *, tenant: Tenant, names: Collection[str], changes: Mapping[str, Any], **_: Any
) -> dict[str, Any]:
    """Metering's settings that other apps read: `soft_cap` (the tenant's own, or None) and
    `soft_cap_effective` (the cap in force). A `soft_cap` change comes only from the deprecated
    field of PUT /api/v1/alert-settings (one release; README, "API changes")."""
    if "soft_cap" in changes:
        workflow_settings_update(tenant=tenant, soft_cap=changes["soft_cap"])
    wanted = (set(names) | set(changes)) & _SETTINGS
    if not wanted:
        return {}
    settings = workflow_settings_get(tenant=tenant)
    answer: dict[str, Any] = {"soft_cap": settings.soft_cap}
    if "soft_cap_effective" in wanted:
        answer["soft_cap_effective"] = soft_cap_get(tenant=tenant, settings=settings)
    return {name: answer[name] for name in wanted}
