"""The daily usage rollup (UsageDay) and the refusal counts (UsageRefusalDay): their writes.

The rollup is kept outside the events' transactions, never on the hot path: the beat task
`metering.usage_rollup_update` (every 30 s) reads what was recorded since its last run and adds
it to the days it belongs to, exactly once (tenants/tailing.py says how the watermark never
passes an event whose transaction commits after a later one's). Two streams feed it:

- `usage_events`: new events, by id. Day = the UTC day the event was recorded (`created_at`,
  the date of its debit in the ledger), so a range's credits equal the statement's; an event
  may have occurred (`occurred_at`) up to 35 days earlier.
- `usage_refunds`: the ledger's reversals of event debits (a refund of one event, by
  `ledger_reverse`, which names the event as the debit did: source `usage_event`, its key), by
  ledger transaction id. A refund takes its credits off the event's action, model class and
  workflow on the UTC day of the refund, as the statement shows it; the event stays counted.

So for any range of days: sum(credits) = -(debit and reversal entries of usage events in the
statement for those days). `usage_rollup_backfill` rebuilds the whole rollup from the events
and refunds (the same folds, so it equals what the job built).
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction

from ledger.models import LedgerTransaction
from metering.models import RollupWatermark, UsageDay, UsageEvent
from metering.usage.record import LEDGER_SOURCE
from tenants.tailing import (
    CHUNK,
    DRAIN_TIMEOUT,
    tail_drain,
    tail_observe,
    tail_run,
    tail_watermark_lock,
)

EVENTS = "usage_events"
REFUNDS = "usage_refunds"
STREAMS = (EVENTS, REFUNDS)

_UPSERT = """
INSERT INTO metering_usageday AS d (
    tenant_id, day, action, model_class, workflow, cogs_currency,
    events, quantity, credits, credits_refunded, cogs_minor, events_without_cost
)
{select}
ON CONFLICT (tenant_id, day, action, model_class, workflow, cogs_currency) DO UPDATE SET
    events = d.events + EXCLUDED.events,
    quantity = d.quantity + EXCLUDED.quantity,
    credits = d.credits + EXCLUDED.credits,
    credits_refunded = d.credits_refunded + EXCLUDED.credits_refunded,
    cogs_minor = d.cogs_minor + EXCLUDED.cogs_minor,
    events_without_cost = d.events_without_cost + EXCLUDED.events_without_cost
"""

_FOLD_EVENTS = _UPSERT.format(
    select="""
SELECT e.tenant_id, (e.created_at AT TIME ZONE 'UTC')::date, e.action, e.model_class,
       coalesce(r.name, ''), e.cogs_currency,
       count(*), sum(e.quantity), sum(e.credits), 0, sum(e.cogs_minor),
       -- Without cost: none of the cost components (its COGS is unknown, not zero).
       count(*) FILTER (WHERE e.input_tokens = 0 AND e.output_tokens = 0 AND e.tool_calls = 0
                          AND e.vector_reads = 0 AND e.orchestration_runs = 0)
  FROM metering_usageevent e
  LEFT JOIN metering_workflowrun r ON r.id = e.workflow_run_id
 WHERE e.id > %s AND e.id <= %s
 GROUP BY 1, 2, 3, 4, 5, 6
"""
)

# The reversal names the event as its debit did (ledger_reverse copies the debit's source):
# found through the event's unique key, not by the (unindexed) ledger_transaction_id.
_FOLD_REFUNDS = _UPSERT.format(
    select="""
SELECT e.tenant_id, (t.created_at AT TIME ZONE 'UTC')::date, e.action, e.model_class,
       coalesce(r.name, ''), e.cogs_currency,
       0, 0, -sum(t.amount), sum(t.amount), 0, 0
  FROM ledger_ledgertransaction t
  JOIN metering_usageevent e ON e.tenant_id = t.tenant_id AND e.idempotency_key = t.source_id
  LEFT JOIN metering_workflowrun r ON r.id = e.workflow_run_id
 WHERE t.id > %s AND t.id <= %s AND t.kind = 'reversal' AND t.source_type = %s
 GROUP BY 1, 2, 3, 4, 5, 6
"""
)


def _fold_events(lo: int, hi: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_FOLD_EVENTS, [lo, hi])


def _fold_refunds(lo: int, hi: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_FOLD_REFUNDS, [lo, hi, LEDGER_SOURCE])


@dataclass(frozen=True)
class _Stream:
    name: str
    table: str
    fold: Callable[[int, int], None]


def _streams() -> list[_Stream]:
    return [
        _Stream(EVENTS, UsageEvent._meta.db_table, _fold_events),
        _Stream(REFUNDS, LedgerTransaction._meta.db_table, _fold_refunds),
    ]


def usage_rollup_update(*, timeout: float = DRAIN_TIMEOUT) -> dict[str, int | None]:
    """One run of the job: each stream observed, its writers waited for, and what they wrote
    folded in. Per stream: how many ids the watermark moved over, or None when writers seen
    at the observation were still running after `timeout` seconds (the next run goes on).
    Safe to run twice at once and after a crash: each fold and its watermark commit together."""
    return {
        stream.name: tail_run(
            table=stream.table,
            watermark_model=RollupWatermark,
            name=stream.name,
            fold=stream.fold,
            timeout=timeout,
        )
        for stream in _streams()
    }


def usage_rollup_backfill(*, chunk: int = CHUNK) -> int:
    """Rebuild the rollup from every event and refund, in one transaction (readers see the old
    rollup until it commits): the watermarks are locked (a running job waits), the rows
    deleted, both streams folded again from id 0 up to what is final now. Returns the
    number of rollup rows. Waits for the writers it sees, however long they take."""
    streams = _streams()
    seen = {s.name: tail_observe(table=s.table) for s in streams}
    for stream in streams:
        while not tail_drain(table=stream.table, writers=seen[stream.name].writers):
            pass
    with transaction.atomic():
        marks = {
            s.name: tail_watermark_lock(watermark_model=RollupWatermark, name=s.name)
            for s in streams
        }
        UsageDay.objects.all().delete()
        for stream in streams:
            mark = marks[stream.name]
            # What the job already passed is final too, and may be beyond this observation.
            upto = max(seen[stream.name].max_id, mark.done_id)
            for lo in range(0, upto, chunk):
                stream.fold(lo, min(upto, lo + chunk))
            mark.done_id = upto
            if upto == seen[stream.name].max_id:
                mark.as_of = max(filter(None, [mark.as_of, seen[stream.name].at]))
            mark.save(update_fields=["done_id", "as_of", "updated_at"])
        return UsageDay.objects.count()
