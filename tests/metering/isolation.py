"""Tenant A's usage for the isolation walk: an event B must never see in GET /usage-events, and
a run whose steps, complete and cancel B must not reach even with a valid body."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.utils import timezone

from metering.exports import usage_export_request
from metering.models import UsageExport
from metering.services import UsageInput, usage_event_record
from metering.soft_cap import workflow_settings_update
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.isolation import MARKER, register, register_bodies
from tests.metering.factories import fund


@register
def seed_usage(tenant: Tenant) -> dict[str, str]:
    ratecard_seed_example()
    fund(tenant, 100, reference=f"{MARKER}-usage-pack")
    data = UsageInput(
        idempotency_key=f"{MARKER}-usage-event",
        action="chat",
        quantity=Decimal(1),
        labels={"project": MARKER},
    )
    event = usage_event_record(tenant=tenant, data=data).event
    return {"usage_event_key": event.idempotency_key}


@register
def seed_workflows(tenant: Tenant) -> dict[str, str]:
    ratecard_seed_example()
    fund(tenant, 50, reference=f"{MARKER}-workflow-pack")
    run, _ = workflow_start(
        tenant=tenant,
        external_id=f"{MARKER}-run",
        name=f"{MARKER} run",
        reserve_credits=Decimal(5),
        metadata={"ticket": MARKER},
    )
    step = UsageInput(idempotency_key=f"{MARKER}-step-1", action="chat", quantity=Decimal(1))
    workflow_step(tenant=tenant, run=run, data=step)
    return {"workflow_id": str(run.pk), "workflow_external_id": run.external_id}


@register
def seed_usage_export(tenant: Tenant) -> dict[str, str]:
    """A ready CSV of tenant A's events (made in the request: the range is small), whose
    rows carry the marked event."""
    ratecard_seed_example()
    fund(tenant, 10, reference=f"{MARKER}-export-pack")
    usage_event_record(
        tenant=tenant,
        data=UsageInput(idempotency_key=f"{MARKER}-exported", action="chat", quantity=Decimal(1)),
    )
    today = timezone.now().date()
    export = usage_export_request(
        tenant=tenant, kind=UsageExport.Kind.EVENTS, since=today, until=today, user_id=None
    )
    return {"export_id": str(export.pk)}


@register
def seed_workflow_settings(tenant: Tenant) -> dict[str, str]:
    # Small enough to leave the runs above startable (schemathesis starts more).
    workflow_settings_update(tenant=tenant, soft_cap=Decimal("0.4321"))
    return {"soft_cap": "0.4321"}


@register_bodies
def workflow_bodies(values: Mapping[str, str]) -> dict[str, Any]:
    # complete and cancel take no body: an empty one is valid, so B must get 404, not 422.
    return {
        "workflow-steps": {
            "idempotency_key": "isolation-walk-step",
            "action": "chat",
            "quantity": 1,
        },
        "workflow-complete": {},
        "workflow-cancel": {},
    }
