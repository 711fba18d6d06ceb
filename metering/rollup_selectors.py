"""Reads of the daily usage rollup (metering/rollup.py) for the portal and the vendor's
console: never the events themselves, so a page costs the same few statements whatever the
number of events. Days are UTC dates, both ends of a range included. Customers' reads carry
credits, counts and quantities only; the cost (COGS) is in `usage_cost_list`, for staff."""

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Min, QuerySet, Sum

from metering.models import RollupWatermark, UsageDay, UsageRefusalDay
from metering.rollup import STREAMS
from tenants.models import Tenant

ZERO = Decimal("0.0000")
STACKS = ("action", "model_class")
GROUPS = ("action", "model_class", "workflow")


def usage_rollup_as_of() -> datetime | None:
    """The time up to which the rollup is complete: every event and refund committed before it
    is counted. None until the job has run over both streams."""
    marks = dict(RollupWatermark.objects.filter(name__in=STREAMS).values_list("name", "as_of"))
    times = [at for at in marks.values() if at is not None]
    return min(times) if len(times) == len(STREAMS) else None


def _days(*, tenant: Tenant, since: date, until: date) -> QuerySet[UsageDay]:
    if until < since:
        raise ValueError(f"until ({until}) is before since ({since}).")
    return UsageDay.objects.filter(tenant=tenant, day__gte=since, day__lte=until)


@dataclass(frozen=True)
class DayStack:
    day: date
    key: str  # the action or model class
    credits: Decimal


def usage_by_day(*, tenant: Tenant, since: date, until: date, stack: str) -> list[DayStack]:
    """Credits by day, stacked by action or by model class ('' for none): the usage chart.
    Days without usage are left out; ordered by day, then key."""
    if stack not in STACKS:
        raise ValueError(f"stack must be one of {STACKS}; got {stack!r}.")
    rows = (
        _days(tenant=tenant, since=since, until=until)
        .values("day", stack)
        .annotate(total=Sum("credits"))
        .order_by("day", stack)
        .values_list("day", stack, "total")
    )
    return [DayStack(day=day, key=key, credits=total) for day, key, total in rows]


@dataclass(frozen=True)
class UsageRow:
    key: dict[str, str]  # the group's values, e.g. {"action": "chat", "workflow": ""}
    events: int
    quantity: Decimal
    credits: Decimal
    credits_refunded: Decimal


def usage_table(
    *, tenant: Tenant, since: date, until: date, group_by: tuple[str, ...] = GROUPS
) -> list[UsageRow]:
    """Counts and credits by any of action, model class and workflow name ('' outside a
    run): the usage table. Ordered by credits, most first, then by the group's values."""
    unknown = [name for name in group_by if name not in GROUPS]
    if unknown or not group_by:
        raise ValueError(f"group_by must name some of {GROUPS}; got {group_by!r}.")
    rows = (
        _days(tenant=tenant, since=since, until=until)
        .values(*group_by)
        .annotate(
            n=Sum("events"),
            qty=Sum("quantity"),
            total=Sum("credits"),
            refunded=Sum("credits_refunded"),
        )
        .order_by("-total", *group_by)
    )
    return [
        UsageRow(
            key={name: row[name] for name in group_by},
            events=row["n"],
            quantity=row["qty"],
            credits=row["total"],
            credits_refunded=row["refunded"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class UsageTotals:
    events: int
    quantity: Decimal
    credits: Decimal
    credits_refunded: Decimal


def usage_totals(*, tenant: Tenant, since: date, until: date) -> UsageTotals:
    """The range's totals (credits net of refunds: they equal the statement's debits less
    its reversals of event debits over the same days)."""
    sums = _days(tenant=tenant, since=since, until=until).aggregate(
        n=Sum("events"), qty=Sum("quantity"), total=Sum("credits"), refunded=Sum("credits_refunded")
    )
    return UsageTotals(
        events=sums["n"] or 0,
        quantity=sums["qty"] or ZERO,
        credits=sums["total"] or ZERO,
        credits_refunded=sums["refunded"] or ZERO,
    )


@dataclass(frozen=True)
class CostRow:
    """Vendor staff only: the cost of a group's events in minor units of `currency`."""

    key: dict[str, Any]
    currency: str
    events: int
    events_without_cost: int
    credits: Decimal
    cogs_minor: Decimal


def usage_cost_list(
    *,
    since: date,
    until: date,
    tenant: Tenant | None = None,
    group_by: tuple[str, ...] = ("tenant_id", "day"),
) -> list[CostRow]:
    """Vendor staff only (the console): COGS and events without cost by any of tenant_id, day,
    action, model_class, workflow, per cost currency (never summed across currencies); every
    tenant when `tenant` is None."""
    allowed = ("tenant_id", "day", *GROUPS)
    if any(name not in allowed for name in group_by):
        raise ValueError(f"group_by must name some of {allowed}; got {group_by!r}.")
    if until < since:
        raise ValueError(f"until ({until}) is before since ({since}).")
    days = UsageDay.objects.filter(day__gte=since, day__lte=until)
    if tenant is not None:
        days = days.filter(tenant=tenant)
    rows = (
        days.values(*group_by, "cogs_currency")
        .annotate(
            n=Sum("events"),
            unknown=Sum("events_without_cost"),
            total=Sum("credits"),
            cogs=Sum("cogs_minor"),
        )
        .order_by(*group_by, "cogs_currency")
    )
    return [
        CostRow(
            key={name: row[name] for name in group_by},
            currency=row["cogs_currency"],
            events=row["n"],
            events_without_cost=row["unknown"],
            credits=row["total"],
            cogs_minor=row["cogs"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class RefusalDay:
    day: date
    reason: str
    count: int


def usage_refusal_list(*, tenant: Tenant, since: date, until: date) -> list[RefusalDay]:
    """A tenant's refusals by day and reason (metering/refusals.py), oldest first."""
    rows = (
        UsageRefusalDay.objects.filter(tenant=tenant, day__gte=since, day__lte=until)
        .order_by("day", "reason")
        .values_list("day", "reason", "count")
    )
    return [RefusalDay(day=day, reason=reason, count=count) for day, reason, count in rows]


def usage_refusals_since() -> datetime | None:
    """Since when refusals are recorded: the rollup and the refusal counts shipped together,
    and the rollup's first run is the earliest record of it (None before it)."""
    return RollupWatermark.objects.aggregate(first=Min("created_at"))["first"]
