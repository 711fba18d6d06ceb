"""The console benchmark's data (Django set up by the caller): tenants, plans, subscriptions,
contracts, rate-card versions, and days of the rollups the console reads, written directly in
set-based SQL (a year of 1,000 tenants' days through the rollup job would need a year of
events first).

Per tenant and UTC day (`seed_rollups`):

- insights' MarginDay: five rows (chat, chat at `turbo`, doc_search, web_research in the run
  "Research competitors", action_execution in "Answer tickets"), 5-44 events each, credits at
  the example card's weights (1/3/10/15, x6 for turbo), revenue at the packs' cost basis (1
  minor unit a credit), COGS 0.3 minor units a credit (a 70 % margin; x4 for every 17th tenant,
  margin-negative); every 10th tenant has one event a row without cost components.
- insights' MarginTotalDay, TenantMarginDay and TenantMarginMonth: MarginDay summed (over
  tenants; over actions per tenant and day; per tenant and month), as the rollup job keeps them.
- metering's UsageDay: the same rows as usage (no money but COGS).
- the ledger's DebitDay: UsageDay's credits summed per tenant and day, as the ledger's job
  keeps them from the debits of those events (plan fit reads it).
- metering's UsageRefusalDay: every 6th day, 3 refusals for want of credits (every 5th tenant)
  or at the soft cap (the next one).
- insights' ValueDay: the day's spend out of the permanent top-up bucket; on the 1st a
  monthly_reset subscription grant of 1,000 credits (0.8 minor units each), on the 28th 200 of
  them (400 for every 3rd tenant) expire (breakage).

Rows already there are kept (`ON CONFLICT DO NOTHING`), so a larger seed extends a smaller one.
The rollups deliberately disagree with the ledger (it holds only each tenant's pack): the
reconciliation page then lists a problem per tenant, which is more to render, not less.
Like bench/seed.py, this is test data in a throwaway database.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection

# (action, model class, workflow, credits per event, COGS minor units per event)
ROWS = (
    ("chat", "", "", 1, "0.3"),
    ("chat", "turbo", "", 6, "1.8"),
    ("doc_search", "", "", 3, "0.9"),
    ("web_research", "", "Research competitors", 10, "3.0"),
    ("action_execution", "", "Answer tickets", 15, "4.5"),
)
_VALUES = ", ".join(f"('{a}', '{m}', '{w}', {c}, {cost})" for a, m, w, c, cost in ROWS)

_GRID = f"""
FROM unnest(%(tenants)s::bigint[]) AS t(id)
CROSS JOIN (SELECT %(first)s::date + g AS day FROM generate_series(0, %(days)s - 1) AS g) d
CROSS JOIN (VALUES {_VALUES}) AS a(action, model_class, workflow, weight, cost)
CROSS JOIN LATERAL (
    SELECT 5 + (t.id * 7 + (d.day - DATE '2000-01-01') + a.weight) %% 40 AS events,
           CASE WHEN t.id %% 10 = 0 THEN 1 ELSE 0 END AS nocost,
           CASE WHEN t.id %% 17 = 0 THEN 4 ELSE 1 END AS dear
) e
"""
_MARGIN = f"""
INSERT INTO insights_marginday (
    tenant_id, day, action, model_class, workflow, currency, cogs_currency, events, quantity,
    credits, revenue_minor, cogs_minor, events_without_cost, quantity_without_cost,
    credits_without_cost, revenue_without_cost_minor)
SELECT t.id, d.day, a.action, a.model_class, a.workflow, 'USD', 'USD', e.events, e.events,
       e.events * a.weight, e.events * a.weight, (e.events - e.nocost) * a.cost * e.dear,
       e.nocost, e.nocost, e.nocost * a.weight, e.nocost * a.weight
{_GRID}
ON CONFLICT DO NOTHING
"""
_SUMS = """events, quantity, credits, revenue_minor, cogs_minor, events_without_cost,
    quantity_without_cost, credits_without_cost, revenue_without_cost_minor"""
_SUMMED = ", ".join(f"sum({c.strip()})" for c in _SUMS.split(","))
_REPLACED = ", ".join(f"{c.strip()} = EXCLUDED.{c.strip()}" for c in _SUMS.split(","))
# The rollups summed from MarginDay (insights/rollup.py keeps them in the same statement as
# MarginDay), recomputed here from MarginDay over what this seed covers, so they equal its
# sums whatever was there before: every tenant's days from `first` on, and the seeded tenants'
# days and whole months from the first of `first`'s month.
_TOTAL_DAYS = f"""
INSERT INTO insights_margintotalday (
    day, action, model_class, workflow, currency, cogs_currency, {_SUMS})
SELECT day, action, model_class, workflow, currency, cogs_currency, {_SUMMED}
  FROM insights_marginday WHERE day >= %(first)s GROUP BY 1, 2, 3, 4, 5, 6
ON CONFLICT (day, action, model_class, workflow, currency, cogs_currency)
DO UPDATE SET {_REPLACED}
"""
_TENANT_DAYS = f"""
INSERT INTO insights_tenantmarginday (tenant_id, day, currency, cogs_currency, {_SUMS})
SELECT tenant_id, day, currency, cogs_currency, {_SUMMED}
  FROM insights_marginday WHERE tenant_id = ANY(%(tenants)s) AND day >= %(first)s
 GROUP BY 1, 2, 3, 4
ON CONFLICT (tenant_id, day, currency, cogs_currency) DO UPDATE SET {_REPLACED}
"""
_TENANT_MONTHS = f"""
INSERT INTO insights_tenantmarginmonth (tenant_id, month, currency, cogs_currency, {_SUMS})
SELECT tenant_id, date_trunc('month', day)::date, currency, cogs_currency, {_SUMMED}
  FROM insights_marginday
 WHERE tenant_id = ANY(%(tenants)s) AND day >= date_trunc('month', %(first)s::date)
 GROUP BY 1, 2, 3, 4
ON CONFLICT (tenant_id, month, currency, cogs_currency) DO UPDATE SET {_REPLACED}
"""
_USAGE = f"""
INSERT INTO metering_usageday (
    tenant_id, day, action, model_class, workflow, cogs_currency, events, quantity, credits,
    credits_refunded, cogs_minor, events_without_cost)
SELECT t.id, d.day, a.action, a.model_class, a.workflow, 'USD', e.events, e.events,
       e.events * a.weight, 0, (e.events - e.nocost) * a.cost * e.dear, e.nocost
{_GRID}
ON CONFLICT DO NOTHING
"""
# Recomputed from UsageDay over what this seed covers, like the margin sums above.
_DEBIT_DAYS = """
INSERT INTO ledger_debitday (tenant_id, day, credits)
SELECT tenant_id, day, sum(credits)
  FROM metering_usageday WHERE tenant_id = ANY(%(tenants)s) AND day >= %(first)s
 GROUP BY 1, 2
ON CONFLICT (tenant_id, day) DO UPDATE SET credits = EXCLUDED.credits
"""
_REFUSALS = """
INSERT INTO metering_usagerefusalday (tenant_id, day, reason, count)
SELECT t.id, d.day,
       CASE WHEN t.id %% 5 = 0 THEN 'insufficient_credits' ELSE 'soft_cap_reached' END, 3
FROM unnest(%(tenants)s::bigint[]) AS t(id)
CROSS JOIN (SELECT %(first)s::date + g AS day FROM generate_series(0, %(days)s - 1) AS g) d
WHERE t.id %% 5 IN (0, 1) AND (d.day - DATE '2000-01-01') %% 6 = 0
ON CONFLICT DO NOTHING
"""
_VALUE_SPEND = """
INSERT INTO insights_valueday (
    tenant_id, day, movement, policy, source, currency, credits, value_minor)
SELECT tenant_id, day, 'spend', 'permanent', 'topup', 'USD', -sum(credits), -sum(revenue_minor)
FROM insights_marginday
WHERE tenant_id = ANY(%(tenants)s) AND day >= %(first)s
GROUP BY tenant_id, day
ON CONFLICT DO NOTHING
"""
_VALUE_MONTHLY = """
INSERT INTO insights_valueday (
    tenant_id, day, movement, policy, source, currency, credits, value_minor)
SELECT t.id, d.day, m.movement, 'monthly_reset', 'subscription', 'USD', m.credits,
       m.credits * 0.8
FROM unnest(%(tenants)s::bigint[]) AS t(id)
CROSS JOIN (SELECT %(first)s::date + g AS day FROM generate_series(0, %(days)s - 1) AS g) d
CROSS JOIN LATERAL (
    SELECT 'grant' AS movement, 1000 AS credits WHERE extract(day FROM d.day) = 1
    UNION ALL
    SELECT 'expiry', CASE WHEN t.id %% 3 = 0 THEN -400 ELSE -200 END
    WHERE extract(day FROM d.day) = 28
) m
ON CONFLICT DO NOTHING
"""


def seed_rollups(*, tenant_ids: list[int], days: int, today: date) -> dict[str, int]:
    """`days` days up to `today` of every rollup for the tenants; returns the rows per table."""
    params: dict[str, Any] = {
        "tenants": tenant_ids,
        "first": today - timedelta(days=days - 1),
        "days": days,
    }
    counts = {}
    with connection.cursor() as cursor:
        for name, sql in (
            ("margin days", _MARGIN),
            ("margin days, all tenants", _TOTAL_DAYS),
            ("margin days, per tenant", _TENANT_DAYS),
            ("margin months, per tenant", _TENANT_MONTHS),
            ("usage days", _USAGE),
            ("debit days", _DEBIT_DAYS),
            ("refusal days", _REFUSALS),
            ("value days (spend)", _VALUE_SPEND),
            ("value days (grants, expiry)", _VALUE_MONTHLY),
        ):
            cursor.execute(sql, params)
            counts[name] = cursor.rowcount
    return counts


PLANS = (
    # slug, name, price in cents, included credits
    ("bench-starter", "Starter", 1_000, 1_000),
    ("bench-pro", "Pro", 9_900, 20_000),
    ("bench-scale", "Scale", 39_900, 100_000),
)


def seed_plans() -> list[Any]:
    """The plans, each sold in USD at its list price (a PlanPrice: what plan fit prices by)."""
    from billing.models import Plan, PlanPrice

    plans = [
        Plan.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "price_minor": price,
                "currency": "USD",
                "included_credits": Decimal(credits),
            },
        )[0]
        for slug, name, price, credits in PLANS
    ]
    for plan in plans:
        PlanPrice.objects.get_or_create(
            plan=plan, currency="USD", defaults={"base_minor": plan.price_minor}
        )
    return plans


def seed_subscriptions(*, tenants: list[Any], plans: list[Any], now: datetime) -> None:
    """A live subscription each, anchored ~7 months ago (three complete periods and more):
    the n-th tenant on plans[n % 3] (Starter: refused often, Pro: about its allowance, Scale:
    under a third of it)."""
    from billing.models import Subscription
    from ledger.periods import period_bounds

    rows = []
    for tenant in tenants:
        anchor = (now - timedelta(days=215)).replace(
            day=1 + tenant.pk % 28, hour=0, minute=0, second=0, microsecond=0
        )
        start, end = period_bounds(anchor, now)
        rows.append(
            Subscription(
                tenant=tenant,
                plan=plans[tenant.pk % len(plans)],
                currency="USD",
                anchor=anchor,
                current_period_start=start,
                current_period_end=end,
            )
        )
    Subscription.objects.bulk_create(rows)


def seed_contracts(*, tenants: list[Any], card: Any, pinned_to: Any, now: datetime) -> list[Any]:
    """An active contract for each of the tenants; every other one (the first too) pinned to
    `pinned_to` (an older version than the card's current one: a rate-card trap to figure)."""
    from billing.models import Contract

    rows = []
    for n, tenant in enumerate(tenants):
        pinned = n % 2 == 0
        rows.append(
            Contract(
                tenant=tenant,
                name=f"Annual {tenant.name}",
                status=Contract.Status.ACTIVE,
                price_per_1000_minor=900,
                currency="USD",
                committed_credits=Decimal(100_000),
                start_at=now - timedelta(days=100),
                end_at=now + timedelta(days=265),
                rate_card=card,
                rate_card_mode=(
                    Contract.RateCardMode.PINNED if pinned else Contract.RateCardMode.FOLLOW
                ),
                pinned_version=pinned_to if pinned else None,
                pinned_until=now + timedelta(days=60) if pinned else None,
                activated_at=now - timedelta(days=100),
            )
        )
    return Contract.objects.bulk_create(rows)
