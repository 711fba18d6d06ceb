"""The portal benchmark's usage history, in set-based SQL (Django set up by the caller).

`seed_usage()` writes what `usage_event_record_batch` and the ledger's debit write for many
past events at once (a million through the service would take minutes): per event a `debit`
ledger transaction keyed `usage:<key>` (source `usage_event`, the event's key), its one entry
drawing the tenant's first permanent bucket with the balance after it, and the event row naming
that transaction; then the bucket's `remaining` and the account's totals. A tenth of the events
are steps of completed workflow runs (their totals summed from their steps). Events are spread
evenly over `days` days before today, occurred when recorded, over the example rate card's
actions (a tenth at model class `turbo`), each with token and tool counts (so with COGS).

**It must follow metering/usage/record.py and ledger/sql/debit_v4.sql**: the caller runs
`ledger_verify()` after it, and the rollups are built by their own jobs (`usage_rollup_backfill`,
`debit_days_update`), not here. Like bench/seed.py, this is test data in a throwaway database
(tests/ledger/test_single_writer.py names bench/).
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from bench.seed import _refresh_account_totals

WORKFLOW_NAMES = ("Research competitors", "Answer tickets", "Summarise calls", "Draft replies")

# One row per event: its key, time, action, model class, credits and (for a tenth) its run.
_PLAN = """
CREATE TEMP TABLE portal_seed ON COMMIT DROP AS
SELECT n,
       %(prefix)s || '-' || n AS key,
       %(start)s::timestamptz + n * %(step)s::interval AS at,
       (ARRAY['chat', 'doc_search', 'web_research', 'action_execution'])[n %% 4 + 1] AS action,
       CASE WHEN n %% 10 = 0 THEN 'turbo' ELSE '' END AS model_class,
       ((ARRAY[1, 3, 10, 15])[n %% 4 + 1] * CASE WHEN n %% 10 = 0 THEN 6 ELSE 1 END)::numeric
           AS credits,
       CASE WHEN n %% 10 = 3 AND %(runs)s > 0 THEN (n / 10) %% %(runs)s END AS run_n,
       CASE WHEN n %% 10 = 3 AND %(runs)s > 0 THEN (n / 10) / %(runs)s END AS step_index,
       nextval(pg_get_serial_sequence('ledger_ledgertransaction', 'id')) AS tx_id
FROM generate_series(0, %(events)s - 1) AS n
"""
_RUNS = """
INSERT INTO metering_workflowrun (
    tenant_id, external_id, name, state, hold_id, reserved_credits, credits_charged, cogs_minor,
    revenue_minor, steps_charged, suspension_reason, suspended_at_step, suspended_step_credits,
    resumable_at, metadata, created_at, updated_at, last_activity_at, ended_at)
SELECT %(tenant)s, %(prefix)s || '-run-' || r, (%(names)s::varchar[])[r %% %(name_count)s + 1],
       'completed', NULL, 0, 0, 0, 0, 0, '', '', NULL, NULL, '{}'::jsonb,
       %(start)s, %(start)s, %(start)s, %(start)s
FROM generate_series(0, %(runs)s - 1) AS r
ORDER BY r
"""
_TRANSACTIONS = """
INSERT INTO ledger_ledgertransaction (
    id, tenant_id, kind, amount, from_hold, idempotency_key, source_type, source_id, hold_id,
    reverses_id, actor_id, memo, created_at)
SELECT tx_id, %(tenant)s, 'debit', -credits, 0, 'usage:' || key, 'usage_event', key, NULL,
       NULL, NULL, '', at
FROM portal_seed ORDER BY n
"""
_ENTRIES = """
INSERT INTO ledger_ledgerentry (
    tenant_id, transaction_id, kind, amount, bucket_id, hold_id, balance_after, created_at)
SELECT %(tenant)s, tx_id, 'debit', -credits, %(bucket)s, NULL,
       %(before)s - sum(credits) OVER (ORDER BY n), at
FROM portal_seed ORDER BY n
"""
_EVENTS = """
INSERT INTO metering_usageevent (
    tenant_id, idempotency_key, request_hash, action, model_class, quantity, occurred_at,
    workflow_run_id, step_index, labels, outcome, credits, rate_card_version_id,
    ledger_transaction_id, buckets, input_tokens, output_tokens, tool_calls, vector_reads,
    orchestration_runs, cogs_minor, cogs_currency, revenue_minor, revenue_currency,
    available_after, created_at)
SELECT %(tenant)s, s.key, md5(s.key) || md5(s.action), s.action, s.model_class, 1, s.at,
       r.id, s.step_index, '{"project": "bench"}'::jsonb, 'success', s.credits, %(version)s,
       s.tx_id,
       jsonb_build_array(jsonb_build_object(
           'bucket_id', %(bucket)s, 'credits', to_char(s.credits, 'FM9999999990.0000'),
           'policy', 'permanent')),
       1200, 300, 1, 0, 0,
       -- $2.50 / 1M input and $15 / 1M output tokens, 8 cents a tool call (the example costs).
       1200 * 250 / 1000000.0 + 300 * 1500 / 1000000.0 + 8, 'USD',
       s.credits * %(cost_basis)s, 'USD',
       %(before)s - sum(s.credits) OVER (ORDER BY s.n), s.at
FROM portal_seed s
LEFT JOIN metering_workflowrun r
  ON r.tenant_id = %(tenant)s AND r.external_id = %(prefix)s || '-run-' || s.run_n
ORDER BY s.n
"""
_RUN_TOTALS = """
UPDATE metering_workflowrun r
   SET credits_charged = t.credits, cogs_minor = t.cogs, revenue_minor = t.revenue,
       steps_charged = t.steps, last_activity_at = t.last, updated_at = t.last, ended_at = t.last
  FROM (SELECT workflow_run_id, sum(credits) AS credits, sum(cogs_minor) AS cogs,
               sum(revenue_minor) AS revenue, count(*) AS steps, max(created_at) AS last
          FROM metering_usageevent
         WHERE tenant_id = %(tenant)s AND workflow_run_id IS NOT NULL
         GROUP BY 1) t
 WHERE r.tenant_id = %(tenant)s AND r.id = t.workflow_run_id
"""


def seed_usage(
    *, tenant_id: int, events: int, days: int, prefix: str, now: datetime | None = None
) -> Decimal:
    """`events` charged events of the tenant over the `days` days before `now`, drawn from its
    first permanent bucket (which must cover them); returns the credits they spent."""
    from ratecards.models import RateCardVersion

    now = now or timezone.now()
    start = now - timedelta(days=days)
    version = (
        RateCardVersion.objects.filter(published_at__isnull=False).order_by("pk").values("pk")
    ).first()
    if version is None:
        raise ValueError("Seed the example rate card first (ratecard_seed_example).")
    runs = events // 100
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, remaining, cost_basis_minor FROM ledger_creditbucket "
            "WHERE tenant_id = %s AND policy = 'permanent' AND NOT is_overdraft "
            "ORDER BY id LIMIT 1 FOR UPDATE",
            [tenant_id],
        )
        row = cursor.fetchone()
        if row is None:
            raise ValueError("The tenant needs a permanent bucket (bench.seed.seed_tenants).")
        bucket, remaining, cost_basis = row
        cursor.execute(
            "SELECT available FROM ledger_creditaccount WHERE tenant_id = %s FOR UPDATE",
            [tenant_id],
        )
        (before,) = cursor.fetchone()
        params: dict[str, Any] = {
            "tenant": tenant_id,
            "prefix": prefix,
            "events": events,
            "runs": runs,
            "start": start,
            "step": timedelta(days=days) / max(events, 1),
            "names": list(WORKFLOW_NAMES),
            "name_count": len(WORKFLOW_NAMES),
            "bucket": bucket,
            "before": before,
            "cost_basis": cost_basis,
            "version": version["pk"],
        }
        cursor.execute(_PLAN, params)
        cursor.execute("SELECT coalesce(sum(credits), 0) FROM portal_seed")
        (spent,) = cursor.fetchone()
        if spent > remaining:
            raise ValueError(f"The bucket holds {remaining} credits, the events spend {spent}.")
        if runs:
            cursor.execute(_RUNS, params)
        for sql in (_TRANSACTIONS, _ENTRIES, _EVENTS):
            cursor.execute(sql, params)
        if runs:
            cursor.execute(_RUN_TOTALS, params)
        cursor.execute(
            "UPDATE ledger_creditbucket SET remaining = remaining - %s "
            "WHERE tenant_id = %s AND id = %s",
            [spent, tenant_id, bucket],
        )
        _refresh_account_totals(cursor, [tenant_id])
        # ON COMMIT DROP alone would keep it until the outermost commit (a test's transaction).
        cursor.execute("DROP TABLE portal_seed")
    return Decimal(spent)
