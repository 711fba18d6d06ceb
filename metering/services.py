"""Every write of usage events: validate, price, cost, debit and record, one event or a batch.

Locks (their order: metering.locks): an event takes only the tenant's credit account row. One
event looks its key up before any lock (a replay costs one read) and leaves the lock to
ledger_debit: two requests racing with one key meet there, where the ledger's own key
("usage:<key>") replays the debit, and the unique constraint on (tenant, idempotency_key)
turns the second event's insert into a replay of the first. A batch
takes the lock before its key lookup, so duplicates across racing batches are sorted out once.

Pricing and costing run *before* the lock: published rate card and cost catalog versions never
change, so they need no lock, and one tenant's critical section (every event of that tenant
waits on it) shrinks to the key lookup and the writes. A pricing error is held back until the
key has been looked up, so a replay still gets its original result.
"""

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypeVar

from django.conf import settings
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
from ratecards.exceptions import CostCatalogNotFound, UnknownCostComponent
from ratecards.models import Rate
from ratecards.selectors import (
    PriceQuote,
    cost_catalog_in_force,
    cost_quote,
    price,
    tenant_pricer,
)
from tenants.exceptions import CreditlineError
from tenants.models import Tenant

COMPONENTS = ("input_tokens", "output_tokens", "tool_calls", "vector_reads", "orchestration_runs")
MONEY_QUANTUM = Decimal("0.00000001")
ZERO_CREDITS = Decimal("0.0000")
ZERO_MONEY = Decimal("0.00000000")
FUTURE_TOLERANCE = timedelta(minutes=5)
BATCH_LIMIT = 1000
MAX_QUANTITY = Decimal("99999999999999.9999")  # NUMERIC(18, 4)
MAX_COMPONENT = 2**63 - 1
LEDGER_SOURCE = "usage_event"

T = TypeVar("T")


@dataclass(frozen=True)
class UsageInput:
    """One usage event as the integration reports it. `occurred_at` None means now."""

    idempotency_key: str
    action: str
    quantity: Decimal
    model_class: str = ""
    occurred_at: datetime | None = None
    outcome: str = UsageEvent.Outcome.SUCCESS
    labels: dict[str, Any] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    vector_reads: int = 0
    orchestration_runs: int = 0

    def components(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COMPONENTS}


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
# Validation and the request hash


def usage_input_validate(*, data: UsageInput, now: datetime) -> None:
    """Raises InvalidUsage naming the first bad field."""
    key = data.idempotency_key
    if not isinstance(key, str) or not key.strip() or len(key) > 255:
        raise InvalidUsage("idempotency_key", "Must be 1 to 255 characters.")
    if not data.action or len(data.action) > 64:
        raise InvalidUsage("action", "Must be 1 to 64 characters.")
    if len(data.model_class or "") > 64:
        raise InvalidUsage("model_class", "Must be at most 64 characters.")
    quantity = data.quantity
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise InvalidUsage("quantity", "A valid number is required.")
    if quantity <= 0:
        raise InvalidUsage("quantity", "Must be greater than 0.")
    if quantity != quantize_credits(quantity):
        raise InvalidUsage("quantity", "Ensure that there are no more than 4 decimal places.")
    if quantity > MAX_QUANTITY:
        raise InvalidUsage("quantity", f"Must be at most {MAX_QUANTITY}.")
    if data.outcome not in UsageEvent.Outcome.values:
        raise InvalidUsage("outcome", f"Must be one of {UsageEvent.Outcome.values}.")
    for name in COMPONENTS:
        value = getattr(data, name)
        if type(value) is not int or value < 0 or value > MAX_COMPONENT:
            raise InvalidUsage(name, "Must be a non-negative integer.")
    if not isinstance(data.labels, dict):
        raise InvalidUsage("labels", "Must be a JSON object.")
    occurred_at = data.occurred_at
    if occurred_at is not None:
        if timezone.is_naive(occurred_at):
            raise InvalidUsage("occurred_at", "Must carry a time zone.")
        if occurred_at > now + FUTURE_TOLERANCE:
            raise InvalidUsage("occurred_at", "Must not be more than 5 minutes in the future.")
        days = settings.CREDITLINE_BACKDATE_DAYS
        if occurred_at < now - timedelta(days=days):
            raise InvalidUsage(
                "occurred_at", f"Must not be older than the backdating window of {days} days."
            )


def usage_request_hash(
    *, data: UsageInput, workflow_run: WorkflowRun | None = None, step_index: int | None = None
) -> str:
    """SHA-256 of the canonical body: the same event spelled differently (1 vs 1.0000, +02:00
    vs Z, a component 0 vs left out) hashes the same. Call after usage_input_validate."""
    occurred_at = data.occurred_at
    canonical = {
        "action": data.action,
        "model_class": data.model_class or "",
        "quantity": str(quantize_credits(data.quantity)),
        "occurred_at": occurred_at.astimezone(UTC).isoformat() if occurred_at else None,
        "outcome": data.outcome,
        "labels": data.labels,
        "workflow_run": workflow_run.pk if workflow_run is not None else None,
        "step_index": step_index,
        **data.components(),
    }
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Pricing and costing


def _charged_credits(*, quote: PriceQuote, data: UsageInput) -> Decimal:
    """What the event is charged: the rate card's price for its quantity (ratecards owns that
    rule and its rounding), except that an outcome-priced action that failed is free; its COGS
    is still recorded."""
    if quote.charge_on == Rate.ChargeOn.SUCCESS and data.outcome == UsageEvent.Outcome.FAILURE:
        return ZERO_CREDITS
    return quote.credits


@dataclass(frozen=True)
class _CostTable:
    """Unit costs (minor units, unrounded) of one cost catalog version for one model class."""

    currency: str
    units: dict[str, Decimal]
    missing: dict[str, CreditlineError]

    def cogs(self, data: UsageInput) -> Decimal:
        total = ZERO_MONEY
        for name in COMPONENTS:
            quantity = getattr(data, name)
            if not quantity:
                continue
            if name in self.missing:
                raise self.missing[name]
            total += quantity * self.units[name]
        return total.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


_NO_CATALOG = _CostTable(currency="USD", units={}, missing={})


def _cost_table(*, model_class: str, at: datetime) -> _CostTable:
    """One cost_quote of one unit of every component; a component the catalog does not price
    is an error only for events that use it."""
    try:
        quote = cost_quote(components=dict.fromkeys(COMPONENTS, 1), model_class=model_class, at=at)
        return _CostTable(currency=quote.currency, units=quote.lines, missing={})
    except CostCatalogNotFound as exc:
        return _CostTable(currency="USD", units={}, missing=dict.fromkeys(COMPONENTS, exc))
    except UnknownCostComponent:
        pass
    units: dict[str, Decimal] = {}
    missing: dict[str, CreditlineError] = {}
    currency = "USD"
    for name in COMPONENTS:
        try:
            line = cost_quote(components={name: 1}, model_class=model_class, at=at)
        except UnknownCostComponent as exc:
            missing[name] = exc
        else:
            units[name] = line.lines[name]
            currency = line.currency
    return _CostTable(currency=currency, units=units, missing=missing)


def _uses_components(data: UsageInput) -> bool:
    return any(getattr(data, name) for name in COMPONENTS)


def _quote_one(*, tenant: Tenant, data: UsageInput, at: datetime) -> PriceQuote:
    return price(
        tenant=tenant,
        action=data.action,
        model_class=data.model_class or None,
        quantity=data.quantity,
        at=at,
    )


@dataclass
class _Priced:
    """An event priced and costed, waiting for its debit and its row."""

    data: UsageInput
    request_hash: str
    occurred_at: datetime
    quote: PriceQuote | None = None
    credits: Decimal = ZERO_CREDITS
    cogs: Decimal = ZERO_MONEY
    cogs_currency: str = "USD"
    error: CreditlineError | None = None


def _price(*, item: _Priced, quote: PriceQuote, costs: _CostTable) -> None:
    item.quote = quote
    item.credits = _charged_credits(quote=quote, data=item.data)
    item.cogs_currency = costs.currency
    item.cogs = costs.cogs(item.data)


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
    usage_input_validate(data=data, now=now)
    item = _Priced(
        data=data,
        request_hash=usage_request_hash(
            data=data, workflow_run=workflow_run, step_index=step_index
        ),
        occurred_at=data.occurred_at or now,
    )
    try:
        costs = (
            _cost_table(model_class=data.model_class, at=item.occurred_at)
            if _uses_components(data)
            else _NO_CATALOG
        )
        _price(
            item=item,
            quote=_quote_one(tenant=tenant, data=data, at=item.occurred_at),
            costs=costs,
        )
    except CreditlineError as exc:
        item.error = exc
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
    item: _Priced,
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
    item: _Priced,
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
        ledger_transaction=debit.transaction if debit is not None else None,
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
    pending: list[tuple[int, _Priced]] = []
    for index, data in enumerate(items):
        try:
            usage_input_validate(data=data, now=now)
        except InvalidUsage as exc:
            results[index] = BatchItemResult(status=422, error=exc)
            continue
        item = _Priced(
            data=data,
            request_hash=usage_request_hash(data=data),
            occurred_at=data.occurred_at or now,
        )
        pending.append((index, item))
    _BatchPricer(tenant=tenant).price_all([item for _, item in pending])
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
    *, tenant: Tenant, pending: list[tuple[int, _Priced]], now: datetime
) -> dict[int, BatchItemResult]:
    account_lock(tenant_id=tenant.pk)
    prior = _prior_events(tenant=tenant, keys=[item.data.idempotency_key for _, item in pending])
    done: dict[int, BatchItemResult] = {}
    first_of: dict[str, tuple[int, _Priced]] = {}
    repeats: list[tuple[int, _Priced, int]] = []
    fresh: list[tuple[int, _Priced]] = []
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
        UsageEvent.objects.bulk_create([event for _, event in to_insert])
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
    fresh: list[tuple[int, _Priced]],
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


class _BatchPricer:
    """Prices a batch with a handful of queries, however many events it holds.

    Rate cards: one ratecards TenantPricer (two queries) prices every event in memory. Cost
    catalogs: the version in force is a step function of time whose number never goes down,
    so if the first and the last of a run of sorted timestamps get the same version, every
    timestamp between does too; otherwise the run is halved (_step_lookup). A batch with no
    catalog change in it costs two lookups, and one cost table per model class.
    """

    def __init__(self, *, tenant: Tenant) -> None:
        self.tenant = tenant
        self.costs: dict[tuple[int, str], _CostTable] = {}

    def price_all(self, items: list[_Priced]) -> None:
        if not items:
            return
        pricer = tenant_pricer(tenant=self.tenant)
        catalogs: dict[datetime, int | None] = {}
        if any(_uses_components(item.data) for item in items):
            times = sorted({item.occurred_at for item in items})
            catalogs = _step_lookup(times, _catalog_at)
        for item in items:
            data = item.data
            try:
                quote = pricer.price(
                    action=data.action,
                    model_class=data.model_class or None,
                    quantity=data.quantity,
                    at=item.occurred_at,
                )
                costs = (
                    self._costs(catalogs[item.occurred_at], item)
                    if _uses_components(data)
                    else _NO_CATALOG
                )
                _price(item=item, quote=quote, costs=costs)
            except CreditlineError as exc:
                item.error = exc

    def _costs(self, catalog_id: int | None, item: _Priced) -> _CostTable:
        key = (catalog_id or 0, item.data.model_class or "")
        table = self.costs.get(key)
        if table is None:
            table = _cost_table(model_class=item.data.model_class, at=item.occurred_at)
            self.costs[key] = table
        return table


def _catalog_at(at: datetime) -> int | None:
    try:
        return cost_catalog_in_force(at=at).pk
    except CostCatalogNotFound:
        return None


def _step_lookup(times: list[datetime], lookup: Callable[[datetime], T]) -> dict[datetime, T]:
    """`lookup` at every one of the sorted `times`, for a lookup that is a step function whose
    steps never return to an earlier value (see _BatchPricer): O(steps x log n) lookups."""
    found: dict[datetime, T] = {}

    def at(i: int) -> T:
        if times[i] not in found:
            found[times[i]] = lookup(times[i])
        return found[times[i]]

    def fill(lo: int, hi: int) -> None:
        if hi - lo <= 1:
            at(lo)
            at(hi)
            return
        if at(lo) == at(hi):
            for i in range(lo + 1, hi):
                found[times[i]] = found[times[lo]]
            return
        mid = (lo + hi) // 2
        fill(lo, mid)
        fill(mid, hi)

    if times:
        fill(0, len(times) - 1)
    return found
