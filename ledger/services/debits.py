"""Debits: spend credits in consumption order, one charge or a batch, in one SQL call.

The work is done by the ledger's PL/pgSQL function `ledger_debit_batch` (ledger/sql/), the one
implementation of the consumption order: it locks the tenant's account, replays used keys,
draws only the buckets it needs and writes the transactions, entries, buckets, holds and the
account's totals. Python builds the arrays it takes and reads the rows it returns; no model
instance is made on this path. Called alone, the call is its own transaction, with the
watch-level outbox message the function writes when the balance crosses the account's watch
level or zero; inside a caller's transaction it joins it, and a refusal writes nothing, so the
caller may go on. The announcement that follows says the watch was taken care of (`watched`).

A caller may also run the function inside a statement of its own (`ledger_debit_statement`:
metering's usage function calls it and inserts its events in the same statement); the
parameters and the reading of the rows are this module's either way.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from ledger.exceptions import HoldNotOpen, IdempotencyConflict, InsufficientCredits
from ledger.models import ZERO, CreditHold, EntryKind
from ledger.services._book import (
    DebitPart,
    DebitRequest,
    DebitResult,
    _announce,
    _positive,
    quantize_credits,
)
from tenants.models import Tenant
from tenants.outbox import outbox_relay_on_commit

# The outbox task the debit's SQL names when it crosses the watch level (ledger/tasks.py).
WATCH_CROSSED_TASK = "ledger.watch_crossed"

_CALL = (
    "SELECT * FROM ledger_debit_batch(%s, %s, %s, %s, %s, %s, "
    "%s::text[], %s::numeric[], %s::bigint[], %s::text[], %s::text[], %s::text[])"
)


def ledger_debit(
    *,
    tenant: Tenant,
    amount: Decimal,
    idempotency_key: str,
    source_type: str = "",
    source_id: str = "",
    hold: CreditHold | None = None,
    memo: str = "",
    now: datetime | None = None,
) -> DebitResult:
    """Spend `amount` credits, split across buckets in consumption order.

    Raises InsufficientCredits (nothing written) when the balance, and the overdraft the
    contract allows, cannot cover it; the same key again returns the original result.
    """
    request = DebitRequest(
        amount=Decimal(amount),
        idempotency_key=idempotency_key,
        source_type=source_type,
        source_id=source_id,
        hold=hold,
        memo=memo,
    )
    (result,) = ledger_debit_many(tenant=tenant, requests=[request], now=now)
    if isinstance(result, InsufficientCredits):
        raise result
    return result


def ledger_debit_many(
    *, tenant: Tenant, requests: Sequence[DebitRequest], now: datetime | None = None
) -> list[DebitResult | InsufficientCredits]:
    """Debit several charges of one tenant under one lock acquisition, in order.

    Each charge is refused whole (an InsufficientCredits in its place, nothing written for it)
    or paid whole; a replayed idempotency key returns the original result. An idempotency
    conflict or a hold that is not open raises, and nothing of the batch is written.
    """
    return debit_call(tenant_id=tenant.pk, requests=requests, now=now, kind=EntryKind.DEBIT)


@dataclass(frozen=True)
class DebitStatement:
    """`ledger_debit_batch`'s parameters, in its order (`params`), for a caller whose own SQL
    function calls it; `results()` reads the rows it returned, relays the watch-level message
    and announces, as `ledger_debit_many` does after its own call."""

    tenant_id: int
    kind: str
    now: datetime
    requests: Sequence[DebitRequest]
    params: list[Any]

    def results(self, rows: list[tuple[Any, ...]]) -> list[DebitResult | InsufficientCredits]:
        results = _results(rows, self.requests)
        paid = [r for r in results if isinstance(r, DebitResult) and not r.replayed]
        if paid:
            before, watch_level, message_id = rows[0][3], rows[0][11], rows[0][12]
            if message_id is not None:
                outbox_relay_on_commit(message_id, WATCH_CROSSED_TASK)
            _announce(
                self.tenant_id,
                self.kind,
                before,
                paid[-1].available_after,
                self.now,
                watch_level=watch_level,
                watched=True,
            )
        return results


def ledger_debit_statement(
    *, tenant: Tenant, requests: Sequence[DebitRequest], now: datetime | None = None
) -> DebitStatement:
    """Debits of one tenant as `ledger_debit_many` makes them, to be run by the caller's SQL
    (see DebitStatement); at least one request."""
    return _statement(tenant_id=tenant.pk, requests=requests, now=now, kind=EntryKind.DEBIT)


def debit_call(
    *,
    tenant_id: int,
    requests: Sequence[DebitRequest],
    now: datetime | None,
    kind: str,
    allow_overdraft: bool = True,
    actor_id: int | None = None,
) -> list[DebitResult | InsufficientCredits]:
    """Run `ledger_debit_batch` and turn its rows into results (see the module docstring)."""
    if not requests:
        return []
    statement = _statement(
        tenant_id=tenant_id,
        requests=requests,
        now=now,
        kind=kind,
        allow_overdraft=allow_overdraft,
        actor_id=actor_id,
    )
    # One statement: inside a caller's transaction it joins it (a refusal or a conflict raised
    # here leaves the transaction usable); alone it is its own, with the watch-level message it
    # may write (ledger/sql/debit_v4.sql).
    with connection.cursor() as cursor:
        cursor.execute(_CALL, statement.params)
        rows = cursor.fetchall()
    return statement.results(rows)


def _statement(
    *,
    tenant_id: int,
    requests: Sequence[DebitRequest],
    now: datetime | None,
    kind: str,
    allow_overdraft: bool = True,
    actor_id: int | None = None,
) -> DebitStatement:
    now = now or timezone.now()
    for request in requests:
        _positive(request.amount)
    if not requests:
        raise ValueError("A debit statement needs at least one request.")
    params: list[Any] = [
        tenant_id,
        now,
        max(now, timezone.now()),
        kind,
        allow_overdraft,
        actor_id,
        [r.idempotency_key for r in requests],
        [r.amount for r in requests],
        [r.hold.pk if r.hold is not None else None for r in requests],
        [r.source_type for r in requests],
        [r.source_id for r in requests],
        [r.memo for r in requests],
    ]
    return DebitStatement(tenant_id=tenant_id, kind=kind, now=now, requests=requests, params=params)


def _results(
    rows: list[tuple[Any, ...]], requests: Sequence[DebitRequest]
) -> list[DebitResult | InsufficientCredits]:
    """Group the function's rows (one per part drawn) into one result per request."""
    if rows and rows[0][1] in {"conflict", "hold_not_open"}:
        request = requests[rows[0][0] - 1]
        if rows[0][1] == "conflict":
            raise IdempotencyConflict(idempotency_key=request.idempotency_key)
        raise HoldNotOpen(hold=request.hold.reference if request.hold is not None else "")
    by_slot: dict[int, list[tuple[Any, ...]]] = {}
    for row in rows:
        by_slot.setdefault(row[0], []).append(row)
    results: list[DebitResult | InsufficientCredits] = []
    for slot, request in enumerate(requests, start=1):
        first, *_ = parts = by_slot[slot]
        _, status, tx_id, _, after, from_hold, *_ = first
        if status == "insufficient":
            results.append(
                InsufficientCredits(
                    required=str(request.amount),
                    available=str(quantize_credits(max(after, ZERO))),
                )
            )
            continue
        results.append(
            DebitResult(
                transaction_id=tx_id,
                parts=tuple(
                    DebitPart(
                        bucket_id=row[6],
                        amount=row[7],
                        cost_basis_minor=row[8],
                        currency=row[9],
                        policy=row[10],
                    )
                    for row in parts
                ),
                available_after=after,
                from_hold=from_hold,
                replayed=status == "replayed",
            )
        )
    return results
