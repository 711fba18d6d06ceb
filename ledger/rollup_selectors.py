"""Reads of the ledger's daily debit totals (DebitDay, ledger/rollup.py): the burn rate, and
the credits spent in ranges of days (the console's plan fit)."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import connection
from django.utils import timezone

from ledger.models import ZERO, DebitDay, LedgerWatermark
from ledger.rollup import DEBIT_DAYS
from tenants.models import Tenant

BURN_WINDOWS = (7, 30)
_MICROS_A_DAY = Decimal(86_400_000_000)
_RATE_QUANTUM = Decimal("0.0001")
_SECONDS_A_DAY = 86_400
# A run-out date further away than this is no date: a big balance and a trickle of usage
# would otherwise pass the last year a datetime holds (an OverflowError, a 500).
RUN_OUT_HORIZON_DAYS = 36_500


@dataclass(frozen=True)
class BurnRate:
    """Average credits spent per day (debits less refunds) over the last 7 and 30 days, and
    when the available balance runs out at that pace (None: no usage to project from, or not
    within RUN_OUT_HORIZON_DAYS)."""

    per_day_7d: Decimal
    per_day_30d: Decimal
    runs_out_at: datetime | None


def burn_rate_get(*, tenant: Tenant, available: Decimal, at: datetime | None = None) -> BurnRate:
    """From the ledger's daily debit totals (DebitDay, kept off the hot path by
    ledger/rollup.py, fresh within a minute): one indexed read of at most 30 rows.

    A window of N days is the N UTC days ending today, today counting for the part of it that
    has passed: the average is their credits over (N - 1 + that part) days. The run-out date
    projects the available balance at the 7-day pace (the 30-day one when the last 7 days
    spent nothing); a balance already at or below zero has run out `at` now."""
    now = at or timezone.now()
    today = now.astimezone(UTC).date()
    longest = max(BURN_WINDOWS)
    spent = dict(
        DebitDay.objects.filter(
            tenant=tenant, day__gt=today - timedelta(days=longest), day__lte=today
        ).values_list("day", "credits")
    )
    midnight = datetime.combine(today, time.min, tzinfo=UTC)
    passed = now - midnight
    today_part = Decimal(passed.seconds * 1_000_000 + passed.microseconds) / _MICROS_A_DAY
    rates = {}
    for days in BURN_WINDOWS:
        total = sum(
            (credits for day, credits in spent.items() if day > today - timedelta(days=days)),
            ZERO,
        )
        rate = max(total, ZERO) / (days - 1 + today_part)
        rates[days] = rate.quantize(_RATE_QUANTUM, rounding=ROUND_HALF_UP)
    pace = rates[7] or rates[30]
    runs_out_at = None
    if pace > 0:
        left = max(available, ZERO) / pace * _SECONDS_A_DAY
        if left <= RUN_OUT_HORIZON_DAYS * _SECONDS_A_DAY:
            runs_out_at = now + timedelta(seconds=int(left.to_integral_value(ROUND_HALF_UP)))
    return BurnRate(per_day_7d=rates[7], per_day_30d=rates[30], runs_out_at=runs_out_at)


def debit_days_as_of() -> datetime | None:
    """The time up to which the daily debit totals are complete (None before the first run)."""
    return LedgerWatermark.objects.filter(name=DEBIT_DAYS).values_list("as_of", flat=True).first()


# One row per window, in the windows' order; each sum reads one tenant's days through
# DebitDay's (tenant, day) key. The windows travel as one JSON parameter: json.dumps is C,
# where psycopg's client-side binding of date arrays quotes every element in Python.
_SPENT_IN = """
SELECT coalesce((SELECT sum(d.credits) FROM {table} d
                  WHERE d.tenant_id = (w.v ->> 0)::bigint
                    AND d.day BETWEEN (w.v ->> 1)::date AND (w.v ->> 2)::date),
                0)
  FROM json_array_elements(%s::json) WITH ORDINALITY AS w (v, n)
 ORDER BY w.n
"""


def debit_days_spent(*, windows: Sequence[tuple[int, date, date]]) -> list[Decimal]:
    """The credits each window's tenant spent (debits less refunds, as DebitDay keeps them)
    over the UTC days `first`..`last`, both counted, one figure per (tenant id, first, last)
    in the same order: one statement whatever the number of windows."""
    if not windows:
        return []
    rows = [[tenant_id, first.isoformat(), last.isoformat()] for tenant_id, first, last in windows]
    with connection.cursor() as cursor:
        cursor.execute(
            _SPENT_IN.format(table=DebitDay._meta.db_table),
            [json.dumps(rows, separators=(",", ":"))],
        )
        return [spent for (spent,) in cursor.fetchall()]
