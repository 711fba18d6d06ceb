"""Celery tasks of metering: take ids, re-fetch, call one service."""

from celery import shared_task

from metering.exports import usage_export_run, usage_exports_purge
from metering.rollup import usage_rollup_update
from metering.workflows import workflow_expire_idle, workflow_mark_resumable
from tenants.models import Tenant


@shared_task(name="metering.workflow_mark_resumable")
def workflow_mark_resumable_task(tenant_id: int, skip_run_ids: list[int] | None = None) -> int:
    tenant = Tenant.objects.filter(pk=tenant_id).first()
    if tenant is None:
        return 0
    return workflow_mark_resumable(tenant=tenant, skip_run_ids=skip_run_ids or ())


@shared_task(name="metering.workflow_expire_idle")
def workflow_expire_idle_task() -> int:
    return workflow_expire_idle()


@shared_task(name="metering.usage_rollup_update")
def usage_rollup_update_task() -> dict[str, int | None]:
    """Every 30 s: the daily usage rollup (metering/rollup.py), exactly once however often
    and however many copies run."""
    return usage_rollup_update()


@shared_task(name="metering.usage_export_run")
def usage_export_run_task(export_id: int) -> str:
    """A usage CSV too large to make in a request (metering/exports.py)."""
    return usage_export_run(export_id=export_id)


@shared_task(name="metering.usage_exports_purge")
def usage_exports_purge_task() -> int:
    """Hourly: expired usage exports and their files (metering/exports.py)."""
    return usage_exports_purge()
