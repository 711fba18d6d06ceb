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

Reads the rollups (metering's UsageDay and UsageRefusalDay) and succeeded top-ups: a fixed
number of statements whatever the number of customers. Refusals are recorded only since
`usage_refusals_since()`; periods before it are marked.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.db.models import Sum

from billing.models import LIVE_SUBSCRIPTION, Plan, PlanPrice, Subscription, TopUp
from ledger.periods import add_months, period_index
from metering.models import UsageDay, UsageRefusalDay
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
    """The plan's fee for `seats` seats in `currency` (None: not sold in it)."""
    found = prices.get((plan.pk, currency))
    if found is not None:
        return found.base_minor + found.per_seat_minor * seats
    return plan.price_minor if plan.currency == currency else None


def plan_fit_list(*, now: datetime) -> list[PlanFit]:
    """Every live subscription with its last complete periods and a suggestion."""
    subs = list(
        Subscription.objects.filter(status__in=LIVE_SUBSCRIPTION)
        .select_related("tenant", "plan")
        .order_by("tenant__name")
    )
    windows = {s.pk: _periods(s, now) for s in subs}
    starts = [w[0][0] for w in windows.values() if w]
    if not starts:
        return []
    since = min(starts)
    tenant_ids = [s.tenant_id for s in subs]
    used: dict[int, dict[date, Decimal]] = defaultdict(dict)
    for tenant_id, day, total in (
        UsageDay.objects.filter(tenant_id__in=tenant_ids, day__gte=since.date())
        .values("tenant_id", "day")
        .annotate(total=Sum("credits"))
        .values_list("tenant_id", "day", "total")
    ):
        used[tenant_id][day] = total
    refusals: dict[tuple[int, str], dict[date, int]] = defaultdict(dict)
    for tenant_id, day, reason, count in UsageRefusalDay.objects.filter(
        tenant_id__in=tenant_ids, day__gte=since.date()
    ).values_list("tenant_id", "day", "reason", "count"):
        refusals[(tenant_id, reason)][day] = count
    top_ups: dict[int, list[tuple[datetime, int, str]]] = defaultdict(list)
    for tenant_id, at, amount, currency in TopUp.objects.filter(
        tenant_id__in=tenant_ids, status=TopUp.Status.SUCCEEDED, completed_at__gte=since
    ).values_list("tenant_id", "completed_at", "amount_minor", "currency"):
        if at is not None:  # a succeeded top-up has its completion time
            top_ups[tenant_id].append((at, amount, currency))
    plans = list(Plan.objects.filter(active=True))
    prices = {(p.plan_id, p.currency): p for p in PlanPrice.objects.all()}
    recorded_since = usage_refusals_since()
    fits = []
    for sub in subs:
        periods = [
            _period_fit(sub, start, end, used, refusals, top_ups, recorded_since)
            for start, end in windows[sub.pk]
        ]
        fits.append(_fit(sub, periods, plans, prices))
    return fits


def _period_fit(
    sub: Subscription,
    start: datetime,
    end: datetime,
    used: dict[int, dict[date, Decimal]],
    refusals: dict[tuple[int, str], dict[date, int]],
    top_ups: dict[int, list[tuple[datetime, int, str]]],
    recorded_since: datetime | None,
) -> PeriodFit:
    first, last = _days(start, end)

    def in_days(by_day: dict[date, int]) -> int:
        return sum(n for day, n in by_day.items() if first <= day <= last)

    bought = [(a, c) for at, a, c in top_ups.get(sub.tenant_id, []) if start <= at < end]
    return PeriodFit(
        start=start,
        end=end,
        used=sum(
            (c for day, c in used.get(sub.tenant_id, {}).items() if first <= day <= last), ZERO
        ),
        ran_out=in_days(refusals.get((sub.tenant_id, RAN_OUT), {})),
        soft_cap=in_days(refusals.get((sub.tenant_id, SOFT_CAP), {})),
        top_ups=len(bought),
        top_up_minor=sum(a for a, c in bought if c == sub.currency),
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
