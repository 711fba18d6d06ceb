"""The console's money rollups (insights/models.py), kept off the hot path by the beat task
`insights.rollup_update` (every minute), exactly once (tenants/tailing.py: the watermark
never passes a row whose transaction commits after a later one's). Two streams:

- `margin_events`: new usage events, by id, into MarginDay. Day = the UTC day the event was
  recorded (`created_at`, its debit's date), as metering's UsageDay; its revenue is what the
  ledger's debit drew (credits x the cost basis of the buckets, recorded on the event).
- `ledger_entries`: every new ledger entry on a bucket, by id, into ValueDay (credits and their
  money by movement, policy, source, currency); a reversal of a usage event's debit (a refund)
  also takes its credits and their money off the event's MarginDay row on the refund's day.

Why a rollup of the console's own rather than columns on metering's UsageDay: the money per
day is the vendor's alone (customers never see it), it needs a stream metering does not read
(every ledger entry, for breakage and reconciliation), and its job can run, be rebuilt and be
benchmarked apart from the portal's. `insights_rollup_backfill` rebuilds both from scratch.
"""

from django.db import connection

from insights.models import (
    MARGIN_SUMS,
    InsightsWatermark,
    MarginDay,
    MarginTotalDay,
    TenantMarginDay,
    TenantMarginMonth,
    ValueDay,
)
from ledger.models import LedgerEntry
from metering.models import UsageEvent
from metering.usage.inputs import WITHOUT_COST_SQL
from metering.usage.record import LEDGER_SOURCE
from tenants.tailing import CHUNK, DRAIN_TIMEOUT, Stream, tail_rebuild, tail_update

EVENTS = "margin_events"
ENTRIES = "ledger_entries"

# An event reported without any cost component: its cost is unknown, not zero.
_NO_COST = WITHOUT_COST_SQL

_SUMS = MARGIN_SUMS


def _add_to(table: str, keys: dict[str, str]) -> str:
    """An upsert of the delta (below) summed by `keys` (column: expression over the delta's
    columns) into `table`, added to the row already there."""
    columns = ", ".join([*keys, *_SUMS])
    exprs = ", ".join(keys.values())
    groups = ", ".join(str(n) for n in range(1, len(keys) + 1))
    summed = ", ".join(f"sum({c})" for c in _SUMS)
    added = ", ".join(f"{c} = d.{c} + EXCLUDED.{c}" for c in _SUMS)
    return f"""INSERT INTO {table} AS d ({columns})
SELECT {exprs}, {summed} FROM delta GROUP BY {groups}
ON CONFLICT ({", ".join(keys)}) DO UPDATE SET {added}"""  # noqa: S608


_PAIR = {"currency": "currency", "cogs_currency": "cogs_currency"}
_DAY_KEY = {
    "day": "day",
    "action": "action",
    "model_class": "model_class",
    "workflow": "workflow",
    **_PAIR,
}
_BY_KEY = {"tenant_id": "tenant_id", **_DAY_KEY}
_TENANT_DAY = {"tenant_id": "tenant_id", "day": "day", **_PAIR}
_TENANT_MONTH = {"tenant_id": "tenant_id", "month": "date_trunc('month', day)::date", **_PAIR}

# The rows `select` yields (MarginDay's key and sums) go into MarginDay and, in the same
# statement, into the rollups summed from it: every tenant's day (MarginTotalDay), a tenant's
# day and a tenant's month (TenantMarginDay, TenantMarginMonth). One statement, in the fold's
# transaction: each stays the exact sum of the MarginDay rows it covers.
_MARGIN_UPSERT = f"""
WITH delta ({", ".join([*_BY_KEY, *_SUMS])}) AS ({{select}}),
by_key AS ({_add_to(MarginDay._meta.db_table, _BY_KEY)}),
everyone AS ({_add_to(MarginTotalDay._meta.db_table, _DAY_KEY)}),
tenant_day AS ({_add_to(TenantMarginDay._meta.db_table, _TENANT_DAY)})
{_add_to(TenantMarginMonth._meta.db_table, _TENANT_MONTH)}
"""

# Built from constants only (no input reaches the text): S608 does not apply.
_FOLD_EVENTS = _MARGIN_UPSERT.format(
    select=f"""
SELECT e.tenant_id, (e.created_at AT TIME ZONE 'UTC')::date, e.action, e.model_class,
       coalesce(r.name, ''), e.revenue_currency, e.cogs_currency,
       count(*), sum(e.quantity), sum(e.credits), sum(e.revenue_minor), sum(e.cogs_minor),
       count(*) FILTER (WHERE {_NO_COST}),
       coalesce(sum(e.quantity) FILTER (WHERE {_NO_COST}), 0),
       coalesce(sum(e.credits) FILTER (WHERE {_NO_COST}), 0),
       coalesce(sum(e.revenue_minor) FILTER (WHERE {_NO_COST}), 0)
  FROM metering_usageevent e
  LEFT JOIN metering_workflowrun r ON r.id = e.workflow_run_id
 WHERE e.id > %s AND e.id <= %s
 GROUP BY 1, 2, 3, 4, 5, 6, 7
"""  # noqa: S608
)

# A refund's entries (kind reversal, positive, on the buckets the debit drew from or on the
# refund buckets standing in for expired ones, with the same cost basis) take their credits
# and money off the event's row. The reversal names the event as its debit did.
_FOLD_REFUNDS = _MARGIN_UPSERT.format(
    select=f"""
SELECT e.tenant_id, (en.created_at AT TIME ZONE 'UTC')::date, e.action, e.model_class,
       coalesce(r.name, ''), e.revenue_currency, e.cogs_currency,
       0, 0, -sum(en.amount), -sum(en.amount * b.cost_basis_minor), 0,
       0, 0,
       coalesce(-sum(en.amount) FILTER (WHERE {_NO_COST}), 0),
       coalesce(-sum(en.amount * b.cost_basis_minor) FILTER (WHERE {_NO_COST}), 0)
  FROM ledger_ledgerentry en
  JOIN ledger_ledgertransaction t ON t.id = en.transaction_id
  JOIN ledger_creditbucket b ON b.id = en.bucket_id
  JOIN metering_usageevent e ON e.tenant_id = t.tenant_id AND e.idempotency_key = t.source_id
  LEFT JOIN metering_workflowrun r ON r.id = e.workflow_run_id
 WHERE en.id > %s AND en.id <= %s AND en.kind = 'reversal' AND t.source_type = %s
 GROUP BY 1, 2, 3, 4, 5, 6, 7
"""  # noqa: S608
)

# A reversal is a refund of a debit, or a revocation of a grant (billing's refunded pack).
_FOLD_VALUES = """
INSERT INTO insights_valueday AS d (
    tenant_id, day, movement, policy, source, currency, credits, value_minor
)
SELECT en.tenant_id,
       -- Breakage is recognised at expiry: dated by the bucket's expiry, not by the sweep.
       (CASE WHEN en.kind = 'expiry' THEN b.expires_at ELSE en.created_at END
        AT TIME ZONE 'UTC')::date,
       CASE en.kind
            WHEN 'debit' THEN 'spend'
            WHEN 'reversal' THEN CASE WHEN rv.kind = 'grant' THEN 'revocation' ELSE 'refund' END
            ELSE en.kind
       END,
       b.policy, b.source, b.currency, sum(en.amount), sum(en.amount * b.cost_basis_minor)
  FROM ledger_ledgerentry en
  JOIN ledger_creditbucket b ON b.id = en.bucket_id
  JOIN ledger_ledgertransaction t ON t.id = en.transaction_id
  LEFT JOIN ledger_ledgertransaction rv ON rv.id = t.reverses_id
 WHERE en.id > %s AND en.id <= %s AND en.kind NOT IN ('hold', 'release')
 GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (tenant_id, day, movement, policy, source, currency) DO UPDATE SET
    credits = d.credits + EXCLUDED.credits,
    value_minor = d.value_minor + EXCLUDED.value_minor
"""


def _fold_events(lo: int, hi: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_FOLD_EVENTS, [lo, hi])


def _fold_entries(lo: int, hi: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_FOLD_VALUES, [lo, hi])
        cursor.execute(_FOLD_REFUNDS, [lo, hi, LEDGER_SOURCE])


def _streams() -> list[Stream]:
    return [
        Stream(EVENTS, UsageEvent._meta.db_table, _fold_events),
        Stream(ENTRIES, LedgerEntry._meta.db_table, _fold_entries),
    ]


def insights_rollup_update(*, timeout: float = DRAIN_TIMEOUT) -> dict[str, int | None]:
    """One run: per stream, how many ids its watermark moved over, or None when writers seen
    at the observation still ran after `timeout` seconds (the next run goes on). Safe to run
    twice at once and after a crash: each fold commits with its watermark."""
    return tail_update(streams=_streams(), watermark_model=InsightsWatermark, timeout=timeout)


def _clear() -> None:
    for model in (MarginDay, MarginTotalDay, TenantMarginDay, TenantMarginMonth):
        model.objects.all().delete()
    ValueDay.objects.all().delete()


def insights_rollup_backfill(*, chunk: int = CHUNK) -> int:
    """Rebuild both rollups from every event and entry (tenants.tailing.tail_rebuild: in one
    transaction, readers seeing the old rows until it commits). Returns the number of rows."""
    tail_rebuild(streams=_streams(), watermark_model=InsightsWatermark, clear=_clear, chunk=chunk)
    return MarginDay.objects.count() + ValueDay.objects.count()
