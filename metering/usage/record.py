"""Every write of usage events: debit and record, one event or a batch (validation in
metering.usage.inputs, prices and costs in metering.usage.pricing, both before any lock).

Locks (their order: metering.locks): an event takes only the tenant's credit account row. One
event looks its key up before any lock (a replay costs one read) and leaves the lock to
ledger_debit: two requests racing with one key meet there, where the ledger's own key
("usage:<key>") replays the debit, and the unique constraint on (tenant, idempotency_key)
turns the second event's insert into a replay of the first. A batch takes the lock before its
key lookup, so duplicates across racing batches are sorted out once.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ledger.exceptions import IdempotencyConflict as LedgerIdempotencyConflict
from ledger.exceptions import InsufficientCredits
from ledger.locks import account_lock
from ledger.models import CreditHold
from ledger.selectors import available_get
from ledger.services import (
    DebitRequest,
    DebitResult,
    ledger_debit,
    ledger_debit_many,
    quantize_credits,
)
from metering.exceptions import BatchTooLarge, IdempotencyConflict, InvalidUsage
from metering.models import UsageEvent, WorkflowRun
from metering.usage.inputs import UsageInput, usage_input_validate, usage_request_hash
from metering.usage.pricing import (
    MONEY_QUANTUM,
    ZERO_CREDITS,
    ZERO_MONEY,
    BatchPricer,
    Priced,
    price_one,
)
from tenants.db import bulk_insert
from tenants.exceptions import CreditlineError
from tenants.models import Tenant

BATCH_LIMIT = 1000
LEDGER_SOURCE = "usage_event"


@dataclass(frozen=True)
class RecordResult:
    event: UsageEvent
    replayed: bool


@dataclass(frozen=True)
class BatchItemResult:
    """201 new, 200 replay (event set), or 402 / 409 / 422 (error set, nothing written)."""

    status: int
    event: UsageEvent | None = None
    error: CreditlineError | None = None

    @property
    def replayed(self) -> bool:
        return self.status == 200


# ---------------------------------------------------------------------------------------------
# One event


def usage_event_record(
    *,
    tenant: Tenant,
    data: UsageInput,
    hold: CreditHold | None = None,
    workflow_run: WorkflowRun | None = None,
    step_index: int | None = None,
    now: datetime | None = None,
) -> RecordResult:
    """Price, cost, debit and record one usage event; the same key again replays it.

    - Same key, same body (request hash): the original event, `replayed=True`, nothing charged.
    - Same key, another body: metering IdempotencyConflict (409).
    - InvalidUsage / UnknownAction / UnknownModelClass / RateCardNotFound (422) and
      ledger InsufficientCredits (402) propagate with nothing written.
    - `hold` (keyword, workflow steps): the debit is paid from that ledger hold first.
    - `workflow_run`, `step_index` (keyword, workflow steps): recorded on the event and part of
      the request hash.

    Called alone (the API) it runs in its own durable transaction. Called inside a caller's
    transaction (a workflow step, which has taken the account lock and locked its run) it runs
    in a savepoint of it, so the caller's own rows commit or roll back with the event.
    """
    now = now or timezone.now()
    item = _prepared(
        tenant=tenant, data=data, workflow_run=workflow_run, step_index=step_index, now=now
    )
    # A replay needs no lock. A request racing another with the same key is caught under the
    # ledger's account lock (the debit key "usage:<key>" replays there) and by the event's
    # unique key (IntegrityError below): either way the later one answers with the first's event.
    prior = _prior_events(tenant=tenant, keys=[data.idempotency_key])
    if prior:
        return _replay(prior[data.idempotency_key], item.request_hash)
    if item.error is not None:
        raise item.error
    try:
        with transaction.atomic(durable=not connection.in_atomic_block):
            event = _record_one(
                tenant=tenant,
                item=item,
                hold=hold,
                workflow_run=workflow_run,
                step_index=step_index,
                now=now,
            )
    except (IntegrityError, LedgerIdempotencyConflict):
        # Lost a race with a request of the same key, which has committed by now: answer with
        # its event (a replay, or a 409 if the bodies differ).
        prior = _prior_events(tenant=tenant, keys=[data.idempotency_key])
        if not prior:
            raise
        return _replay(prior[data.idempotency_key], item.request_hash)
    return RecordResult(event=event, replayed=False)


def _prepared(
    *,
    tenant: Tenant,
    data: UsageInput,
    workflow_run: WorkflowRun | None,
    step_index: int | None,
    now: datetime,
) -> Priced:
    """Validated (InvalidUsage raised), hashed, priced and costed (a pricing error kept)."""
    usage_input_validate(data=data, now=now)
    item = Priced(
        data=data,
        request_hash=usage_request_hash(
            data=data, workflow_run=workflow_run, step_index=step_index
        ),
        occurred_at=data.occurred_at or now,
    )
    price_one(tenant=tenant, item=item)
    return item


def _prior_events(*, tenant: Tenant, keys: Sequence[str]) -> dict[str, UsageEvent]:
    events = UsageEvent.objects.select_related("rate_card_version").filter(
        tenant=tenant, idempotency_key__in=keys
    )
    return {event.idempotency_key: event for event in events}


def _replay(event: UsageEvent, request_hash: str) -> RecordResult:
    if event.request_hash != request_hash:
        raise IdempotencyConflict(idempotency_key=event.idempotency_key)
    return RecordResult(event=event, replayed=True)


def _record_one(
    *,
    tenant: Tenant,
    item: Priced,
    hold: CreditHold | None,
    workflow_run: WorkflowRun | None,
    step_index: int | None,
    now: datetime,
) -> UsageEvent:
    debit: DebitResult | None = None
    if item.credits > 0:
        debit = ledger_debit(
            tenant=tenant,
            amount=item.credits,
            idempotency_key=_ledger_key(item.data),
            source_type=LEDGER_SOURCE,
            source_id=item.data.idempotency_key,
            hold=hold,
            now=now,
        )
        available = debit.available_after
    else:
        available = available_get(tenant=tenant)
    event = _event(
        tenant=tenant,
        item=item,
        debit=debit,
        available=available,
        workflow_run=workflow_run,
        step_index=step_index,
        now=now,
    )
    event.save(force_insert=True)
    return event


def _ledger_key(data: UsageInput) -> str:
    return f"usage:{data.idempotency_key}"


def _event(
    *,
    tenant: Tenant,
    item: Priced,
    debit: DebitResult | None,
    available: Decimal,
    now: datetime,
    workflow_run: WorkflowRun | None = None,
    step_index: int | None = None,
) -> UsageEvent:
    data = item.data
    if item.quote is None:
        raise RuntimeError(f"Usage event {data.idempotency_key!r} reached recording unpriced.")
    parts = debit.parts if debit is not None else ()
    return UsageEvent(
        tenant=tenant,
        idempotency_key=data.idempotency_key,
        request_hash=item.request_hash,
        action=data.action,
        model_class=data.model_class or "",
        quantity=quantize_credits(data.quantity),
        occurred_at=item.occurred_at.astimezone(UTC),
        workflow_run=workflow_run,
        step_index=step_index,
        labels=data.labels,
        outcome=data.outcome,
        credits=item.credits,
        rate_card_version=item.quote.version,
        ledger_transaction_id=debit.transaction_id if debit is not None else None,
        buckets=[
            {"bucket_id": p.bucket_id, "credits": f"{p.amount:f}", "policy": p.policy}
            for p in parts
        ],
        input_tokens=data.input_tokens,
        output_tokens=data.output_tokens,
        tool_calls=data.tool_calls,
        vector_reads=data.vector_reads,
        orchestration_runs=data.orchestration_runs,
        cogs_minor=item.cogs,
        cogs_currency=item.cogs_currency,
        revenue_minor=(
            debit.revenue_minor.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)
            if debit is not None
            else ZERO_MONEY
        ),
        revenue_currency=parts[0].currency if parts else "USD",
        available_after=quantize_credits(available),
        created_at=now,
    )


# ---------------------------------------------------------------------------------------------
# A batch


def usage_event_record_batch(
    *, tenant: Tenant, items: Sequence[UsageInput], now: datetime | None = None
) -> list[BatchItemResult]:
    """Up to 1,000 events of one tenant: a result per event, in order; one bad event spoils
    nothing else. Every new event is debited by one ledger_debit_many under one lock
    acquisition and inserted by one bulk insert; prices and costs are looked up once per
    (version, action, model class), not per event."""
    if len(items) > BATCH_LIMIT:
        raise BatchTooLarge(limit=BATCH_LIMIT, received=len(items))
    now = now or timezone.now()
    results: list[BatchItemResult | None] = [None] * len(items)
    pending: list[tuple[int, Priced]] = []
    for index, data in enumerate(items):
        try:
            usage_input_validate(data=data, now=now)
        except InvalidUsage as exc:
            results[index] = BatchItemResult(status=422, error=exc)
            continue
        item = Priced(
            data=data,
            request_hash=usage_request_hash(data=data),
            occurred_at=data.occurred_at or now,
        )
        pending.append((index, item))
    BatchPricer(tenant=tenant).price_all([item for _, item in pending])
    for attempt in range(2):
        try:
            with transaction.atomic(durable=True):
                done = _record_many(tenant=tenant, pending=pending, now=now)
            break
        except IntegrityError:
            # Only if a writer skipped the account lock; the retry sees its rows as replays.
            if attempt:
                raise
    for index, result in done.items():
        results[index] = result
    return [r if r is not None else BatchItemResult(status=500) for r in results]


def _record_many(
    *, tenant: Tenant, pending: list[tuple[int, Priced]], now: datetime
) -> dict[int, BatchItemResult]:
    account_lock(tenant_id=tenant.pk)
    prior = _prior_events(tenant=tenant, keys=[item.data.idempotency_key for _, item in pending])
    done: dict[int, BatchItemResult] = {}
    first_of: dict[str, tuple[int, Priced]] = {}
    repeats: list[tuple[int, Priced, int]] = []
    fresh: list[tuple[int, Priced]] = []
    for index, item in pending:
        key = item.data.idempotency_key
        if key in prior:
            event = prior[key]
            done[index] = (
                BatchItemResult(status=200, event=event)
                if event.request_hash == item.request_hash
                else BatchItemResult(status=409, error=IdempotencyConflict(idempotency_key=key))
            )
        elif key in first_of:
            repeats.append((index, item, first_of[key][0]))
        elif item.error is not None:
            first_of[key] = (index, item)
            done[index] = BatchItemResult(status=422, error=item.error)
        else:
            first_of[key] = (index, item)
            fresh.append((index, item))
    to_insert = _debit_many(tenant=tenant, fresh=fresh, done=done, now=now)
    if to_insert:
        bulk_insert([event for _, event in to_insert])
        for index, event in to_insert:
            done[index] = BatchItemResult(status=201, event=event)
    for index, item, first in repeats:
        original = done[first]
        if item.request_hash != first_of[item.data.idempotency_key][1].request_hash:
            conflict = IdempotencyConflict(idempotency_key=item.data.idempotency_key)
            done[index] = BatchItemResult(status=409, error=conflict)
        elif original.status == 201:
            done[index] = BatchItemResult(status=200, event=original.event)
        else:
            done[index] = original
    return done


def _debit_many(
    *,
    tenant: Tenant,
    fresh: list[tuple[int, Priced]],
    done: dict[int, BatchItemResult],
    now: datetime,
) -> list[tuple[int, UsageEvent]]:
    charged = [(index, item) for index, item in fresh if item.credits > 0]
    # Free events report the balance as it stood at their place in the batch: start from the
    # balance before the batch's debits, then follow each debit's balance after.
    available = available_get(tenant=tenant) if len(charged) < len(fresh) else ZERO_CREDITS
    debits: dict[int, DebitResult | InsufficientCredits] = {}
    if charged:
        requests = [
            DebitRequest(
                amount=item.credits,
                idempotency_key=_ledger_key(item.data),
                source_type=LEDGER_SOURCE,
                source_id=item.data.idempotency_key,
            )
            for _, item in charged
        ]
        outcomes = ledger_debit_many(tenant=tenant, requests=requests, now=now)
        debits = {index: outcome for (index, _), outcome in zip(charged, outcomes, strict=True)}
    to_insert: list[tuple[int, UsageEvent]] = []
    for index, item in fresh:
        outcome = debits.get(index)
        if isinstance(outcome, InsufficientCredits):
            done[index] = BatchItemResult(status=402, error=outcome)
            continue
        if outcome is not None:
            available = outcome.available_after
        event = _event(tenant=tenant, item=item, debit=outcome, available=available, now=now)
        to_insert.append((index, event))
    return to_insert
