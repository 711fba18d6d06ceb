"""The rate-card simulator: the real events of the last N days re-priced under a draft.

A simulation names a draft rate card version (its card's events are re-priced by it) and/or a
draft cost catalog (every event's cost components are re-costed by it), and a window of whole
UTC days fixed when it is asked for. Each event is read through metering's selector, priced
through ratecards' quoters (the same rule and rounding as the hot path) and charged through
metering's rule for failed outcomes, so nothing of the pricing is copied here.

What "after" means, per event:
- credits: the draft's price of its quantity (0 for an outcome-priced action that failed); an
  event the draft cannot price (its action or class removed) would be refused: counted apart
  (`events_refused`) with 0 credits after.
- revenue: the credits after at the value per credit this event's credits were paid for
  (revenue before / credits before); for an event that was free before, the customer's
  average value per credit over the window's charged events in that currency (0 if none).
- COGS: as recorded, or under the draft catalog from the event's components; an event
  reported without components has an unknown cost either way, and margins are computed only
  over events whose cost is known (insights/selectors.py, gross_margin). Where the cost is in
  another currency than the revenue, the margin subtracts the COGS converted at the vendor's
  rate in force on the day the event occurred (insights/fx.py, RateTable: per event, as the
  events are read one by one here); one event with a cost and no rate leaves that customer's
  (and the total's) margin out in that currency pair ("no exchange rate"). The figures are the
  rates' when it ran: a rate entered later changes them only in a new simulation.

Deterministic: tenants by id, events by (occurred_at, id), exact Decimal sums of figures
quantized per event (credits 0.0001, money 0.00000001 ROUND_HALF_UP). Money is summed per
(currency, cost currency), never across currencies. The customers most affected are ranked by
the change in credits, which have no currency.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from insights.fx import RateTable, rate_table
from insights.models import MarginTotalDay, Simulation
from insights.selectors import gross_margin
from metering.selectors import RecordedEvent, usage_event_recorded_list
from metering.usage.pricing import credits_charged
from ratecards.models import (
    CostCatalogVersion,
    PublishStatus,
    RateCardAssignment,
    RateCardVersion,
)
from ratecards.selectors import (
    CatalogQuoter,
    VersionQuoter,
    assignment_in_force,
    catalog_quoter,
    version_quoter,
    version_rates,
)
from tenants.exceptions import CreditlineError
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue

logger = logging.getLogger(__name__)

RUN_TASK = "insights.simulation_run"
DEFAULT_DAYS = 90
MAX_DAYS = 366
# A window with at most this many events (by the rollup) is re-priced in the request.
INLINE_EVENTS = 5000
MOST_AFFECTED = 10
CREDITS = Decimal("0.0001")
MONEY = Decimal("0.00000001")
ZERO = Decimal(0)


class SimulationInputError(ValueError):
    """A window out of bounds, no draft, or a draft catalog in another currency."""


def simulation_window(*, days: int, now: datetime) -> tuple[datetime, datetime]:
    """The last `days` whole UTC days before today."""
    if not 1 <= days <= MAX_DAYS:
        raise SimulationInputError(f"The window is 1 to {MAX_DAYS} days.")
    until = datetime.combine(now.astimezone(UTC).date(), time(0), tzinfo=UTC)
    return until - timedelta(days=days), until


def simulation_request(
    *,
    user: User | None,
    version: RateCardVersion | None,
    cost_catalog: CostCatalogVersion | None,
    days: int = DEFAULT_DAYS,
) -> Simulation:
    """A new simulation: run now when the window is small, else by the task (progress on its
    page)."""
    if version is None and cost_catalog is None:
        raise SimulationInputError("Choose a draft rate card version or a draft cost catalog.")
    if cost_catalog is not None and cost_catalog.status == PublishStatus.PUBLISHED:
        raise SimulationInputError("The cost catalog is published: simulate a draft.")
    now = timezone.now()
    since, until = simulation_window(days=days, now=now)
    expected = (
        MarginTotalDay.objects.filter(day__gte=since.date(), day__lt=until.date()).aggregate(
            n=Sum("events")
        )["n"]
        or 0
    )
    with transaction.atomic():
        simulation = Simulation.objects.create(
            version=version,
            cost_catalog=cost_catalog,
            since=since,
            until=until,
            requested_by=user,
            created_at=now,
        )
        inline = expected <= INLINE_EVENTS
        if not inline:
            outbox_enqueue(RUN_TASK, {"simulation_id": simulation.pk})
    if inline:
        simulation_run(simulation_id=simulation.pk)
        simulation.refresh_from_db()
    return simulation


def simulation_run(*, simulation_id: int) -> str:
    """The task's body (and the request's for a small window): `done`, `failed` or `skipped`
    (already done). A copy run again, or two at once, computes and stores the same figures."""
    claimed = Simulation.objects.filter(
        pk=simulation_id, status__in=[Simulation.Status.PENDING, Simulation.Status.RUNNING]
    ).update(status=Simulation.Status.RUNNING, tenants_done=0)
    if not claimed:
        return "skipped"
    simulation = Simulation.objects.select_related("version", "cost_catalog").get(pk=simulation_id)
    try:
        result = simulate(simulation=simulation)
    except Exception as error:
        logger.exception("simulation %s failed", simulation_id)
        Simulation.objects.filter(pk=simulation_id).update(
            status=Simulation.Status.FAILED,
            error=f"The simulation could not be run ({type(error).__name__}).",
            finished_at=timezone.now(),
        )
        return "failed"
    Simulation.objects.filter(pk=simulation_id).update(
        status=Simulation.Status.DONE,
        result=result,
        events=result["events"],
        finished_at=timezone.now(),
    )
    return "done"


@dataclass
class Figures:
    """One customer's (or the total's) figures in one (currency, cost currency)."""

    events: int = 0
    events_refused: int = 0
    events_without_cost: int = 0
    credits_before: Decimal = ZERO
    credits_after: Decimal = ZERO
    revenue_before: Decimal = ZERO
    revenue_after: Decimal = ZERO
    # Over the events whose cost is known: what margins are computed from.
    known_revenue_before: Decimal = ZERO
    known_revenue_after: Decimal = ZERO
    cogs_before: Decimal = ZERO
    cogs_after: Decimal = ZERO
    # Costs in another currency than the revenue: COGS converted into the revenue's at the rate
    # in force on each event's day (insights/fx.py), the events with a cost and no rate in
    # force (then no margin: revenue and cost are never subtracted across two currencies), and
    # the days of the rates used.
    cogs_before_converted: Decimal = ZERO
    cogs_after_converted: Decimal = ZERO
    events_without_rate: int = 0
    rates_from: date | None = None
    rates_to: date | None = None

    def add(self, other: "Figures") -> None:
        for name in self.__dataclass_fields__:
            if name not in _RATE_DAYS:
                setattr(self, name, getattr(self, name) + getattr(other, name))
        for day in (other.rates_from, other.rates_to):
            self.rate_used(day)

    def rate_used(self, day: date | None) -> None:
        if day is not None:
            self.rates_from = day if self.rates_from is None else min(self.rates_from, day)
            self.rates_to = day if self.rates_to is None else max(self.rates_to, day)

    def as_json(self, *, currency: str, cogs_currency: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "currency": currency,
            "cogs_currency": cogs_currency,
            **{
                name: value if isinstance(value, int) else str(value)
                for name, value in vars(self).items()
                if name not in _RATE_DAYS
            },
        }
        cogs_before, cogs_after = self.cogs_before, self.cogs_after
        if currency != cogs_currency:
            if self.events_without_rate:
                return {**out, "margin_before": None, "margin_after": None, "no_rate": True}
            cogs_before, cogs_after = self.cogs_before_converted, self.cogs_after_converted
            out["converted"] = True
            out["rates"] = _days_label(self.rates_from, self.rates_to)
        before = gross_margin(revenue=self.known_revenue_before, cogs=cogs_before)
        after = gross_margin(revenue=self.known_revenue_after, cogs=cogs_after)
        out["margin_before"] = None if before is None else str(before)
        out["margin_after"] = None if after is None else str(after)
        return out


_RATE_DAYS = ("rates_from", "rates_to")


def _days_label(first: date | None, last: date | None) -> str:
    if first is None or last is None:
        return ""
    return str(first) if first == last else f"{first} to {last}"


@dataclass
class _Draft:
    rates: VersionQuoter | None
    costs: CatalogQuoter | None
    rate_card_id: int | None = field(default=None)
    # The vendor's exchange rates, for costs in another currency than the revenue.
    exchange: RateTable = field(default_factory=lambda: RateTable(by_pair={}))


def simulate(*, simulation: Simulation) -> dict[str, Any]:
    """The figures of a simulation, as stored in its `result` (strings for Decimals)."""
    draft = _Draft(
        rates=version_quoter(version=simulation.version) if simulation.version else None,
        costs=catalog_quoter(version=simulation.cost_catalog) if simulation.cost_catalog else None,
        rate_card_id=simulation.version.rate_card_id if simulation.version else None,
        exchange=rate_table(),
    )
    tenants = list(Tenant.objects.order_by("pk").values_list("pk", "name"))
    Simulation.objects.filter(pk=simulation.pk).update(tenants_total=len(tenants))
    customers: list[dict[str, Any]] = []
    totals: dict[tuple[str, str], Figures] = defaultdict(Figures)
    events = 0
    for done, (tenant_id, name) in enumerate(tenants, start=1):
        recorded = list(
            usage_event_recorded_list(
                tenant=Tenant(pk=tenant_id),
                since=simulation.since,
                until=simulation.until,
                rate_card_id=draft.rate_card_id,
            )
        )
        pinned = _pinned(tenant_id, draft, simulation) if recorded else None
        for (currency, cogs_currency), figures in _tenant_figures(recorded, draft).items():
            totals[(currency, cogs_currency)].add(figures)
            customers.append(
                {
                    "tenant_id": tenant_id,
                    "name": name,
                    "pinned": pinned,
                    **figures.as_json(currency=currency, cogs_currency=cogs_currency),
                }
            )
        events += len(recorded)
        if done % 20 == 0 or done == len(tenants):
            Simulation.objects.filter(pk=simulation.pk).update(tenants_done=done)
    affected = sorted(
        (c for c in customers if c["credits_before"] != c["credits_after"]),
        key=lambda c: (
            -abs(Decimal(c["credits_after"]) - Decimal(c["credits_before"])),
            c["tenant_id"],
        ),
    )
    return {
        "draft": _draft_json(simulation),
        "events": events,
        "customers": customers,
        "most_affected": [c["tenant_id"] for c in affected[:MOST_AFFECTED]],
        "totals": [
            figures.as_json(currency=cur, cogs_currency=cogs)
            for (cur, cogs), figures in sorted(totals.items())
        ],
    }


def _pinned(tenant_id: int, draft: _Draft, simulation: Simulation) -> str | None:
    """A customer pinned (when the simulation was asked for) to a version of the draft's card
    gets no new version until the pin ends: 'until <date>' or 'with no end'; else None."""
    if draft.rate_card_id is None:
        return None
    assignment = assignment_in_force(tenant=Tenant(pk=tenant_id), at=simulation.created_at)
    if (
        assignment is None
        or assignment.rate_card_id != draft.rate_card_id
        or assignment.mode != RateCardAssignment.Mode.PINNED
    ):
        return None
    until = assignment.pinned_until
    return f"until {until:%Y-%m-%d}" if until else "with no end"


def _tenant_figures(recorded: list[RecordedEvent], draft: _Draft) -> dict[tuple[str, str], Figures]:
    # The customer's value per credit in each currency, for events that were free before.
    paid: dict[str, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for event in recorded:
        paid[event.revenue_currency][0] += event.revenue_minor
        paid[event.revenue_currency][1] += event.credits
    out: dict[tuple[str, str], Figures] = defaultdict(Figures)
    for event in recorded:
        revenue, credits = paid[event.revenue_currency]
        per_credit = revenue / credits if credits else ZERO
        cogs_currency = draft.costs.version.currency if draft.costs else event.cogs_currency
        figures = out[(event.revenue_currency, cogs_currency)]
        _event_add(figures, event, draft, per_credit)
    return out


def _event_add(figures: Figures, event: RecordedEvent, draft: _Draft, per_credit: Decimal) -> None:
    figures.events += 1
    credits_after, cogs_after, refused = event.credits, event.cogs_minor, False
    try:
        if draft.rates is not None:
            quote = draft.rates.price(
                action=event.action, model_class=event.model_class or None, quantity=event.quantity
            )
            credits_after = credits_charged(quote=quote, outcome=event.outcome)
        if draft.costs is not None and event.cost_known:
            components = {k: v for k, v in event.components.items() if v}
            cost = draft.costs.quote(components=components, model_class=event.model_class)
            cogs_after = cost.total_minor.quantize(MONEY, rounding=ROUND_HALF_UP)
    except CreditlineError:  # the draft prices no such action or class: it would be refused
        credits_after, cogs_after, refused = ZERO, event.cogs_minor, True
    if event.credits:
        revenue_after = event.revenue_minor * credits_after / event.credits
    else:
        revenue_after = credits_after * per_credit
    revenue_after = revenue_after.quantize(MONEY, rounding=ROUND_HALF_UP)
    figures.events_refused += refused
    figures.credits_before += event.credits
    figures.credits_after += credits_after.quantize(CREDITS)
    figures.revenue_before += event.revenue_minor
    figures.revenue_after += revenue_after
    if not event.cost_known:
        figures.events_without_cost += 1
        return
    figures.known_revenue_before += event.revenue_minor
    figures.known_revenue_after += revenue_after
    figures.cogs_before += event.cogs_minor
    figures.cogs_after += cogs_after
    cogs_currency = draft.costs.version.currency if draft.costs else event.cogs_currency
    if cogs_currency != event.revenue_currency:
        _convert(figures, event, draft.exchange, cogs_currency, (event.cogs_minor, cogs_after))


def _convert(
    figures: Figures,
    event: RecordedEvent,
    exchange: RateTable,
    cogs_currency: str,
    cogs: tuple[Decimal, Decimal],
) -> None:
    """The event's COGS before and after, into its revenue's currency at the rate in force on
    the day it occurred (UTC); a cost of 0 needs no rate."""
    if not any(cogs):
        return
    day = event.occurred_at.astimezone(UTC).date()
    converted = [
        exchange.convert_minor(
            minor=minor, from_currency=cogs_currency, to_currency=event.revenue_currency, day=day
        )
        for minor in cogs
    ]
    before, after = converted
    if before is None or after is None:
        figures.events_without_rate += 1
        return
    figures.cogs_before_converted += before[0]
    figures.cogs_after_converted += after[0]
    figures.rate_used(before[1])


def _draft_json(simulation: Simulation) -> dict[str, Any]:
    """What the draft was when it ran: a draft may change after, and the page says so."""
    out: dict[str, Any] = {}
    if simulation.version is not None:
        out["rates"] = draft_fingerprint(version=simulation.version)
    if simulation.cost_catalog is not None:
        out["catalog"] = catalog_fingerprint(version=simulation.cost_catalog)
    return out


def draft_fingerprint(*, version: RateCardVersion) -> list[list[str]]:
    rates, multipliers = version_rates(version=version)
    return [[r.action, r.model_class, str(r.credits_per_unit), r.charge_on] for r in rates] + [
        ["*", c, str(m), "multiplier"] for c, m in multipliers.items()
    ]


def catalog_fingerprint(*, version: CostCatalogVersion) -> list[list[str]]:
    return [
        [p.component, p.model_class, str(p.price_minor), str(p.per_units)]
        for p in version.prices.order_by("component", "model_class")
    ]


def simulation_is_stale(*, simulation: Simulation) -> bool:
    """True when the draft's rates or costs are no longer those the simulation ran with."""
    draft = simulation.result.get("draft", {})
    if simulation.version is not None and draft.get("rates") != draft_fingerprint(
        version=simulation.version
    ):
        return True
    return simulation.cost_catalog is not None and draft.get("catalog") != catalog_fingerprint(
        version=simulation.cost_catalog
    )
