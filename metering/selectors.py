"""Reads of usage events and their margin. Tenant is a required argument everywhere except
`margin_by_tenant`, the vendor admin's cross-tenant report, which says so in its name."""

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import TruncDate

from metering.models import UsageEvent, WorkflowRun
from metering.usage.inputs import COMPONENTS
from tenants.models import Tenant

ZERO_CREDITS = Decimal("0.0000")
ZERO_MONEY = Decimal("0.00000000")
GROUPS = ("event", "workflow", "action", "day")


def usage_event_list(
    *,
    tenant: Tenant,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    workflow_run: WorkflowRun | None = None,
) -> QuerySet[UsageEvent]:
    """Newest first; `since` <= occurred_at < `until`."""
    events = UsageEvent.objects.select_related("rate_card_version").filter(tenant=tenant)
    if action:
        events = events.filter(action=action)
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    if workflow_run is not None:
        events = events.filter(workflow_run=workflow_run)
    return events.order_by("-created_at", "-id")


@dataclass(frozen=True)
class UsageLine:
    """What a statement line says of the event behind a debit: what was done, how many times,
    for how many credits."""

    action: str
    model_class: str
    quantity: Decimal
    credits: Decimal


def usage_lines_by_key(*, tenant: Tenant, keys: Collection[str]) -> dict[str, UsageLine]:
    """The tenant's events with these idempotency keys (a usage debit's source_id), by key. One
    query on the unique (tenant, idempotency_key) index."""
    if not keys:
        return {}
    rows = UsageEvent.objects.filter(tenant=tenant, idempotency_key__in=set(keys)).values_list(
        "idempotency_key", "action", "model_class", "quantity", "credits"
    )
    return {
        key: UsageLine(action=action, model_class=model_class, quantity=quantity, credits=credits)
        for key, action, model_class, quantity, credits in rows
    }


@dataclass(frozen=True)
class RecordedEvent:
    """What re-pricing an event needs: what it was charged and earned, and what it did."""

    id: int
    action: str
    model_class: str
    quantity: Decimal
    outcome: str
    occurred_at: datetime
    credits: Decimal
    revenue_minor: Decimal
    revenue_currency: str
    cogs_minor: Decimal
    cogs_currency: str
    components: dict[str, int | Decimal]

    @property
    def cost_known(self) -> bool:
        return any(self.components.values())


def usage_event_recorded_list(
    *, tenant: Tenant, since: datetime, until: datetime, rate_card_id: int | None
) -> Iterator[RecordedEvent]:
    """The tenant's events that occurred in [since, until) and were priced by a version of one
    rate card (None: any), oldest first (occurred_at, id), streamed (usageevent_occurred_idx)."""
    fields = (
        "id",
        "action",
        "model_class",
        "quantity",
        "outcome",
        "occurred_at",
        "credits",
        "revenue_minor",
        "revenue_currency",
        "cogs_minor",
        "cogs_currency",
    )
    events = UsageEvent.objects.filter(tenant=tenant, occurred_at__gte=since, occurred_at__lt=until)
    if rate_card_id is not None:
        events = events.filter(rate_card_version__rate_card_id=rate_card_id)
    rows = events.order_by("occurred_at", "id").values_list(*fields, *COMPONENTS)
    for row in rows.iterator(chunk_size=2000):
        named = dict(zip((*fields, *COMPONENTS), row, strict=True))
        components = {name: named.pop(name) for name in COMPONENTS}
        yield RecordedEvent(**named, components=components)


@dataclass(frozen=True)
class MarginRow:
    """One group's totals in one currency pair: revenue in `currency`, COGS in
    `cogs_currency`. Money in minor units, unrounded (8 places)."""

    key: Any  # event id, workflow run id (None: not in a run), action, date, or tenant id
    events: int
    credits: Decimal
    cogs_minor: Decimal
    revenue_minor: Decimal
    currency: str
    cogs_currency: str

    @property
    def margin_minor(self) -> Decimal | None:
        """None when revenue and COGS are in two currencies: they are never subtracted."""
        if self.currency != self.cogs_currency:
            return None
        return self.revenue_minor - self.cogs_minor


def _window(
    events: QuerySet[UsageEvent], since: datetime | None, until: datetime | None
) -> QuerySet[UsageEvent]:
    if since is not None:
        events = events.filter(occurred_at__gte=since)
    if until is not None:
        events = events.filter(occurred_at__lt=until)
    return events


def _sum(events: QuerySet[UsageEvent], key: Any) -> list[MarginRow]:
    # One row per group and currency pair: revenue is summed within its currency and COGS
    # within its own, so dollars are never added to euros (a tenant that changed currency,
    # a cost catalog in another currency than the packs).
    rows = (
        events.annotate(key=key)
        .values("key", "revenue_currency", "cogs_currency")
        .annotate(
            n=Count("id"),
            credits_total=Sum("credits"),
            cogs_total=Sum("cogs_minor"),
            revenue_total=Sum("revenue_minor"),
        )
        .order_by("key", "revenue_currency", "cogs_currency")
    )
    return [
        MarginRow(
            key=row["key"],
            events=row["n"],
            credits=row["credits_total"] or ZERO_CREDITS,
            cogs_minor=row["cogs_total"] or ZERO_MONEY,
            revenue_minor=row["revenue_total"] or ZERO_MONEY,
            currency=row["revenue_currency"],
            cogs_currency=row["cogs_currency"],
        )
        for row in rows
    ]


def margin_summary(
    *,
    tenant: Tenant,
    group_by: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[MarginRow]:
    """Credits, COGS, revenue and margin of one tenant's events with `since` <= occurred_at <
    `until`, per event, workflow run, action or UTC day, ordered by the group key."""
    keys: dict[str, Any] = {
        "event": F("id"),
        "workflow": F("workflow_run_id"),
        "action": F("action"),
        "day": TruncDate("occurred_at", tzinfo=UTC),
    }
    if group_by not in keys:
        raise ValueError(f"group_by must be one of {GROUPS}; got {group_by!r}.")
    events = _window(UsageEvent.objects.filter(tenant=tenant), since, until)
    return _sum(events, keys[group_by])


def margin_by_tenant(
    *, since: datetime | None = None, until: datetime | None = None
) -> list[MarginRow]:
    """Vendor admins only: the same totals for every tenant (key = tenant id)."""
    return _sum(_window(UsageEvent.objects.all(), since, until), F("tenant_id"))
