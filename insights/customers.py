"""The customers overview: every tenant with its plan, balance, credits used, revenue, COGS,
gross margin, breakage and past-due state over a window, in a fixed number of queries whatever
the number of tenants (tenants, accounts, subscriptions, the margin and breakage rollups)."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q

from billing.models import Subscription
from insights.selectors import MarginRow, breakage_by_tenant, gross_margin, margin_list, percent
from ledger.models import CreditAccount
from tenants.models import Tenant

ZERO = Decimal("0")
SORTS = ("name", "balance", "credits", "revenue", "cogs", "margin", "breakage")


@dataclass(frozen=True)
class CustomerRow:
    tenant: Tenant
    plan: str
    balance: Decimal
    past_due: bool
    # One row per currency pair the tenant's usage was in (one, as a rule: a tenant has one).
    money: list[MarginRow]
    breakage_minor: dict[str, Decimal]

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
    def revenue_minor(self) -> Decimal:
        """For sorting: the revenue in the tenant's one currency (0 if it has several)."""
        money = self.revenue_by_currency
        return next(iter(money.values())) if len(money) == 1 else ZERO

    @property
    def cogs_minor(self) -> Decimal:
        money = self.cogs_by_currency
        return next(iter(money.values())) if len(money) == 1 else ZERO

    @property
    def margin(self) -> Decimal | None:
        """Over every row, when all of them are in one currency, revenue and cost alike (no
        exchange-rate table yet: otherwise there is no margin to show)."""
        pairs = {(m.currency, m.cogs_currency) for m in self.money}
        if len(pairs) != 1 or len({*next(iter(pairs))}) != 1:
            return None
        return gross_margin(
            revenue=sum((m.revenue_known_minor for m in self.money), ZERO),
            cogs=sum((m.cogs_minor for m in self.money), ZERO),
        )

    @property
    def margin_percent(self) -> Decimal | None:
        return percent(self.margin)

    @property
    def negative(self) -> bool:
        return self.margin is not None and self.margin < 0

    @property
    def cost_unknown_events(self) -> int:
        return sum(m.events_without_cost for m in self.money)


def _by_currency(items: Iterable[tuple[str, Decimal]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for currency, money in items:
        out[currency] = out.get(currency, ZERO) + money
    return out


def customer_list(
    *,
    start: date,
    end: date,
    sort: str = "name",
    descending: bool = False,
    negative_only: bool = False,
) -> list[CustomerRow]:
    margins: dict[int, list[MarginRow]] = {}
    for row in margin_list(start=start, end=end, by="tenant"):
        margins.setdefault(int(str(row.key)), []).append(row)
    broken: dict[int, dict[str, Decimal]] = {}
    for (tenant_id, currency), money in breakage_by_tenant(start=start, end=end).items():
        broken.setdefault(tenant_id, {})[currency] = money
    balances = dict(CreditAccount.objects.values_list("tenant_id", "available"))
    live = Subscription.objects.filter(~Q(status=Subscription.Status.CANCELED)).select_related(
        "plan"
    )
    subs = {s.tenant_id: s for s in live}
    rows = [
        CustomerRow(
            tenant=t,
            plan=subs[t.pk].plan.name if t.pk in subs else "",
            balance=balances.get(t.pk, ZERO),
            past_due=(t.pk in subs and subs[t.pk].status == Subscription.Status.PAST_DUE)
            or t.runs_refused_from is not None,
            money=margins.get(t.pk, []),
            breakage_minor=broken.get(t.pk, {}),
        )
        for t in Tenant.objects.order_by("name")
    ]
    if negative_only:
        rows = [r for r in rows if r.negative]
    return _sorted(rows, sort, descending)


def _one_currency(money: dict[str, Decimal]) -> Decimal:
    return next(iter(money.values())) if len(money) == 1 else ZERO


def _sorted(rows: list[CustomerRow], sort: str, descending: bool) -> list[CustomerRow]:
    def key(row: CustomerRow) -> tuple[bool, object]:
        value: object = {
            "name": row.tenant.name.lower(),
            "balance": row.balance,
            "credits": row.credits,
            "revenue": row.revenue_minor,
            "cogs": row.cogs_minor,
            "margin": row.margin,
            # As revenue: a figure in one currency only (0 with several), never a sum of two.
            "breakage": _one_currency(row.breakage_minor),
        }.get(sort, row.tenant.name.lower())
        # Rows without a figure (no margin) sort last either way.
        return (value is None) != descending, value if value is not None else 0

    return sorted(rows, key=key, reverse=descending)
