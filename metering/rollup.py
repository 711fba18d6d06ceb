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

from django.db import connection

from ledger.models import LedgerTransaction
from metering.models import RollupWatermark, UsageDay, UsageEvent
from metering.usage.inputs import WITHOUT_COST_SQL
from metering.usage.record import LEDGER_SOURCE
from tenants.tailing import CHUNK, DRAIN_TIMEOUT, Stream, tail_rebuild, tail_update

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
    select=f"""
SELECT e.tenant_id, (e.created_at AT TIME ZONE 'UTC')::date, e.action, e.model_class,
       coalesce(r.name, ''), e.cogs_currency,
       count(*), sum(e.quantity), sum(e.credits), 0, sum(e.cogs_minor),
       count(*) FILTER (WHERE {WITHOUT_COST_SQL})
  FROM metering_usageevent e
  LEFT JOIN metering_workflowrun r ON r.id = e.workflow_run_id
 WHERE e.id > %s AND e.id <= %s
 GROUP BY 1, 2, 3, 4, 5, 6
"""  # noqa: S608 (a constant of this package, no input)
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


def _streams() -> list[Stream]:
    return [
        Stream(EVENTS, UsageEvent._meta.db_table, _fold_events),
        Stream(REFUNDS, LedgerTransaction._meta.db_table, _fold_refunds),
    ]


def usage_rollup_update(*, timeout: float = DRAIN_TIMEOUT) -> dict[str, int | None]:
    """One run of the job: each stream observed, its writers waited for, and what they wrote
    folded in. Per stream: how many ids the watermark moved over, or None when writers seen
    at the observation were still running after `timeout` seconds (the next run goes on).
    Safe to run twice at once and after a crash: each fold and its watermark commit together."""
    return tail_update(streams=_streams(), watermark_model=RollupWatermark, timeout=timeout)


def usage_rollup_backfill(*, chunk: int = CHUNK) -> int:
    """Rebuild the rollup from every event and refund (tenants.tailing.tail_rebuild: in one
    transaction, readers seeing the old rows until it commits). Returns its number of rows."""
    tail_rebuild(
        streams=_streams(),
        watermark_model=RollupWatermark,
        clear=lambda: UsageDay.objects.all().delete(),
        chunk=chunk,
    )
    return UsageDay.objects.count()
