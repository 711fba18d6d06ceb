"""The customers overview: every tenant with its plan, balance, credits used, revenue, COGS,
gross margin and its trend, breakage and past-due state over a window, a page at a time,
sorted and filtered in SQL over every tenant's sums, in a fixed number of queries whatever the
number of tenants or days (the margin sums of insights/selectors.tenant_money_sql: whole months
and edge days; breakage; accounts).

The trend compares the range's gross margin with the equal range just before it (30 days
against the 30 before), in percentage points, read from the same rollups."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

from billing.models import Subscription
from insights.fx import fx_cogs_sql
from insights.models import Movement, TenantMarginDay, ValueDay
from insights.selectors import (
    MarginRow,
    breakage_by_tenant,
    gross_margin,
    percent,
    tenant_margin_list,
    tenant_money_sql,
)
from ledger.models import CreditAccount
from tenants.models import Tenant

ZERO = Decimal("0")
PER_PAGE = 50
SORTS = ("name", "balance", "credits", "revenue", "cogs", "margin", "breakage")


def margin_over(money: Sequence[MarginRow]) -> Decimal | None:
    """A tenant's gross margin over its rows, when their revenue is in one currency and every
    row's COGS is in it too, as recorded or converted at the vendor's rates (insights/fx.py);
    otherwise (two revenue currencies, a day without a rate) there is no margin to show."""
    cogs = [m.cogs_in_revenue_currency_minor for m in money]
    if len({m.currency for m in money}) != 1 or any(c is None for c in cogs):
        return None
    return gross_margin(
        revenue=sum((m.revenue_known_minor for m in money), ZERO),
        cogs=sum((c for c in cogs if c is not None), ZERO),
    )


@dataclass(frozen=True)
class CustomerRow:
    tenant: Tenant
    plan: str
    balance: Decimal
    past_due: bool
    # One row per currency pair the tenant's usage was in (one, as a rule: a tenant has one).
    money: list[MarginRow]
    breakage_minor: dict[str, Decimal]
    # The same over the equal range just before (the trend).
    previous: tuple[MarginRow, ...] = ()

    @property
    def credits(self) -> Decimal:
        return sum((m.credits for m in self.money), ZERO)

    @property
    def revenue_by_currency(self) -> dict[str, Decimal]:
        return _by_currency((m.currency, m.revenue_minor) for m in self.money)

    @property
    def cogs_by_currency(self) -> dict[str, Decimal]:
        return _by_currency((m.cogs_currency, m.cogs_minor) for m in self.money)

    @property
    def margin(self) -> Decimal | None:
        return margin_over(self.money)

    @property
    def margin_percent(self) -> Decimal | None:
        return percent(self.margin)

    @property
    def previous_margin_percent(self) -> Decimal | None:
        return percent(margin_over(self.previous))

    @property
    def trend(self) -> Decimal | None:
        """The change of the gross margin from the range before, in percentage points (as
        shown, one decimal place); None when either range has no margin."""
        now, before = self.margin_percent, self.previous_margin_percent
        return None if now is None or before is None else now - before

    @property
    def negative(self) -> bool:
        return self.margin is not None and self.margin < 0

    @property
    def no_exchange_rate(self) -> bool:
        return any(m.no_exchange_rate for m in self.money)

    @property
    def converted(self) -> bool:
        return any(m.converted for m in self.money)

    @property
    def cost_unknown_events(self) -> int:
        return sum(m.events_without_cost for m in self.money)


def _by_currency(items: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for currency, money in items:
        out[currency] = out.get(currency, ZERO) + money
    return out


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    total: int  # tenants that match the filter
    number: int
    per_page: int
    previous_start: date
    previous_end: date

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages


# Each sort's figure per tenant. Revenue, COGS and breakage are a figure in the tenant's one
# currency (0 when it has several: never a sum of two); credits are not money. A tenant
# without a margin sorts last either way.
_ORDER = {
    "name": "lower(t.name)",
    "balance": "coalesce(a.available, 0)",
    "credits": "coalesce(p.credits, 0)",
    "revenue": "coalesce(p.revenue, 0)",
    "cogs": "coalesce(p.cogs, 0)",
    "margin": "p.margin",
    "breakage": "coalesce(b.breakage, 0)",
}
# Money is compared within its currency only: a sort by an amount groups the customers by its
# currency first (100,000 JPY is not more than 900 USD), those in none (no money, or two
# currencies) last.
_CURRENCY_FIRST = {
    "revenue": "p.currency ASC NULLS LAST, ",
    "cogs": "p.cogs_currency ASC NULLS LAST, ",
    "breakage": "b.currency ASC NULLS LAST, ",
}

# p.margin is margin_over's rule in SQL: revenue in one currency, every row's COGS in it (as
# recorded, or converted day by day by insights/fx.py's statement, `fx`, over the days of the
# tenants with a row in two currencies only), over the revenue of the events whose cost is known.
_PAGE = """
WITH money AS ({money}),
fx AS ({fx}),
costed AS (
    SELECT m.*,
           CASE WHEN m.currency = m.cogs_currency THEN m.cogs
                WHEN fx.key IS NOT NULL AND fx.missing IS NULL
                THEN coalesce(fx.converted, 0)
           END AS cogs_in_revenue
      FROM money m
      LEFT JOIN fx ON fx.key = m.tenant_id AND fx.currency = m.currency
                  AND fx.cogs_currency = m.cogs_currency
),
per_tenant AS (
    SELECT tenant_id,
           sum(credits_sum) AS credits,
           CASE WHEN count(DISTINCT currency) = 1 THEN min(currency) END AS currency,
           CASE WHEN count(DISTINCT currency) = 1 THEN sum(revenue) END AS revenue,
           CASE WHEN count(DISTINCT cogs_currency) = 1 THEN min(cogs_currency) END
               AS cogs_currency,
           CASE WHEN count(DISTINCT cogs_currency) = 1 THEN sum(cogs) END AS cogs,
           CASE WHEN count(DISTINCT currency) = 1 AND count(cogs_in_revenue) = count(*)
                     AND sum(revenue - nocost_revenue) > 0
                THEN (sum(revenue - nocost_revenue) - sum(cogs_in_revenue))
                     / sum(revenue - nocost_revenue)
           END AS margin
      FROM costed GROUP BY tenant_id
),
broken AS (
    SELECT tenant_id,
           CASE WHEN count(DISTINCT currency) = 1 THEN min(currency) END AS currency,
           CASE WHEN count(DISTINCT currency) = 1 THEN -sum(value_minor) END AS breakage
      FROM {valueday} WHERE movement = %s AND day >= %s AND day <= %s
     GROUP BY tenant_id
)
SELECT t.id, coalesce(a.available, 0), count(*) OVER ()
  FROM {tenant} t
  LEFT JOIN per_tenant p ON p.tenant_id = t.id
  LEFT JOIN broken b ON b.tenant_id = t.id
  LEFT JOIN {account} a ON a.tenant_id = t.id
 WHERE ({negative_only} = false OR p.margin < 0)
   AND strpos(lower(t.name), lower(%s)) > 0
 ORDER BY {currency_first}{order} {direction} NULLS LAST, lower(t.name), t.id
 LIMIT %s OFFSET %s
"""


# The tenants with money in two currencies, from the statement's `money`: an array built once
# (an InitPlan), so the day rows are read by the tenant-led key of those tenants only (an IN
# over the CTE made PostgreSQL, which cannot tell how few they are, read every tenant's days).
_CROSSED = RawSQL(
    "tenant_id = ANY(ARRAY(SELECT tenant_id FROM money WHERE currency <> cogs_currency))",
    (),
    output_field=BooleanField(),
)


def _page_ids(
    *,
    start: date,
    end: date,
    sort: str,
    descending: bool,
    negative_only: bool,
    name: str,
    number: int,
    per_page: int,
) -> tuple[list[tuple[int, Decimal]], int]:
    """The page's (tenant id, balance), sorted, and how many tenants match."""
    money, params = tenant_money_sql(start=start, end=end)
    fx, fx_params = fx_cogs_sql(
        days=TenantMarginDay.objects.filter(_CROSSED, day__gte=start, day__lte=end),
        field="tenant_id",
    )
    sql = _PAGE.format(
        money=money,
        fx=fx,
        valueday=ValueDay._meta.db_table,
        tenant=Tenant._meta.db_table,
        account=CreditAccount._meta.db_table,
        negative_only="true" if negative_only else "false",
        currency_first=_CURRENCY_FIRST.get(sort, ""),
        order=_ORDER.get(sort, _ORDER["name"]),
        direction="DESC" if descending else "ASC",
    )
    args: list[Any] = [*params, *fx_params, Movement.EXPIRY, start, end, name, per_page]
    args.append((number - 1) * per_page)
    with connection.cursor() as cursor:
        cursor.execute(sql, args)
        found = cursor.fetchall()
    return [(r[0], r[1]) for r in found], (found[0][2] if found else 0)


def customer_list(
    *,
    start: date,
    end: date,
    sort: str = "name",
    descending: bool = False,
    negative_only: bool = False,
    name: str = "",
    page: int = 1,
    per_page: int = PER_PAGE,
) -> CustomerPage:
    """One page of customers over start..end, sorted by `sort` over every tenant; only the
    margin-negative ones with `negative_only`, only names containing `name`."""
    number = max(1, page)
    found, total = _page_ids(
        start=start,
        end=end,
        sort=sort,
        descending=descending,
        negative_only=negative_only,
        name=name,
        number=number,
        per_page=per_page,
    )
    ids = [tenant_id for tenant_id, _ in found]
    before_end = start - timedelta(days=1)
    before_start = before_end - (end - start)
    margins = _grouped(tenant_margin_list(start=start, end=end, tenant_ids=ids))
    previous = _grouped(tenant_margin_list(start=before_start, end=before_end, tenant_ids=ids))
    broken: dict[int, dict[str, Decimal]] = {}
    for (tenant_id, currency), money in breakage_by_tenant(
        start=start, end=end, tenant_ids=ids
    ).items():
        broken.setdefault(tenant_id, {})[currency] = money
    tenants = Tenant.objects.in_bulk(ids)
    live = Subscription.objects.filter(~Q(status=Subscription.Status.CANCELED), tenant_id__in=ids)
    subs = {s.tenant_id: s for s in live.select_related("plan")}
    rows = [
        CustomerRow(
            tenant=tenants[tenant_id],
            plan=subs[tenant_id].plan.name if tenant_id in subs else "",
            balance=balance,
            past_due=(tenant_id in subs and subs[tenant_id].status == Subscription.Status.PAST_DUE)
            or tenants[tenant_id].runs_refused_from is not None,
            money=margins.get(tenant_id, []),
            breakage_minor=broken.get(tenant_id, {}),
            previous=tuple(previous.get(tenant_id, [])),
        )
        for tenant_id, balance in found
    ]
    return CustomerPage(
        rows=rows,
        total=total,
        number=number,
        per_page=per_page,
        previous_start=before_start,
        previous_end=before_end,
    )


def _grouped(rows: list[MarginRow]) -> dict[int, list[MarginRow]]:
    out: dict[int, list[MarginRow]] = {}
    for row in rows:
        out.setdefault(int(str(row.key)), []).append(row)
    return out
