"""The write of priced usage events: one statement, `metering_usage_record`
(metering/sql/record_v1.sql), which runs the ledger's debit for the charged events and inserts
the events in the same statement.

Alone (the API) the statement is its own transaction: no BEGIN and COMMIT round trips, and the
debit and its events commit together or not at all. Inside a caller's transaction (a workflow
step) it runs in a savepoint, so that a refusal leaves the caller's transaction usable.

The events travel as one JSON parameter (json.dumps is C; psycopg's client-side binding of a
column array escapes every element in Python), the ledger's parameters as the ledger's
services build them (ledger.services.ledger_debit_statement), whose rows they read back.
"""

import json
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import DatabaseError, connection, transaction

from ledger.exceptions import InsufficientCredits
from ledger.models import CreditHold
from ledger.selectors import available_get
from ledger.services import (
    DebitRequest,
    DebitResult,
    DebitStatement,
    ledger_debit_statement,
    quantize_credits,
)
from metering.usage.pricing import Priced
from metering.usage.recorded import RecordedEvent, json_value
from tenants.events import tenant_settings_get
from tenants.models import Tenant

LEDGER_SOURCE = "usage_event"
# metering_usage_record asks for the tenant's currency (an event earned nothing).
CURRENCY_NEEDED = "CL001"
# The ledger's result columns come first in the function's rows (ledger/sql/debit_v4.sql).
_LEDGER_COLUMNS = 13

_CALL = (
    "SELECT * FROM metering_usage_record(%s, %s, %s, %s, %s, %s, %s::text[], %s::numeric[], "
    "%s::bigint[], %s::text[], %s::text[], %s::text[], %s::json, %s, %s)"
)
# The ledger's parameters after the tenant and the clock when nothing is charged (the function
# then leaves the ledger alone).
_NO_DEBIT: list[Any] = [None, None, None, None, [], [], [], [], [], []]

logger = logging.getLogger(__name__)


class _Hint:
    """Tenants whose last event earned nothing (free credits): their currency is asked for
    before the statement rather than after it failed for want of it. Only a guess: a wrong
    one costs a query or a second statement, never a wrong row."""

    def __init__(self, maxsize: int = 4096) -> None:
        self.maxsize = maxsize
        self.tenants: OrderedDict[int, None] = OrderedDict()

    def __contains__(self, tenant_id: int) -> bool:
        return tenant_id in self.tenants

    def add(self, tenant_id: int) -> None:
        self.tenants[tenant_id] = None
        self.tenants.move_to_end(tenant_id)
        while len(self.tenants) > self.maxsize:
            self.tenants.popitem(last=False)


_earns_nothing = _Hint()


@dataclass(frozen=True)
class Step:
    """What a workflow step adds to its one event: the run, its hold and the step's index."""

    run_id: int
    hold: CreditHold | None
    index: int


def usage_events_write(
    *, tenant: Tenant, payable: Sequence[Priced], now: datetime, step: Step | None
) -> list[RecordedEvent | InsufficientCredits]:
    """Debit and insert priced events (their keys new and distinct), in one statement."""
    charged = [item for item in payable if item.credits > 0]
    statement = (
        ledger_debit_statement(
            tenant=tenant, requests=[_request(item, step) for item in charged], now=now
        )
        if charged
        else None
    )
    events = json.dumps(_events_json(payable, step), ensure_ascii=False, separators=(",", ":"))
    # Nothing charged: no lock is taken, and free events report the balance as it stands.
    available = available_get(tenant=tenant) if statement is None else None
    currency = None
    if len(charged) < len(payable) or tenant.pk in _earns_nothing:
        currency = _tenant_currency(tenant)
    try:
        rows = _run(tenant, statement, now, events, currency, available)
    except DatabaseError as exc:
        if currency is not None or _sqlstate(exc) != CURRENCY_NEEDED:
            raise
        _earns_nothing.add(tenant.pk)
        rows = _run(tenant, statement, now, events, _tenant_currency(tenant), available)
    ledger_rows = [row[:_LEDGER_COLUMNS] for row in rows if row[_LEDGER_COLUMNS] is None]
    debits = statement.results(ledger_rows) if statement is not None else []
    by_slot = dict(zip((id(item) for item in charged), debits, strict=True))
    written = {row[_LEDGER_COLUMNS]: row[_LEDGER_COLUMNS + 1 :] for row in rows}
    outcomes: list[RecordedEvent | InsufficientCredits] = []
    for item in payable:
        debit = by_slot.get(id(item))
        if isinstance(debit, InsufficientCredits):
            outcomes.append(debit)
            continue
        if debit is not None:
            _log_currencies(debit)
        outcomes.append(_recorded(item, step, now, written[item.data.idempotency_key]))
    return outcomes


def _request(item: Priced, step: Step | None) -> DebitRequest:
    return DebitRequest(
        amount=item.credits,
        idempotency_key=f"usage:{item.data.idempotency_key}",
        source_type=LEDGER_SOURCE,
        source_id=item.data.idempotency_key,
        hold=step.hold if step else None,
    )


def _run(
    tenant: Tenant,
    statement: DebitStatement | None,
    now: datetime,
    events: str,
    currency: str | None,
    available: Decimal | None,
) -> list[tuple[Any, ...]]:
    ledger = statement.params if statement is not None else [tenant.pk, now, *_NO_DEBIT]
    params = [*ledger, events, currency, available]
    if connection.in_atomic_block:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_CALL, params)
            return cursor.fetchall()
    with connection.cursor() as cursor:
        cursor.execute(_CALL, params)
        return cursor.fetchall()


def _sqlstate(exc: DatabaseError) -> str | None:
    return getattr(exc.__cause__, "sqlstate", None)


def _tenant_currency(tenant: Tenant) -> str:
    """The tenant's billing currency (billing's `billing_currency` setting, "" when no app
    owns one): the revenue currency of an event that earned nothing."""
    found = tenant_settings_get(tenant=tenant, names={"billing_currency"})
    return str(found.get("billing_currency", ""))


def _events_json(payable: Sequence[Priced], step: Step | None) -> list[dict[str, Any]]:
    """The events' columns for the statement, with each one's ledger slot (`debit`, 1-based
    in the order of the charged events) or, for a free one, the slot of the last charge
    before it (`prior`)."""
    rows = []
    slot = 0
    for item in payable:
        data = item.data
        if item.quote is None:
            raise RuntimeError(f"Usage event {data.idempotency_key!r} reached recording unpriced.")
        charged = item.credits > 0
        if charged:
            slot += 1
        rows.append(
            {
                "rate_card_version_id": item.quote.version.pk,
                "idempotency_key": data.idempotency_key,
                "request_hash": item.request_hash,
                "action": data.action,
                "model_class": data.model_class or "",
                "quantity": f"{quantize_credits(data.quantity):f}",
                "occurred_at": item.occurred_at.isoformat(),
                "workflow_run_id": step.run_id if step else None,
                "step_index": step.index if step else None,
                "labels": data.labels,
                "outcome": data.outcome,
                "credits": f"{item.credits:f}",
                "input_tokens": data.input_tokens,
                "output_tokens": data.output_tokens,
                "tool_calls": data.tool_calls,
                "vector_reads": data.vector_reads,
                "orchestration_runs": data.orchestration_runs,
                "gpu_seconds": f"{data.gpu_seconds:f}",
                "cogs_minor": f"{item.cogs:f}",
                "cogs_currency": item.cogs_currency,
                "debit": slot if charged else None,
                "prior": None if charged or not slot else slot,
            }
        )
    return rows


def _recorded(
    item: Priced, step: Step | None, now: datetime, written: Sequence[Any]
) -> RecordedEvent:
    pk, transaction_id, buckets, revenue_minor, revenue_currency, available_after = written
    data = item.data
    if item.quote is None:
        raise RuntimeError(f"Usage event {data.idempotency_key!r} reached recording unpriced.")
    return RecordedEvent(
        pk=pk,
        idempotency_key=data.idempotency_key,
        request_hash=item.request_hash,
        action=data.action,
        model_class=data.model_class or "",
        quantity=quantize_credits(data.quantity),
        occurred_at=item.occurred_at,
        outcome=data.outcome,
        labels=data.labels,
        workflow_run_id=step.run_id if step else None,
        step_index=step.index if step else None,
        credits=item.credits,
        rate_card_version=item.quote.version,
        ledger_transaction_id=transaction_id,
        buckets=json_value(buckets),
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
        available_after=available_after,
        created_at=now,
    )


def _log_currencies(debit: DebitResult) -> None:
    """Two currencies are never added: a debit across paid buckets of two (only buckets older
    than one currency per tenant) records the first drawn on its event (the statement's rule);
    the ledger's entries keep every part in its own currency for reconciliation."""
    if len({part.currency for part in debit.parts if part.cost_basis_minor}) < 2:
        return
    revenue = debit.revenue
    if len(revenue) > 1:
        logger.error(
            "Debit %s drew paid credits in %s: its event records the %s part only.",
            debit.transaction_id,
            sorted(revenue),
            next(iter(revenue)),
        )
