"""Every write of usage events: one path for one event and for a batch (a single event is a
batch of one). Validation in metering.usage.inputs, prices and costs in metering.usage.pricing.

The order of work, cheapest refusal first:
1. validate (a 422 per bad event; no query, no clock);
2. look the keys up: a replay is answered here, before any pricing and before the occurred_at
   window (200, or 409 if the body differs): a retry of an event recorded before the window
   closed gets its original answer;
3. the window, then price and cost the rest from the cached pricer (no query while nothing
   changed);
4. in one transaction: the ledger's debit (one SQL call, ledger.services.ledger_debit_many:
   the tenant's lock, replays of the ledger's own keys "usage:<key>", the draw) and the event
   rows, inserted by one statement from column arrays. No model instance is made: what was
   written comes back as RecordedEvent rows, which render like UsageEvent rows.

Two requests racing with one key meet at the tenant's lock: the later one's debit replays the
ledger key, its event insert hits the (tenant, idempotency_key) unique constraint, and it
answers with the first one's event (a replay, or a 409 if the bodies differ).

A value the validation let through but the database refuses (a DataError: a gap in the
validation, logged as an error) writes nothing; a batch then records its events one at a time,
so only the event that carries it is refused (422 `unstorable_value`) and the rest go in.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import DataError, IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from ledger.exceptions import IdempotencyConflict as LedgerIdempotencyConflict
from ledger.exceptions import InsufficientCredits
from ledger.models import CreditHold
from ledger.selectors import available_get
from ledger.services import DebitRequest, DebitResult, ledger_debit_many, quantize_credits
from metering.exceptions import BatchTooLarge, IdempotencyConflict, InvalidUsage, UnstorableValue
from metering.models import UsageEvent, WorkflowRun
from metering.refusals import usage_refusal_count
from metering.usage.inputs import (
    UsageInput,
    usage_input_validate,
    usage_request_hash,
    usage_window_check,
)
from metering.usage.pricing import MONEY_QUANTUM, ZERO_MONEY, BatchPricer, Priced
from ratecards.models import RateCardVersion
from tenants.events import tenant_settings_get
from tenants.exceptions import CreditlineError
from tenants.models import Tenant

BATCH_LIMIT = 1000
LEDGER_SOURCE = "usage_event"

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RecordedEvent:
    """A usage event as it was just written: the attributes of a UsageEvent row that the API
    and workflows read, without building the model (`pk` is set by the insert)."""

    pk: int
    idempotency_key: str
    request_hash: str
    action: str
    model_class: str
    quantity: Decimal
    occurred_at: datetime
    outcome: str
    labels: dict[str, Any]
    workflow_run_id: int | None
    step_index: int | None
    credits: Decimal
    rate_card_version: RateCardVersion
    ledger_transaction_id: int | None
    buckets: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    tool_calls: int
    vector_reads: int
    orchestration_runs: int
    gpu_seconds: Decimal
    cogs_minor: Decimal
    cogs_currency: str
    revenue_minor: Decimal
    revenue_currency: str
    available_after: Decimal
    created_at: datetime


Event = UsageEvent | RecordedEvent


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
) -> RecordResult:
    """Price, cost, debit and record one usage event; the same key again replays it.

    - Same key, same body (request hash): the original event, `replayed=True`, nothing charged.
    - Same key, another body: metering IdempotencyConflict (409).
    - InvalidUsage / UnknownAction / UnknownModelClass / RateCardNotFound (422) and
      ledger InsufficientCredits (402) propagate with nothing written.
    - `hold`, `workflow_run`, `step_index` (workflow steps): the debit is paid from the hold
      first; the run and index are recorded on the event and part of its request hash.

    Called alone (the API) it runs in its own transaction; inside a caller's transaction (a
    workflow step) in a savepoint of it, so the caller's rows commit or roll back with it.
    """
    now = now or timezone.now()
    usage_input_validate(data=data)
    step = _Step(run=workflow_run, hold=hold, index=step_index or 0) if workflow_run else None
    (result,) = _record(tenant=tenant, items=[data], now=now, step=step)
    _count_refused(tenant=tenant, results=[result])
    if result.error is not None:
        raise result.error
    if result.event is None:
        raise RuntimeError(f"Usage event {data.idempotency_key!r} came back without a result.")
    return RecordResult(event=result.event, replayed=result.replayed)


def usage_event_record_batch(
    *, tenant: Tenant, items: Sequence[UsageInput], now: datetime | None = None
) -> list[BatchItemResult]:
    """Up to 1,000 events of one tenant: a result per event, in order; one bad event spoils
    nothing else. Every new event is debited by one ledger call and inserted by one
    statement; prices and costs are looked up once per (version, action, model class)."""
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
    recorded = _record(tenant=tenant, items=[data for _, data in valid], now=now, step=None)
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
    *, tenant: Tenant, items: Sequence[UsageInput], now: datetime, step: _Step | None
) -> list[BatchItemResult]:
    """Validated events: replays answered, the rest priced, debited and inserted."""
    try:
        try:
            return _record_once(tenant=tenant, items=items, now=now, step=step)
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
    *, tenant: Tenant, items: Sequence[UsageInput], now: datetime, step: _Step | None
) -> list[BatchItemResult]:
    hashes = [
        usage_request_hash(
            data=data,
            workflow_run=step.run if step else None,
            step_index=step.index if step else None,
        )
        for data in items
    ]
    prior = _prior_events(tenant=tenant, keys=[data.idempotency_key for data in items])
    done: dict[int, BatchItemResult] = {}
    first_of: dict[str, int] = {}
    fresh: list[tuple[int, Priced]] = []
    for index, (data, request_hash) in enumerate(zip(items, hashes, strict=True)):
        key = data.idempotency_key
        if key in prior:
            done[index] = _replayed(prior[key], request_hash)
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
    payable = []
    for index, item in fresh:
        if item.error is not None:
            done[index] = BatchItemResult(status=422, error=item.error)
        else:
            payable.append((index, item))
    if payable:
        with transaction.atomic(durable=not connection.in_atomic_block):
            done.update(_debit_and_insert(tenant=tenant, payable=payable, now=now, step=step))
    for index, (data, request_hash) in enumerate(zip(items, hashes, strict=True)):
        if index not in done:  # a repeat of a key earlier in this batch
            first = first_of[data.idempotency_key]
            done[index] = _repeat(done[first], hashes[first], request_hash, data.idempotency_key)
    return [done[index] for index in range(len(items))]


def _at(data: UsageInput, now: datetime) -> datetime:
    return (data.occurred_at or now).astimezone(UTC)


_KNOWN_KEYS = (
    "SELECT idempotency_key FROM metering_usageevent"
    " WHERE tenant_id = %s AND idempotency_key = ANY(%s::varchar[])"
)


def _prior_events(*, tenant: Tenant, keys: Sequence[str]) -> dict[str, UsageEvent]:
    """The events already recorded with these keys. Usually there are none: one plain probe
    of the unique index says so; the models are loaded only for the keys found."""
    with connection.cursor() as cursor:
        cursor.execute(_KNOWN_KEYS, [tenant.pk, list(keys)])
        known = [row[0] for row in cursor.fetchall()]
    if not known:
        return {}
    events = UsageEvent.objects.select_related("rate_card_version").filter(
        tenant=tenant, idempotency_key__in=known
    )
    return {event.idempotency_key: event for event in events}


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


def _debit_and_insert(
    *, tenant: Tenant, payable: list[tuple[int, Priced]], now: datetime, step: _Step | None
) -> dict[int, BatchItemResult]:
    charged = [(index, item) for index, item in payable if item.credits > 0]
    # Free events report the balance as it stood at their place in the batch: start from the
    # balance before the batch's debits, then follow each debit's balance after.
    available = available_get(tenant=tenant) if len(charged) < len(payable) else Decimal(0)
    debits: dict[int, DebitResult | InsufficientCredits] = {}
    if charged:
        requests = [
            DebitRequest(
                amount=item.credits,
                idempotency_key=f"usage:{item.data.idempotency_key}",
                source_type=LEDGER_SOURCE,
                source_id=item.data.idempotency_key,
                hold=step.hold if step else None,
            )
            for _, item in charged
        ]
        outcomes = ledger_debit_many(tenant=tenant, requests=requests, now=now)
        debits = {index: outcome for (index, _), outcome in zip(charged, outcomes, strict=True)}
    done: dict[int, BatchItemResult] = {}
    rows: list[tuple[int, RecordedEvent]] = []
    currency = _TenantCurrency(tenant)
    for index, item in payable:
        outcome = debits.get(index)
        if isinstance(outcome, InsufficientCredits):
            done[index] = BatchItemResult(status=402, error=outcome)
            continue
        if outcome is not None:
            available = outcome.available_after
        event = _event(
            item=item, debit=outcome, available=available, now=now, step=step, currency=currency
        )
        rows.append((index, event))
    _insert(tenant=tenant, events=[event for _, event in rows])
    for index, event in rows:
        done[index] = BatchItemResult(status=201, event=event)
    return done


def _event(
    *,
    item: Priced,
    debit: DebitResult | None,
    available: Decimal,
    now: datetime,
    step: _Step | None,
    currency: "_TenantCurrency",
) -> RecordedEvent:
    data = item.data
    if item.quote is None:
        raise RuntimeError(f"Usage event {data.idempotency_key!r} reached recording unpriced.")
    parts = debit.parts if debit is not None else ()
    revenue_minor, revenue_currency = _revenue(debit, currency)
    return RecordedEvent(
        pk=0,
        idempotency_key=data.idempotency_key,
        request_hash=item.request_hash,
        action=data.action,
        model_class=data.model_class or "",
        quantity=quantize_credits(data.quantity),
        occurred_at=item.occurred_at,
        outcome=data.outcome,
        labels=data.labels,
        workflow_run_id=step.run.pk if step else None,
        step_index=step.index if step else None,
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
        gpu_seconds=data.gpu_seconds,
        cogs_minor=item.cogs,
        cogs_currency=item.cogs_currency,
        revenue_minor=revenue_minor,
        revenue_currency=revenue_currency,
        available_after=quantize_credits(available),
        created_at=now,
    )


class _TenantCurrency:
    """The tenant's billing currency (billing's `billing_currency` setting, "" when no app owns
    one), asked once per batch and only if an event earned nothing."""

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.value: str | None = None

    def __call__(self) -> str:
        if self.value is None:
            found = tenant_settings_get(tenant=self.tenant, names={"billing_currency"})
            self.value = str(found.get("billing_currency", ""))
        return self.value


def _revenue(debit: DebitResult | None, currency: _TenantCurrency) -> tuple[Decimal, str]:
    """The event's revenue and its currency: what the paid buckets it drew were bought for,
    in their currency; an event that earned nothing (free credits, a free action) is in the
    tenant's currency. Two currencies are never added: a debit across paid buckets of two
    (only buckets older than one currency per tenant) records the first drawn, and logs the
    rest (the ledger's entries keep every part in its own currency for reconciliation)."""
    revenue = debit.revenue if debit is not None else {}
    if not revenue:
        return ZERO_MONEY, currency()
    first, money = next(iter(revenue.items()))
    if len(revenue) > 1:
        logger.error(
            "Debit %s drew paid credits in %s: its event records the %s part only.",
            debit.transaction_id if debit is not None else None,
            sorted(revenue),
            first,
        )
    return money.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP), first


# The event table's columns as the insert sends them: (column, array type, attribute).
_COLUMNS = (
    ("idempotency_key", "varchar", "idempotency_key"),
    ("request_hash", "varchar", "request_hash"),
    ("action", "varchar", "action"),
    ("model_class", "varchar", "model_class"),
    ("quantity", "numeric", "quantity"),
    ("occurred_at", "timestamptz", "occurred_at"),
    ("workflow_run_id", "bigint", "workflow_run_id"),
    ("step_index", "integer", "step_index"),
    ("labels", "jsonb", "labels"),
    ("outcome", "varchar", "outcome"),
    ("credits", "numeric", "credits"),
    ("ledger_transaction_id", "bigint", "ledger_transaction_id"),
    ("buckets", "jsonb", "buckets"),
    ("input_tokens", "bigint", "input_tokens"),
    ("output_tokens", "bigint", "output_tokens"),
    ("tool_calls", "integer", "tool_calls"),
    ("vector_reads", "bigint", "vector_reads"),
    ("orchestration_runs", "integer", "orchestration_runs"),
    ("gpu_seconds", "numeric", "gpu_seconds"),
    ("cogs_minor", "numeric", "cogs_minor"),
    ("cogs_currency", "varchar", "cogs_currency"),
    ("revenue_minor", "numeric", "revenue_minor"),
    ("revenue_currency", "varchar", "revenue_currency"),
    ("available_after", "numeric", "available_after"),
    ("created_at", "timestamptz", "created_at"),
)
_JSON = frozenset(name for name, kind, _ in _COLUMNS if kind == "jsonb")
_INSERT = (
    "INSERT INTO metering_usageevent (tenant_id, rate_card_version_id, "  # noqa: S608
    + ", ".join(name for name, _, _ in _COLUMNS)
    + ") SELECT %s, * FROM UNNEST(%s::bigint[], "
    + ", ".join(f"%s::{kind}[]" for _, kind, _ in _COLUMNS)
    + ") RETURNING id"
)


def _insert(*, tenant: Tenant, events: list[RecordedEvent]) -> None:
    """One INSERT ... SELECT FROM UNNEST of column arrays; sets the events' ids."""
    if not events:
        return
    columns: list[list[Any]] = [[e.rate_card_version.pk for e in events]]
    for name, _, attribute in _COLUMNS:
        values = [getattr(e, attribute) for e in events]
        columns.append([Jsonb(v) for v in values] if name in _JSON else values)
    with connection.cursor() as cursor:
        # RETURNING yields rows in UNNEST order (Django's own UNNEST insert relies on it too).
        cursor.execute(_INSERT, [tenant.pk, *columns])
        for event, (pk,) in zip(events, cursor.fetchall(), strict=True):
            event.pk = pk
