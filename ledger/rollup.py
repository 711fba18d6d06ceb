"""The ledger's daily debit totals (DebitDay), kept off the hot path: the beat task
`ledger.debit_days_update` (every 30 s) folds the ledger transactions written since its last
run into their tenant's UTC day, exactly once (tenants/tailing.py: the watermark never passes a
transaction that commits after a later one). A day's credits are its debits less the
reversals (refunds) dated that day; negative adjustments are corrections, not usage, and stay
out, as do the credits of a refunded purchase taken back (a negative reversal). The burn rate
(ledger.selectors.burn_rate_get) reads at most 30 of these rows.

Nothing to backfill by hand: the watermark starts at 0, so the first runs fold the whole
history, a chunk of ids per transaction."""

from django.db import connection

from ledger.models import EntryKind, LedgerTransaction, LedgerWatermark
from tenants.tailing import DRAIN_TIMEOUT, tail_run

DEBIT_DAYS = "debit_days"

_FOLD = """
INSERT INTO ledger_debitday AS d (tenant_id, day, credits)
SELECT tenant_id, (created_at AT TIME ZONE 'UTC')::date, -sum(amount)
  FROM ledger_ledgertransaction
 WHERE id > %s AND id <= %s AND kind = ANY(%s::varchar[])
   -- A negative reversal takes a refunded purchase's credits back (ledger_grant_revoke):
   -- not usage.
   AND (kind <> 'reversal' OR amount > 0)
 GROUP BY 1, 2
ON CONFLICT (tenant_id, day) DO UPDATE SET credits = d.credits + EXCLUDED.credits
"""


def _fold(lo: int, hi: int) -> None:
    # A debit's amount is negative, a reversal's positive: -sum is what was spent, net.
    with connection.cursor() as cursor:
        cursor.execute(_FOLD, [lo, hi, [EntryKind.DEBIT.value, EntryKind.REVERSAL.value]])


def debit_days_update(*, timeout: float = DRAIN_TIMEOUT) -> int | None:
    """One run: how many transaction ids the watermark moved over (None: writers seen at the
    observation still ran after `timeout` seconds; the next run goes on)."""
    return tail_run(
        table=LedgerTransaction._meta.db_table,
        watermark_model=LedgerWatermark,
        name=DEBIT_DAYS,
        fold=_fold,
        timeout=timeout,
    )
