"""Metering's locks: the only place in metering that calls select_for_update.

Lock order, for every metering write that locks a workflow run: the tenant's credit account row
first (ledger.locks.account_lock, the ledger's one lock), then the run rows, by pk. A step's
debit and a hold release take the account lock again inside the same transaction, which already
holds it; so the ledger's own services (a grant, a debit from the usage API) and metering's
(a step, an ending, the idle sweep, marking runs resumable) of one tenant queue on one row in one
order, and cannot deadlock. Call these inside transaction.atomic().
"""

from ledger.locks import account_lock
from metering.models import UsageExport, WorkflowRun
from tenants.models import Tenant


def run_lock(*, tenant: Tenant, run_id: int) -> WorkflowRun:
    """The account row, then the tenant's run `run_id` (WorkflowRun.DoesNotExist if another
    tenant's)."""
    account_lock(tenant_id=tenant.pk)
    return WorkflowRun.objects.select_for_update().get(pk=run_id, tenant=tenant)


def suspended_runs_lock(*, tenant: Tenant) -> list[WorkflowRun]:
    """The account row, then the tenant's suspended runs not yet marked resumable, by pk."""
    account_lock(tenant_id=tenant.pk)
    return list(
        WorkflowRun.objects.select_for_update()
        .filter(tenant=tenant, state=WorkflowRun.State.SUSPENDED, resumable_at__isnull=True)
        .order_by("id")
    )


def usage_export_lock(*, export_id: int) -> UsageExport | None:
    """An export's row while its file is made (metering/exports.py), taken alone, with no
    other lock: None when another transaction holds it (a copy of the job making it) or it is
    gone."""
    return UsageExport.objects.select_for_update(skip_locked=True).filter(pk=export_id).first()
