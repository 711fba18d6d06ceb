"""Every write of usage events: one path for one event and for a batch (a single event is a
batch of one). Validation in metering.usage.inputs, prices and costs in metering.usage.pricing.

The order of work, cheapest refusal first:
1. validate (a 422 per bad event; no query, no clock);
2. look the keys up: a replay is answered here, before any pricing and before the occurred_at
   window (200, or 409 if the body differs): a retry of an event recorded before the window
   closed gets its original answer;
3. the window, then price and cost the rest from the cached pricer (no query while nothing
   changed);
4. one statement (metering.usage.write): metering's SQL function runs the ledger's debit
   (ledger.services.ledger_debit_statement: the tenant's lock, replays of the ledger's own keys
   "usage:<key>", the draw) and inserts the event rows, sent as one JSON parameter. No model
   instance is made: what was written, and what a replay finds (one statement, which the API
   runs with the request's config stamp), comes back as RecordedEvent rows, which render like
   UsageEvent rows.

Two requests racing with one key meet at the tenant's lock: the later one's debit replays the
ledger key, its event insert hits the (tenant, idempotency_key) unique constraint (which undoes
its statement), and it answers with the first one's event (a replay, or a 409 if the bodies
differ).

A value the validation let through but the database refuses (a DataError: a gap in the
validation, logged as an error) writes nothing; a batch then records its events one at a time,
so only the event that carries it is refused (422 `unstorable_value`) and the rest go in.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import DataError, IntegrityError, connection
from django.utils import timezone

from ledger.exceptions import IdempotencyConflict as LedgerIdempotencyConflict
from ledger.exceptions import InsufficientCredits
from ledger.models import CreditHold
from metering.exceptions import BatchTooLarge, IdempotencyConflict, InvalidUsage, UnstorableValue
from metering.models import WorkflowRun
from metering.refusals import usage_refusal_count
from metering.usage.inputs import (
    UsageInput,
    usage_input_validate,
    usage_request_hash,
    usage_window_check,
)
from metering.usage.pricing import BatchPricer, Priced
from metering.usage.recorded import (
    Event,
    PriorEvents,
    RecordedEvent,
    usage_prior_query,
    usage_prior_read,
)
from metering.usage.write import LEDGER_SOURCE, Step, usage_events_write
from tenants.exceptions import CreditlineError
from tenants.models import Tenant

BATCH_LIMIT = 1000

__all__ = ["BATCH_LIMIT", "LEDGER_SOURCE", "Event", "RecordedEvent"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordResult:
    event: Event
    replayed: bool


@dataclass(frozen=True)
class BatchItemResult:
    """201 new, 200 replay (event set), or 402 / 409 / 422 (error set, nothing written)."""

    status: int
    event: Event | None = None
    error: CreditlineError | None = None

    @property
    def replayed(self) -> bool:
        return self.status == 200


@dataclass(frozen=True)
class _Step:
    """What a workflow step adds to its one event: the run, its hold and the step's index."""

    run: WorkflowRun
    hold: CreditHold | None
    index: int


# ---------------------------------------------------------------------------------------------
# The entry points


def usage_event_record(
    *,
    tenant: Tenant,
    data: UsageInput,
    hold: CreditHold | None = None,
    workflow_run: WorkflowRun | None = None,
    step_index: int | None = None,
    now: datetime | None = None,
    prior: PriorEvents | None = None,
) -> RecordResult:
    """Price, cost, debit and record one usage event; the same key again replays it.

    - Same key, same body (request hash): the original event, `replayed=True`, nothing charged.
    - Same key, another body: metering IdempotencyConflict (409).
    - InvalidUsage / UnknownAction / UnknownModelClass / RateCardNotFound (422) and
      ledger InsufficientCredits (402) propagate with nothing written.
    - `hold`, `workflow_run`, `step_index` (workflow steps): the debit is paid from the hold
      first; the run and index are recorded on the event and part of its request hash.

    Called alone (the API) it is one statement, its own transaction; inside a caller's
    transaction (a workflow step) in a savepoint of it, so the caller's rows commit or roll
    back with it. `prior`: the key's lookup, when the caller made it (the API, with the
    request's config stamp); used only if it covers this tenant and key.
    """
    now = now or timezone.now()
    usage_input_validate(data=data)
    step = _Step(run=workflow_run, hold=hold, index=step_index or 0) if workflow_run else None
    (result,) = _record(tenant=tenant, items=[data], now=now, step=step, prior=prior)
    _count_refused(tenant=tenant, results=[result])
    if result.error is not None:
        raise result.error
    if result.event is None:
        raise RuntimeError(f"Usage event {data.idempotency_key!r} came back without a result.")
    return RecordResult(event=result.event, replayed=result.replayed)


def usage_event_record_batch(
    *,
    tenant: Tenant,
    items: Sequence[UsageInput],
    now: datetime | None = None,
    prior: PriorEvents | None = None,
) -> list[BatchItemResult]:
    """Up to 1,000 events of one tenant: a result per event, in order; one bad event spoils
    nothing else. The new events are debited and inserted by one statement; prices and costs
    are looked up once per (version, action, model class). `prior` as usage_event_record's."""
    if len(items) > BATCH_LIMIT:
        raise BatchTooLarge(limit=BATCH_LIMIT, received=len(items))
    now = now or timezone.now()
    results: list[BatchItemResult | None] = [None] * len(items)
    valid: list[tuple[int, UsageInput]] = []
    for index, data in enumerate(items):
        try:
            usage_input_validate(data=data)
        except InvalidUsage as exc:
            results[index] = BatchItemResult(status=422, error=exc)
        else:
            valid.append((index, data))
    recorded = _record(
        tenant=tenant, items=[data for _, data in valid], now=now, step=None, prior=prior
    )
    for (index, _), result in zip(valid, recorded, strict=True):
        results[index] = result
    _count_refused(tenant=tenant, results=recorded)
    return [r if r is not None else BatchItemResult(status=500) for r in results]


def _count_refused(*, tenant: Tenant, results: Sequence[BatchItemResult]) -> None:
    """402s for want of credits, counted after the transaction they were refused in (a
    workflow step's, which commits the suspension), off the successful path."""
    refused = sum(1 for result in results if result.status == 402)
    if refused:
        usage_refusal_count(tenant_id=tenant.pk, reason=InsufficientCredits.code, count=refused)


# ---------------------------------------------------------------------------------------------
# The one path


def _record(
    *,
    tenant: Tenant,
    items: Sequence[UsageInput],
    now: datetime,
    step: _Step | None,
    prior: PriorEvents | None = None,
) -> list[BatchItemResult]:
    """Validated events: replays answered, the rest priced, debited and inserted."""
    try:
        try:
            return _record_once(tenant=tenant, items=items, now=now, step=step, prior=prior)
        except (IntegrityError, LedgerIdempotencyConflict):
            # Lost a race with a request of the same key, which has committed by now: the
            # retry finds its event in the key lookup and answers with it.
            return _record_once(tenant=tenant, items=items, now=now, step=step)
    except DataError as exc:
        # Nothing was written (see the module docstring): one event at a time, so that only
        # the one the database refuses is refused.
        if len(items) > 1:
            return [
                result
                for data in items
                for result in _record(tenant=tenant, items=[data], now=now, step=step)
            ]
        logger.error("usage event %r refused by the database: %s", items[0].idempotency_key, exc)
        return [BatchItemResult(status=422, error=UnstorableValue())]


def _record_once(
    *,
    tenant: Tenant,
    items: Sequence[UsageInput],
    now: datetime,
    step: _Step | None,
    prior: PriorEvents | None = None,
) -> list[BatchItemResult]:
    hashes = [
        usage_request_hash(
            data=data,
            workflow_run=step.run if step else None,
            step_index=step.index if step else None,
        )
        for data in items
    ]
    keys = [data.idempotency_key for data in items]
    if prior is None or not prior.covers(tenant_id=tenant.pk, keys=keys):
        prior = _prior_events(tenant=tenant, keys=keys)
    found = prior.events
    done: dict[int, BatchItemResult] = {}
    first_of: dict[str, int] = {}
    fresh: list[tuple[int, Priced]] = []
    for index, (data, request_hash) in enumerate(zip(items, hashes, strict=True)):
        key = data.idempotency_key
        if key in found:
            done[index] = _replayed(found[key], request_hash)
        elif key not in first_of:
            first_of[key] = index
            try:
                usage_window_check(data=data, now=now)
            except InvalidUsage as exc:
                done[index] = BatchItemResult(status=422, error=exc)
                continue
            fresh.append(
                (index, Priced(data=data, request_hash=request_hash, occurred_at=_at(data, now)))
            )
    BatchPricer(tenant=tenant).price_all([item for _, item in fresh])
    for index, item in fresh:
        if item.error is not None:
            done[index] = BatchItemResult(status=422, error=item.error)
    done.update(_write(tenant, [(i, item) for i, item in fresh if item.error is None], now, step))
    for index, (data, request_hash) in enumerate(zip(items, hashes, strict=True)):
        if index not in done:  # a repeat of a key earlier in this batch
            first = first_of[data.idempotency_key]
            done[index] = _repeat(done[first], hashes[first], request_hash, data.idempotency_key)
    return [done[index] for index in range(len(items))]


def _write(
    tenant: Tenant, payable: list[tuple[int, Priced]], now: datetime, step: _Step | None
) -> dict[int, BatchItemResult]:
    if not payable:
        return {}
    written = usage_events_write(
        tenant=tenant,
        payable=[item for _, item in payable],
        now=now,
        step=Step(run_id=step.run.pk, hold=step.hold, index=step.index) if step else None,
    )
    return {
        index: BatchItemResult(status=402, error=outcome)
        if isinstance(outcome, InsufficientCredits)
        else BatchItemResult(status=201, event=outcome)
        for (index, _), outcome in zip(payable, written, strict=True)
    }


def _at(data: UsageInput, now: datetime) -> datetime:
    return (data.occurred_at or now).astimezone(UTC)


def _prior_events(*, tenant: Tenant, keys: Sequence[str]) -> PriorEvents:
    """The events already recorded with these keys: one statement (usually no row)."""
    sql, params = usage_prior_query(tenant_id=tenant.pk, keys=keys)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return usage_prior_read(tenant_id=tenant.pk, keys=keys, rows=rows)


def _replayed(event: Event, request_hash: str) -> BatchItemResult:
    if event.request_hash != request_hash:
        conflict = IdempotencyConflict(idempotency_key=event.idempotency_key)
        return BatchItemResult(status=409, error=conflict)
    return BatchItemResult(status=200, event=event)


def _repeat(
    first: BatchItemResult, first_hash: str, request_hash: str, key: str
) -> BatchItemResult:
    """A key repeated in one batch: the first one's result again (a new event is replayed),
    or 409 if the bodies differ."""
    if request_hash != first_hash:
        conflict = IdempotencyConflict(idempotency_key=key)
        return BatchItemResult(status=409, error=conflict)
    if first.status == 201:
        return BatchItemResult(status=200, event=first.event)
    return first
