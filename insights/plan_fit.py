"""Plan fit: which customers on a plan should move up or down, and the money either way.

For every live subscription, its last three complete billing periods (anchored as billing's,
ledger/periods.py; a period's UTC days run from its start's date to the day before its end's):
- **up**: in two of them the customer ran out (a 402 for want of credits), hit the soft cap
  (a run refused) or bought a top-up → the next plan up (the cheapest plan in its currency
  that includes more credits for its seats);
- **down**: in two of them it used under a third of what its plan includes → the next plan
  down (the largest that includes fewer). Up wins when both hold.
Money is the plans' prices for the customer's seats in its subscription's currency (PlanPrice,
else the list price when the plan is listed in it); never summed across currencies.

Credits used are the ledger's daily debit totals (DebitDay: a row per tenant and day, debits
less refunds), summed per period by `ledger.rollup_selectors.debit_days_spent`; the refusals
(metering's UsageRefusalDay) and succeeded top-ups in one more statement. Both join the
periods' bounds: a fixed number of statements, and a few rows per customer, whatever the
number of days. The figures are metering's UsageDay credits summed per tenant and day (every
debit is a usage event's, every refund a reversal of one, dated as the event and refund are:
tests/insights/test_plan_fit.py checks the two rollups agree), read from a fifth of the rows.
Refusals are recorded only since `usage_refusals_since()`; periods before it are marked.
"""

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db import connection

from billing.models import LIVE_SUBSCRIPTION, Plan, PlanPrice, Subscription, TopUp
from ledger.periods import add_months, period_index
from ledger.rollup_selectors import debit_days_spent
from metering.models import UsageRefusalDay
from metering.rollup_selectors import usage_refusals_since
from tenants.models import Tenant

ZERO = Decimal("0")
PERIODS = 3
NEEDED = 2  # of the PERIODS
UNDER = Decimal(1) / 3
RAN_OUT = "insufficient_credits"
SOFT_CAP = "soft_cap_reached"


@dataclass(frozen=True)
class PeriodFit:
    start: datetime
    end: datetime
    used: Decimal
    ran_out: int  # 402s for want of credits
    soft_cap: int  # runs refused at the soft cap
    top_ups: int
    top_up_minor: int
    refusals_known: bool  # the period started after refusals were first recorded

    @property
    def pressed(self) -> bool:
        return bool(self.ran_out or self.soft_cap or self.top_ups)


@dataclass(frozen=True)
class PlanFit:
    tenant: Tenant
    subscription: Subscription
    allowance: Decimal
    periods: list[PeriodFit]
    suggestion: str  # "up", "down" or ""
    suggested: Plan | None
    currency: str
    price_minor: int | None  # the current plan for its seats, in `currency`
    suggested_price_minor: int | None

    @property
    def difference_minor(self) -> int | None:
        """What the move changes the customer's bill by, per period (+ up, - down)."""
        if self.price_minor is None or self.suggested_price_minor is None:
            return None
        return self.suggested_price_minor - self.price_minor

    @property
    def difference_abs_minor(self) -> int | None:
        d = self.difference_minor
        return None if d is None else abs(d)

    @property
    def top_up_minor(self) -> int:
        return sum(p.top_up_minor for p in self.periods)


def _periods(sub: Subscription, now: datetime) -> list[tuple[datetime, datetime]]:
    """The last PERIODS complete periods of the subscription, oldest first."""
    current = period_index(sub.anchor, now)
    return [
        (add_months(sub.anchor, k), add_months(sub.anchor, k + 1))
        for k in range(max(0, current - PERIODS), current)
    ]


def _days(start: datetime, end: datetime) -> tuple[date, date]:
    return start.date(), (end - timedelta(microseconds=1)).date()


def _price(
    plan: Plan, seats: int, currency: str, prices: dict[tuple[int, str], PlanPrice]
) -> int | None:
    """The plan's fee for `seats` seats in `currency`, as subscribing charges it (None: it has
    no price in it, and subscribing to it would be refused)."""
    found = prices.get((plan.pk, currency))
    return None if found is None else found.base_minor + found.per_seat_minor * seats


# Per subscription and period (the arrays, one element per period): refusals by reason and
# succeeded top-ups (their money in the subscription's currency), each summed in the database
# over the period's UTC days (its completion time for a top-up). One statement whatever the
# number of customers; each lateral reads one tenant's rows through its tenant-led key. The
# periods travel as one JSON parameter (json.dumps is C; psycopg's client-side binding of
# arrays quotes every element in Python: ~50 ms for 3,000 periods).
_PERIOD_SUMS = """
WITH p AS (
    SELECT * FROM json_to_recordset(%s::json)
        AS p (subscription_id bigint, k int, tenant_id bigint, currency text,
              start_at timestamptz, end_at timestamptz, first_day date, last_day date)
)
SELECT p.subscription_id, p.k, r.ran_out, r.soft_cap, t.bought, t.bought_minor
  FROM p
  CROSS JOIN LATERAL (
        SELECT coalesce(sum(r.count) FILTER (WHERE r.reason = %s), 0) AS ran_out,
               coalesce(sum(r.count) FILTER (WHERE r.reason = %s), 0) AS soft_cap
          FROM {refusals} r
         WHERE r.tenant_id = p.tenant_id AND r.day BETWEEN p.first_day AND p.last_day) r
  CROSS JOIN LATERAL (
        SELECT count(*) AS bought,
               coalesce(sum(t.amount_minor) FILTER (WHERE t.currency = p.currency), 0)
                   AS bought_minor
          FROM {top_ups} t
         WHERE t.tenant_id = p.tenant_id AND t.status = %s
           AND t.completed_at >= p.start_at AND t.completed_at < p.end_at) t
"""


@dataclass(frozen=True)
class _Sums:
    used: Decimal
    ran_out: int
    soft_cap: int
    top_ups: int
    top_up_minor: int


def _period_sums(
    subs: list[Subscription], windows: dict[int, list[tuple[datetime, datetime]]]
) -> dict[tuple[int, int], _Sums]:
    """The sums of every subscription's periods, by (subscription id, period's position)."""
    periods: list[dict[str, object]] = []
    keys: list[tuple[int, int]] = []
    days: list[tuple[int, date, date]] = []
    for sub in subs:
        for k, (start, end) in enumerate(windows[sub.pk]):
            first, last = _days(start, end)
            periods.append(
                {
                    "subscription_id": sub.pk,
                    "k": k,
                    "tenant_id": sub.tenant_id,
                    "currency": sub.currency,
                    "start_at": start.isoformat(),
                    "end_at": end.isoformat(),
                    "first_day": first.isoformat(),
                    "last_day": last.isoformat(),
                }
            )
            keys.append((sub.pk, k))
            days.append((sub.tenant_id, first, last))
    used = dict(zip(keys, debit_days_spent(windows=days), strict=True))
    sql = _PERIOD_SUMS.format(refusals=UsageRefusalDay._meta.db_table, top_ups=TopUp._meta.db_table)
    params = [json.dumps(periods, separators=(",", ":")), RAN_OUT, SOFT_CAP]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, TopUp.Status.SUCCEEDED.value])
        return {
            (sub_id, k): _Sums(used[(sub_id, k)], ran_out, soft_cap, bought, bought_minor)
            for sub_id, k, ran_out, soft_cap, bought, bought_minor in cursor.fetchall()
        }


def plan_fit_list(*, now: datetime) -> list[PlanFit]:
    """Every live subscription with its last complete periods and a suggestion."""
    subs = list(
        Subscription.objects.filter(status__in=LIVE_SUBSCRIPTION)
        .select_related("tenant", "plan")
        .order_by("tenant__name")
    )
    windows = {s.pk: _periods(s, now) for s in subs}
    if not any(windows.values()):
        return []
    sums = _period_sums(subs, windows)
    plans = list(Plan.objects.filter(active=True))
    prices = {(p.plan_id, p.currency): p for p in PlanPrice.objects.all()}
    recorded_since = usage_refusals_since()
    fits = []
    for sub in subs:
        periods = [
            _period_fit(start, end, sums[(sub.pk, k)], recorded_since)
            for k, (start, end) in enumerate(windows[sub.pk])
        ]
        fits.append(_fit(sub, periods, plans, prices))
    return fits


def _period_fit(
    start: datetime, end: datetime, sums: _Sums, recorded_since: datetime | None
) -> PeriodFit:
    return PeriodFit(
        start=start,
        end=end,
        used=sums.used,
        ran_out=sums.ran_out,
        soft_cap=sums.soft_cap,
        top_ups=sums.top_ups,
        top_up_minor=sums.top_up_minor,
        refusals_known=recorded_since is not None and recorded_since <= start,
    )


def _fit(
    sub: Subscription,
    periods: list[PeriodFit],
    plans: list[Plan],
    prices: dict[tuple[int, str], PlanPrice],
) -> PlanFit:
    allowance = sub.plan.allowance(sub.seats)
    pressed = sum(p.pressed for p in periods)
    idle = sum(p.used < allowance * UNDER for p in periods)
    suggestion = "up" if pressed >= NEEDED else "down" if idle >= NEEDED else ""
    sold = [
        (p, price)
        for p in plans
        if p.pk != sub.plan_id and (price := _price(p, sub.seats, sub.currency, prices)) is not None
    ]
    suggested: tuple[Plan, int] | None = None
    if suggestion == "up":
        bigger = [(p, pr) for p, pr in sold if p.allowance(sub.seats) > allowance]
        suggested = min(bigger, key=lambda o: (o[1], o[0].allowance(sub.seats)), default=None)
    elif suggestion == "down":
        smaller = [(p, pr) for p, pr in sold if p.allowance(sub.seats) < allowance]
        suggested = max(smaller, key=lambda o: (o[0].allowance(sub.seats), -o[1]), default=None)
    return PlanFit(
        tenant=sub.tenant,
        subscription=sub,
        allowance=allowance,
        periods=periods,
        suggestion=suggestion,
        suggested=suggested[0] if suggested else None,
        currency=sub.currency,
        price_minor=_price(sub.plan, sub.seats, sub.currency, prices),
        suggested_price_minor=suggested[1] if suggested else None,
    )
