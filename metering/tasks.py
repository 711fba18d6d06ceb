"""Celery tasks of metering: take ids, re-fetch, call one service."""

from celery import shared_task

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
