"""Durable workflow runs: every write (DESIGN.md, "Running out: durable workflows").

State machine: running -> suspended -> running -> completed | failed | cancelled.

Every service here runs in one durable transaction that takes metering.locks first (its
docstring has the lock order), so a step, an ending, the idle sweep and the ledger's own
services of the same tenant run one at a time and see each other's writes.
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from ledger.exceptions import InsufficientCredits
from ledger.locks import account_lock
from ledger.models import CreditHold
from ledger.selectors import available_get
from ledger.services import ledger_hold_place, ledger_hold_release, quantize_credits
from metering.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    InvalidUsage,
    ResumeFromStep,
    SoftCapReached,
    SubscriptionPastDue,
    WorkflowSuspended,
)
from metering.locks import run_lock, suspended_runs_lock
from metering.models import UsageEvent, WorkflowRun
from metering.refusals import usage_refusal_count
from metering.services import Event, UsageInput, usage_event_record, usage_input_validate
from metering.soft_cap import soft_cap_get
from metering.usage.inputs import NOT_CLEAN_JSON, clean_json
from tenants.events import publish
from tenants.models import Tenant

State = WorkflowRun.State
LIVE = (State.RUNNING, State.SUSPENDED)

# Which states each ending may leave from. A suspended run may be cancelled or failed (the
# integration gives up) but not completed: the step it stopped at was never paid.
_ENDINGS: dict[str, tuple[str, ...]] = {
    State.COMPLETED: (State.RUNNING,),
    State.CANCELLED: LIVE,
    State.FAILED: LIVE,
}


def workflow_ttl() -> timedelta:
    return timedelta(minutes=getattr(settings, "CREDITLINE_WORKFLOW_TTL_MINUTES", 60))


def hold_reference(run: WorkflowRun) -> str:
    return f"workflow:{run.pk}"


# ---------------------------------------------------------------------------------------------
# Start


def workflow_start(
    *,
    tenant: Tenant,
    external_id: str,
    name: str = "",
    reserve_credits: Decimal | None = None,
    metadata: dict[str, Any] | None = None,
) -> tuple[WorkflowRun, bool]:
    """Start a run, or return the one already started with this `external_id` (created=False);
    the same `external_id` with another name, reservation or metadata is a conflict.

    Refused (SubscriptionPastDue) while the tenant's subscription is unpaid past its grace
    days (`Tenant.runs_refused_from`, set by billing, so metering asks billing nothing).
    Refused (SoftCapReached) when the available balance is under the tenant's soft cap
    (metering/soft_cap.py), or
    when it leaves nothing to pay with whatever the cap: available plus the overdraft limit not
    above zero (a tenant with no credits has a default cap of 0). With
    `reserve_credits`, a ledger hold takes them out of the available balance in the same
    transaction (InsufficientCredits when they are not there: then no run exists either).
    """
    try:
        return _start(
            tenant=tenant,
            external_id=external_id,
            name=name,
            reserve_credits=reserve_credits,
            metadata=metadata,
        )
    except (SoftCapReached, InsufficientCredits) as exc:
        # Counted for the vendor's plan fit, after the refused transaction rolled back.
        usage_refusal_count(tenant_id=tenant.pk, reason=exc.code)
        raise


def _start(
    *,
    tenant: Tenant,
    external_id: str,
    name: str,
    reserve_credits: Decimal | None,
    metadata: dict[str, Any] | None,
) -> tuple[WorkflowRun, bool]:
    reserve = quantize_credits(reserve_credits) if reserve_credits is not None else None
    metadata = metadata or {}
    if not isinstance(metadata, dict) or not clean_json(metadata):
        raise InvalidUsage("metadata", NOT_CLEAN_JSON)
    with transaction.atomic(durable=True):
        account = account_lock(tenant_id=tenant.pk)
        existing = WorkflowRun.objects.filter(tenant=tenant, external_id=external_id).first()
        if existing is not None:
            _refuse_another_start(existing, name=name, reserve=reserve, metadata=metadata)
            return existing, False
        # Read now, not from the (possibly cached) tenant the caller holds.
        refused_from = (
            Tenant.objects.filter(pk=tenant.pk).values_list("runs_refused_from", flat=True).get()
        )
        if refused_from is not None and refused_from <= timezone.now():
            raise SubscriptionPastDue(refused_from=refused_from.isoformat())
        available = available_get(tenant=tenant)
        cap = soft_cap_get(tenant=tenant, topped_up_to=account.topped_up_to)
        # Also refused when nothing at all can be paid, whatever the cap (never topped up, the
        # default cap is 0): an empty tenant must not start a run whose first step is bound to
        # suspend. A contracted overdraft is room its debits may still use.
        if available + account.overdraft_limit <= 0 or available < cap:
            raise SoftCapReached(
                available=str(quantize_credits(available)), soft_cap=str(quantize_credits(cap))
            )
        now = timezone.now()
        run = WorkflowRun.objects.create(
            tenant=tenant,
            external_id=external_id,
            name=name,
            metadata=metadata,
            last_activity_at=now,
        )
        if reserve:
            run.hold = ledger_hold_place(
                tenant=tenant, amount=reserve, reference=hold_reference(run)
            )
            run.reserved_credits = reserve
            run.save(update_fields=["hold", "reserved_credits", "updated_at"])
    return run, True


def _refuse_another_start(
    run: WorkflowRun, *, name: str, reserve: Decimal | None, metadata: dict[str, Any]
) -> None:
    """A start replayed with another body is a conflict, as a usage event's key is."""
    differs = [
        field
        for field, given, kept in [
            ("name", name, run.name),
            ("reserve_credits", reserve or Decimal(0), run.reserved_credits),
            ("metadata", metadata, run.metadata),
        ]
        if given != kept
    ]
    if differs:
        raise IdempotencyConflict(
            f"This external_id already started a run with another {', '.join(differs)}.",
            external_id=run.external_id,
        )


# ---------------------------------------------------------------------------------------------
# Steps


@dataclass(frozen=True)
class StepResult:
    run: WorkflowRun
    event: Event
    replayed: bool


def workflow_step(*, tenant: Tenant, run: WorkflowRun, data: UsageInput) -> StepResult:
    """Charge one step of a run as an idempotent usage event (`data.idempotency_key`).

    A step already recorded on this run is a replay: its original result, charged nothing,
    whatever the run's state. A new step is paid from the run's hold first, then from the
    balance; when it cannot be paid the run is suspended at this step (nothing charged) and
    WorkflowSuspended is raised after that state has committed. A suspended run takes the step
    it stopped at first (another new step: ResumeFromStep, 409), and once that one is paid it
    is running again. New steps on an ended run: IllegalTransition.
    """
    usage_input_validate(data=data)  # before the key is looked up
    refused: InsufficientCredits | None = None
    with transaction.atomic(durable=True):
        run = run_lock(tenant=tenant, run_id=run.pk)
        key = data.idempotency_key
        prior = UsageEvent.objects.filter(tenant=tenant, idempotency_key=key).first()
        if prior is not None and prior.workflow_run_id != run.pk:
            raise IdempotencyConflict(
                "This idempotency key was already used outside this workflow run.",
                idempotency_key=data.idempotency_key,
            )
        if prior is None:
            _refuse_new_step(run=run, key=key)
        hold = _open_hold(run)
        try:
            # Inside this transaction usage_event_record runs in a savepoint: a refused step
            # leaves nothing of itself behind, only the suspension written below.
            recorded = usage_event_record(
                tenant=tenant,
                data=data,
                hold=hold,
                workflow_run=run,
                # Part of the event's request hash: a replay must name the original index.
                step_index=prior.step_index if prior else run.steps_charged + 1,
            )
        except InsufficientCredits as exc:
            refused = exc
            _suspend(run=run, step_key=data.idempotency_key, refused=exc)
        else:
            if not recorded.replayed:
                _count_step(run=run, event=recorded.event)
    if refused is not None:
        raise WorkflowSuspended(
            state=run.state,
            workflow_id=run.pk,
            resume_from_step=run.suspended_at_step,
            required=refused.details.get("required"),
            available=refused.details.get("available"),
        )
    return StepResult(run=run, event=recorded.event, replayed=recorded.replayed)


def _refuse_new_step(*, run: WorkflowRun, key: str) -> None:
    """A new step on an ended run, or on a suspended one other than the step it stopped at."""
    if run.is_ended:
        raise IllegalTransition(
            f"The workflow run is {run.state}: it takes no new steps.",
            state=run.state,
            workflow_id=run.pk,
        )
    if run.state == State.SUSPENDED and run.suspended_at_step and key != run.suspended_at_step:
        raise ResumeFromStep(
            state=run.state, workflow_id=run.pk, resume_from_step=run.suspended_at_step
        )


def _count_step(*, run: WorkflowRun, event: Event) -> None:
    run.credits_charged += event.credits
    run.cogs_minor += event.cogs_minor
    run.revenue_minor += event.revenue_minor
    run.steps_charged += 1
    run.last_activity_at = timezone.now()
    fields = ["credits_charged", "cogs_minor", "revenue_minor", "steps_charged", "last_activity_at"]
    if run.state == State.SUSPENDED:
        run.state = State.RUNNING
        run.suspension_reason = ""
        run.suspended_at_step = ""
        run.suspended_step_credits = None
        fields += ["state", "suspension_reason", "suspended_at_step", "suspended_step_credits"]
    run.save(update_fields=[*fields, "updated_at"])


def _suspend(*, run: WorkflowRun, step_key: str, refused: InsufficientCredits) -> None:
    run.state = State.SUSPENDED
    run.suspension_reason = refused.code
    run.suspended_at_step = step_key
    required = refused.details.get("required")
    run.suspended_step_credits = Decimal(required) if required is not None else None
    # Resumable again only after the next grant that lands after this refusal.
    run.resumable_at = None
    run.last_activity_at = timezone.now()
    run.save(
        update_fields=[
            "state",
            "suspension_reason",
            "suspended_at_step",
            "suspended_step_credits",
            "resumable_at",
            "last_activity_at",
            "updated_at",
        ]
    )
    publish(
        tenant_id=run.tenant_id,
        type="workflow.suspended",
        data={
            **_event_data(run),
            "reason": run.suspension_reason,
            "required": refused.details.get("required"),
            "available": refused.details.get("available"),
        },
    )


def _event_data(run: WorkflowRun) -> dict[str, Any]:
    return {
        "workflow_id": run.pk,
        "external_id": run.external_id,
        "state": run.state,
        "resume_from_step": run.suspended_at_step,
        "credits_charged": str(run.credits_charged),
        "steps_charged": run.steps_charged,
    }


# ---------------------------------------------------------------------------------------------
# Endings


def workflow_complete(*, tenant: Tenant, run: WorkflowRun) -> WorkflowRun:
    """Only from running; what is left of the hold goes back to the balance."""
    return _end(tenant=tenant, run_id=run.pk, to=State.COMPLETED)


def workflow_cancel(*, tenant: Tenant, run: WorkflowRun) -> WorkflowRun:
    return _end(tenant=tenant, run_id=run.pk, to=State.CANCELLED)


def workflow_fail(*, tenant: Tenant, run: WorkflowRun) -> WorkflowRun:
    return _end(tenant=tenant, run_id=run.pk, to=State.FAILED)


def _end(
    *, tenant: Tenant, run_id: int, to: str, now: datetime | None = None, reason: str = ""
) -> WorkflowRun:
    with transaction.atomic(durable=True):
        run = run_lock(tenant=tenant, run_id=run_id)
        if run.state == to:
            return run  # a retried ending changes nothing
        if run.state not in _ENDINGS[to]:
            raise IllegalTransition(
                f"A {run.state} workflow run cannot become {to}.",
                state=run.state,
                workflow_id=run.pk,
            )
        _close(run=run, to=to, now=now or timezone.now(), reason=reason)
    return run


def _close(*, run: WorkflowRun, to: str, now: datetime, reason: str) -> None:
    if run.hold is not None:
        ledger_hold_release(tenant=run.tenant, hold=run.hold)
    run.state = to
    run.ended_at = now
    fields = ["state", "ended_at", "updated_at"]
    if reason:
        run.suspension_reason = reason
        fields.append("suspension_reason")
    run.save(update_fields=fields)


def workflow_expire_idle(*, now: datetime | None = None, batch_size: int = 200) -> int:
    """The sweep over runs idle longer than CREDITLINE_WORKFLOW_TTL_MINUTES; returns how many
    runs it changed. Safe to run twice at once: each run is re-checked under the locks.

    - A running run that went idle is failed ("expired") and its hold released: the
      integration is gone.
    - A suspended run is never failed: it waits for credits as long as it takes (DESIGN.md,
      "Running out"). Only its hold, if it still has one, is released, so an abandoned run does
      not keep credits locked; it stays suspended and resumable, and its later steps are paid
      from the balance.
    """
    now = now or timezone.now()
    cutoff = now - workflow_ttl()
    expired = 0
    while True:
        due = list(
            WorkflowRun.objects.filter(
                Q(state=State.RUNNING)
                | Q(state=State.SUSPENDED, hold__status=CreditHold.Status.OPEN),
                last_activity_at__lt=cutoff,
            )
            .select_related("tenant")
            .order_by("last_activity_at", "id")[:batch_size]
        )
        if not due:
            return expired
        for candidate in due:
            expired += _expire_one(run=candidate, cutoff=cutoff, now=now)


def _expire_one(*, run: WorkflowRun, cutoff: datetime, now: datetime) -> int:
    with transaction.atomic(durable=True):
        run = run_lock(tenant=run.tenant, run_id=run.pk)
        if run.last_activity_at >= cutoff:
            return 0  # a step got there first
        if run.state == State.RUNNING:
            _close(run=run, to=State.FAILED, now=now, reason="expired")
            return 1
        hold = _open_hold(run) if run.state == State.SUSPENDED else None
        if hold is not None:
            ledger_hold_release(tenant=run.tenant, hold=hold)
            return 1
    return 0  # ended, or its hold released, by someone else meanwhile


def _open_hold(run: WorkflowRun) -> CreditHold | None:
    """The run's reservation while it can still pay steps: not once the run ended or the
    sweep released it."""
    hold = run.hold
    if hold is None or run.is_ended or hold.status != CreditHold.Status.OPEN:
        return None
    return hold


# ---------------------------------------------------------------------------------------------
# Resumable


def workflow_mark_resumable(*, tenant: Tenant, skip_run_ids: Collection[int] = ()) -> int:
    """After credits arrived: every suspended run of the tenant not yet told becomes
    resumable, and `workflow.resumable` is published for each (after commit). `skip_run_ids`
    stay waiting, untold: runs the news is no news to (metering.listeners)."""
    now = timezone.now()
    with transaction.atomic(durable=True):
        skip = set(skip_run_ids)
        runs = [run for run in suspended_runs_lock(tenant=tenant) if run.pk not in skip]
        if not runs:
            return 0
        available = available_get(tenant=tenant, at=now)
        for run in runs:
            run.resumable_at = now
            # Told to come back: the TTL that releases a suspended run's hold starts again.
            run.last_activity_at = now
            run.updated_at = now
        WorkflowRun.objects.bulk_update(runs, ["resumable_at", "last_activity_at", "updated_at"])
        for run in runs:
            publish(
                tenant_id=tenant.pk,
                type="workflow.resumable",
                data={**_event_data(run), "available": str(available)},
            )
    return len(runs)
