"""The console's reads: margin and breakage over a range of days, from its rollups only
(insights/rollup.py), never from the events. Money stays per currency: every row is keyed by
its currency and nothing adds two currencies; a margin is computed where revenue and COGS share
a currency, and otherwise through the vendor's exchange-rate table (insights/fx.py: each day's
COGS at the rate in force that day, into the revenue's currency; without a rate, no margin,
shown as "no exchange rate").

A margin is computed over the events whose cost is known: events reported without any cost
component are counted apart (`events_without_cost`, their credits and revenue), shown as "cost
unknown", never as 100 % margin."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from django.db import connection
from django.db.models import F, QuerySet, Sum
from django.db.models.functions import TruncMonth

from insights.fx import FxCogs, fx_cogs
from insights.models import (
    InsightsWatermark,
    MarginDay,
    MarginTotalDay,
    Movement,
    TenantMarginDay,
    TenantMarginMonth,
    ValueDay,
)
from insights.rollup import ENTRIES, EVENTS
from tenants.models import Tenant

ZERO = Decimal("0")
PERCENT = Decimal("0.1")
MarginBy = Literal["tenant", "workflow", "action", "model_class", "day"]
MARGIN_BY: tuple[MarginBy, ...] = ("tenant", "workflow", "action", "model_class", "day")


def gross_margin(*, revenue: Decimal, cogs: Decimal) -> Decimal | None:
    """(revenue - COGS) / revenue, unrounded; None without revenue (no margin to speak of)."""
    if revenue <= 0:
        return None
    return (revenue - cogs) / revenue


def percent(ratio: Decimal | None) -> Decimal | None:
    """0.699 → 69.9 (one decimal place, half up)."""
    if ratio is None:
        return None
    return (ratio * 100).quantize(PERCENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class MarginRow:
    """One group's money in one currency pair. Revenue and credits are net of refunds."""

    key: str | int | date
    currency: str
    cogs_currency: str
    events: int
    quantity: Decimal
    credits: Decimal
    revenue_minor: Decimal
    cogs_minor: Decimal
    events_without_cost: int
    quantity_without_cost: Decimal
    credits_without_cost: Decimal
    revenue_without_cost_minor: Decimal
    label: str = ""
    # COGS in the revenue's currency (insights/fx.py): set on a row of two currencies only.
    fx: FxCogs | None = None

    @property
    def revenue_known_minor(self) -> Decimal:
        """The revenue of the events whose cost is known: what a margin is measured on."""
        return self.revenue_minor - self.revenue_without_cost_minor

    @property
    def cogs_in_revenue_currency_minor(self) -> Decimal | None:
        """The COGS a margin subtracts: as recorded where revenue and cost share a currency,
        else converted at the rates in force (None: a day without a rate; never a mix)."""
        if self.currency == self.cogs_currency:
            return self.cogs_minor
        return self.fx.converted_minor if self.fx is not None else None

    @property
    def no_exchange_rate(self) -> bool:
        return self.cogs_in_revenue_currency_minor is None

    @property
    def converted(self) -> bool:
        """Its COGS were converted at the vendor's rates (the margin is shown as such)."""
        return self.currency != self.cogs_currency and not self.no_exchange_rate

    @property
    def margin(self) -> Decimal | None:
        cogs = self.cogs_in_revenue_currency_minor
        if cogs is None:
            return None
        return gross_margin(revenue=self.revenue_known_minor, cogs=cogs)

    @property
    def margin_percent(self) -> Decimal | None:
        return percent(self.margin)

    @property
    def cost_unknown(self) -> bool:
        return self.events_without_cost > 0

    @property
    def negative(self) -> bool:
        return self.margin is not None and self.margin < 0


_MARGIN_SUMS = {
    "events": Sum("events"),
    "quantity_sum": Sum("quantity"),
    "credits_sum": Sum("credits"),
    "revenue": Sum("revenue_minor"),
    "cogs": Sum("cogs_minor"),
    "nocost_events": Sum("events_without_cost"),
    "nocost_quantity": Sum("quantity_without_cost"),
    "nocost_credits": Sum("credits_without_cost"),
    "nocost_revenue": Sum("revenue_without_cost_minor"),
}
_GROUP_FIELD: dict[MarginBy, str] = {
    "tenant": "tenant_id",
    "workflow": "workflow",
    "action": "action",
    "model_class": "model_class",
    "day": "day",
}


def margin_days(*, start: date, end: date, tenant: Tenant | None = None) -> QuerySet[MarginDay]:
    """The rollup rows of days start..end (inclusive), of one tenant or of all."""
    rows = MarginDay.objects.filter(day__gte=start, day__lte=end)
    return rows.filter(tenant=tenant) if tenant is not None else rows


def margin_list(
    *, start: date, end: date, by: MarginBy, tenant: Tenant | None = None
) -> list[MarginRow]:
    """Margin by customer, workflow, action, model class or day over start..end, one row per
    group and currency pair (one query, whatever the range). One customer's from its
    MarginDay rows; every customer's from the rollups summed from them (MarginTotalDay; by
    customer, TenantMarginMonth and TenantMarginDay), so that a year of 1,000 tenants reads a
    few thousand rows a day or tens of thousands by customer, not millions."""
    if by == "tenant" and tenant is None:
        return tenant_margin_list(start=start, end=end)
    field = _GROUP_FIELD[by]
    days: QuerySet[MarginDay] | QuerySet[MarginTotalDay] = (
        margin_days(start=start, end=end, tenant=tenant)
        if tenant is not None
        else MarginTotalDay.objects.filter(day__gte=start, day__lte=end)
    )
    grouped = (
        days.values(field, "currency", "cogs_currency")
        .annotate(**_MARGIN_SUMS)
        .order_by(field, "currency", "cogs_currency")
    )
    return with_fx([margin_row(g[field], g) for g in grouped], days=days, field=field)


def with_fx(rows: list[MarginRow], *, days: QuerySet[Any], field: str) -> list[MarginRow]:
    """`rows` (grouped by `field` and currency pair from the day rows `days`), each in two
    currencies with its COGS converted (insights/fx.py). No statement when every row is in
    one currency; one otherwise, over the day rows of those rows' groups only."""
    crossed = {r.key for r in rows if r.currency != r.cogs_currency}
    if not crossed:
        return rows
    converted = fx_cogs(days=days, field=field, keys=crossed)
    return [
        replace(r, fx=converted.get((r.key, r.currency, r.cogs_currency)))
        if r.currency != r.cogs_currency
        else r
        for r in rows
    ]


def margin_row(key: str | int | date, sums: Mapping[str, Any]) -> MarginRow:
    """A MarginRow from a group's sums (named as in _MARGIN_SUMS)."""
    return MarginRow(
        key=key,
        currency=sums["currency"],
        cogs_currency=sums["cogs_currency"],
        events=int(sums["events"]),
        quantity=sums["quantity_sum"],
        credits=sums["credits_sum"],
        revenue_minor=sums["revenue"],
        cogs_minor=sums["cogs"],
        events_without_cost=int(sums["nocost_events"]),
        quantity_without_cost=sums["nocost_quantity"],
        credits_without_cost=sums["nocost_credits"],
        revenue_without_cost_minor=sums["nocost_revenue"],
    )


_SUM_COLUMNS = {
    "events": "events",
    "quantity_sum": "quantity",
    "credits_sum": "credits",
    "revenue": "revenue_minor",
    "cogs": "cogs_minor",
    "nocost_events": "events_without_cost",
    "nocost_quantity": "quantity_without_cost",
    "nocost_credits": "credits_without_cost",
    "nocost_revenue": "revenue_without_cost_minor",
}


@dataclass(frozen=True)
class RangePlan:
    """How a range of days is read from the monthly and daily rollups: whole months, plus the
    days of partial months, less the days of the months taken whole that lie outside."""

    months: list[date]  # first days
    days: list[tuple[date, date]]  # inclusive
    less: list[tuple[date, date]]  # inclusive, taken off

    @property
    def day_count(self) -> int:
        return sum((hi - lo).days + 1 for lo, hi in [*self.days, *self.less])


def range_plan(*, start: date, end: date) -> RangePlan:
    """The fewest rows to read for start..end: each month the range covers whole is one row;
    one it covers in part is its days in the range, or, when fewer, the whole month less its
    days outside it (a sum less a sum: exact). So a range reads at most ~15 days a month at
    each end, whatever its length."""
    months: list[date] = []
    days: list[tuple[date, date]] = []
    less: list[tuple[date, date]] = []
    month = start.replace(day=1)
    one = timedelta(days=1)
    while month <= end:
        after = (month.replace(day=28) + timedelta(days=4)).replace(day=1)
        lo, hi = max(start, month), min(end, after - one)
        inside, whole = (hi - lo).days + 1, (after - month).days
        if inside == whole or whole - inside < inside:
            months.append(month)
            less += [(month, lo - one)] if lo > month else []
            less += [(hi + one, after - one)] if hi < after - one else []
        else:
            days.append((lo, hi))
        month = after
    return RangePlan(months=months, days=days, less=less)


def tenant_money_sql(
    *, start: date, end: date, tenant_ids: Sequence[int] | None = None
) -> tuple[str, list[Any]]:
    """SQL (and its parameters) of each tenant's money per currency pair over start..end,
    columns tenant_id, currency, cogs_currency and _SUM_COLUMNS' names, from TenantMarginMonth
    and TenantMarginDay as range_plan says (a year: about 13 rows and at most ~30 days a
    tenant). Of every tenant, or of `tenant_ids` only."""
    plan = range_plan(start=start, end=end)
    only = " AND tenant_id = ANY(%s)" if tenant_ids is not None else ""
    scoped = [list(tenant_ids)] if tenant_ids is not None else []
    keys = "tenant_id, currency, cogs_currency"
    added = ", ".join([keys, *_SUM_COLUMNS.values()])
    taken = ", ".join([keys, *(f"-{c}" for c in _SUM_COLUMNS.values())])
    # Built from constants (table and column names) only; values are parameters.
    parts, params = [], []
    if plan.months:
        table = TenantMarginMonth._meta.db_table
        parts.append(f"SELECT {added} FROM {table} WHERE month = ANY(%s){only}")  # noqa: S608
        params += [plan.months, *scoped]
    table = TenantMarginDay._meta.db_table
    for columns, ranges in ((added, plan.days), (taken, plan.less)):
        for lo, hi in ranges:
            parts.append(f"SELECT {columns} FROM {table} WHERE day BETWEEN %s AND %s{only}")  # noqa: S608
            params += [lo, hi, *scoped]
    sums = ", ".join(f"sum({column}) AS {name}" for name, column in _SUM_COLUMNS.items())
    union = " UNION ALL ".join(parts)
    # A month less its days outside the range leaves a zero row for a tenant that used credits
    # only on those days: no row, as if its days had been summed.
    sql = f"""SELECT {keys}, {sums} FROM ({union}) AS money GROUP BY {keys}
              HAVING sum(events) <> 0 OR sum(quantity) <> 0 OR sum(credits) <> 0
                  OR sum(revenue_minor) <> 0 OR sum(cogs_minor) <> 0"""  # noqa: S608
    return sql, params


def tenant_margin_list(
    *, start: date, end: date, tenant_ids: Sequence[int] | None = None
) -> list[MarginRow]:
    """Every tenant's (or `tenant_ids`') margin over start..end, a row per tenant and currency
    pair, keyed by tenant id and labelled with its name, in that order: one query whatever the
    range (and whether or not any tenant used credits in it)."""
    sql, params = tenant_money_sql(start=start, end=end, tenant_ids=tenant_ids)
    named = f"""SELECT money.*, t.name AS tenant_name FROM ({sql}) AS money
                  JOIN {Tenant._meta.db_table} t ON t.id = money.tenant_id
                 ORDER BY 1, 2, 3"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(named, params)
        columns = [c.name for c in cursor.description]
        found = [dict(zip(columns, r, strict=True)) for r in cursor.fetchall()]
    rows = [_labelled(margin_row(r["tenant_id"], r), r["tenant_name"]) for r in found]
    # Converted day by day: a month's row cannot say which rate each of its days had.
    days = TenantMarginDay.objects.filter(day__gte=start, day__lte=end)
    return with_fx(rows, days=days, field="tenant_id")


def _labelled(row: MarginRow, label: str) -> MarginRow:
    return MarginRow(**{**row.__dict__, "label": label})


@dataclass(frozen=True)
class CostPerUnit:
    """What one unit of an action (in a model class) cost the vendor over a window, measured on
    the events whose cost is known."""

    action: str
    model_class: str
    cogs_currency: str
    quantity: Decimal
    cogs_minor: Decimal
    events_without_cost: int

    @property
    def per_unit_minor(self) -> Decimal | None:
        return self.cogs_minor / self.quantity if self.quantity > 0 else None


def cost_per_unit_list(*, start: date, end: date) -> list[CostPerUnit]:
    """Observed COGS per action and model class over start..end, all tenants."""
    grouped = (
        MarginTotalDay.objects.filter(day__gte=start, day__lte=end)
        .values("action", "model_class", "cogs_currency")
        .annotate(
            known=Sum(F("quantity") - F("quantity_without_cost")),
            cogs=Sum("cogs_minor"),
            nocost=Sum("events_without_cost"),
        )
        .order_by("action", "model_class", "cogs_currency")
    )
    return [
        CostPerUnit(
            action=g["action"],
            model_class=g["model_class"],
            cogs_currency=g["cogs_currency"],
            quantity=g["known"],
            cogs_minor=g["cogs"],
            events_without_cost=g["nocost"],
        )
        for g in grouped
    ]


@dataclass(frozen=True)
class BreakageRow:
    """Credits that expired unspent in one month, by the bucket's policy and source, and the
    money paid for them (recognised at expiry; free credits carry none)."""

    month: date
    policy: str
    source: str
    currency: str
    credits: Decimal
    money_minor: Decimal


def breakage_list(*, start: date, end: date, tenant: Tenant | None = None) -> list[BreakageRow]:
    """Breakage by month, policy, source and currency over the days start..end."""
    rows = ValueDay.objects.filter(movement=Movement.EXPIRY, day__gte=start, day__lte=end)
    if tenant is not None:
        rows = rows.filter(tenant=tenant)
    grouped = (
        rows.annotate(month=TruncMonth("day"))
        .values("month", "policy", "source", "currency")
        .annotate(credits_sum=Sum("credits"), money=Sum("value_minor"))
        .order_by("month", "policy", "source", "currency")
    )
    return [
        BreakageRow(
            month=g["month"],
            policy=g["policy"],
            source=g["source"],
            currency=g["currency"],
            # Expiry entries take credits out: breakage is their negation.
            credits=-g["credits_sum"],
            money_minor=-g["money"],
        )
        for g in grouped
    ]


def breakage_by_tenant(
    *, start: date, end: date, tenant_ids: Sequence[int] | None = None
) -> dict[tuple[int, str], Decimal]:
    """Money broken per (tenant, currency) over start..end: one query for the customers page
    (of every tenant, or of `tenant_ids`)."""
    rows = ValueDay.objects.filter(movement=Movement.EXPIRY, day__gte=start, day__lte=end)
    if tenant_ids is not None:
        rows = rows.filter(tenant_id__in=tenant_ids)
    grouped = rows.values("tenant_id", "currency").annotate(money=Sum("value_minor"))
    return {(g["tenant_id"], g["currency"]): -g["money"] for g in grouped}


def rollup_as_of() -> dict[str, object]:
    """How fresh each stream of the rollup is (None: never run)."""
    marks = dict(
        InsightsWatermark.objects.filter(name__in=[EVENTS, ENTRIES]).values_list("name", "as_of")
    )
    return {EVENTS: marks.get(EVENTS), ENTRIES: marks.get(ENTRIES)}
