"""Pricing and costing of usage events, before any lock: published rate card and cost catalog
versions never change, so they need none, and one tenant's critical section (every event of
that tenant waits on it) shrinks to the key lookup and the writes. A pricing error is kept on
the event (Priced.error) and raised only once its key has been looked up, so a replay still
gets its original result.

The price and its rounding are ratecards' (PriceQuote.credits); metering adds one rule of its
own: an outcome-priced action that failed is free. A charge or a cost larger than the event's
columns hold is refused (422) before anything is written; the refusal of a cost says nothing
of the catalog's prices (customers never see the vendor's costs).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypeVar

from metering.exceptions import InvalidUsage
from metering.models import UsageEvent
from metering.usage.inputs import COMPONENTS, MAX_COGS, MAX_CREDITS, UsageInput
from ratecards.exceptions import CostCatalogNotFound
from ratecards.models import Rate
from ratecards.selectors import (
    PriceQuote,
    TenantPricer,
    cost_catalog_in_force,
    cost_units,
    tenant_pricer,
)
from tenants.exceptions import CreditlineError
from tenants.models import Tenant

MONEY_QUANTUM = Decimal("0.00000001")
ZERO_CREDITS = Decimal("0.0000")
ZERO_MONEY = Decimal("0.00000000")

T = TypeVar("T")


def _charged_credits(*, quote: PriceQuote, data: UsageInput) -> Decimal:
    return credits_charged(quote=quote, outcome=data.outcome)


def credits_charged(*, quote: PriceQuote, outcome: str) -> Decimal:
    """What an event is charged: the rate card's price for its quantity (ratecards owns that
    rule and its rounding), except that an outcome-priced action that failed is free; its COGS
    is still recorded. The console's simulator re-prices recorded events through it too."""
    if quote.charge_on == Rate.ChargeOn.SUCCESS and outcome == UsageEvent.Outcome.FAILURE:
        return ZERO_CREDITS
    return quote.credits


@dataclass(frozen=True)
class _CostTable:
    """Unit costs (minor units, unrounded) of one cost catalog version for one model class."""

    currency: str
    units: dict[str, Decimal]
    missing: dict[str, CreditlineError]

    def cogs(self, data: UsageInput) -> Decimal:
        total = ZERO_MONEY
        for name in COMPONENTS:
            quantity = getattr(data, name)
            if not quantity:
                continue
            if name in self.missing:
                raise self.missing[name]
            total += quantity * self.units[name]
        # Checked before rounding: quantizing past 10^20 would raise. The error names the
        # largest count, which tells nothing of what each unit costs.
        if total > MAX_COGS:
            largest = max(COMPONENTS, key=lambda name: getattr(data, name))
            raise InvalidUsage(largest, "Too large: the cost of this event cannot be recorded.")
        return total.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


_NO_CATALOG = _CostTable(currency="USD", units={}, missing={})


def _cost_table(*, model_class: str, at: datetime) -> _CostTable:
    """The unit cost of every component; a component the catalog does not price is an error
    only for events that use it."""
    try:
        found = cost_units(components=COMPONENTS, model_class=model_class, at=at)
    except CostCatalogNotFound as exc:
        return _CostTable(currency="USD", units={}, missing=dict.fromkeys(COMPONENTS, exc))
    return _CostTable(currency=found.currency, units=found.units, missing=dict(found.missing))


def _too_many_credits() -> InvalidUsage:
    return InvalidUsage("quantity", f"Too large: the charge would exceed {MAX_CREDITS} credits.")


def _uses_components(data: UsageInput) -> bool:
    return any(getattr(data, name) for name in COMPONENTS)


@dataclass
class Priced:
    """An event priced and costed, waiting for its debit and its row."""

    data: UsageInput
    request_hash: str
    occurred_at: datetime
    quote: PriceQuote | None = None
    credits: Decimal = ZERO_CREDITS
    cogs: Decimal = ZERO_MONEY
    cogs_currency: str = "USD"
    error: CreditlineError | None = None


def _price(*, item: Priced, quote: PriceQuote, costs: _CostTable) -> None:
    item.quote = quote
    item.credits = _charged_credits(quote=quote, data=item.data)
    if item.credits > MAX_CREDITS:
        raise _too_many_credits()
    item.cogs_currency = costs.currency
    item.cogs = costs.cogs(item.data)


class BatchPricer:
    """Prices a batch with a handful of queries, however many events it holds.

    Rate cards: one ratecards TenantPricer (two queries) prices every event in memory. Cost
    catalogs: the version in force is a step function of time whose number never goes down,
    so if the first and the last of a run of sorted timestamps get the same version, every
    timestamp between does too; otherwise the run is halved (step_lookup). A batch with no
    catalog change in it costs two lookups, and one cost table per model class.
    """

    def __init__(self, *, tenant: Tenant) -> None:
        self.tenant = tenant
        self.costs: dict[tuple[int, str], _CostTable] = {}

    def price_all(self, items: list[Priced]) -> None:
        if not items:
            return
        pricer = tenant_pricer(tenant=self.tenant)
        catalogs: dict[datetime, int | None] = {}
        if any(_uses_components(item.data) for item in items):
            times = sorted({item.occurred_at for item in items})
            catalogs = step_lookup(times, _catalog_at)
        for item in items:
            data = item.data
            try:
                quote = _quote(pricer, item)
                costs = (
                    self._costs(catalogs[item.occurred_at], item)
                    if _uses_components(data)
                    else _NO_CATALOG
                )
                _price(item=item, quote=quote, costs=costs)
            except CreditlineError as exc:
                item.error = exc

    def _costs(self, catalog_id: int | None, item: Priced) -> _CostTable:
        key = (catalog_id or 0, item.data.model_class or "")
        table = self.costs.get(key)
        if table is None:
            table = _cost_table(model_class=item.data.model_class, at=item.occurred_at)
            self.costs[key] = table
        return table


def _quote(pricer: TenantPricer, item: Priced) -> PriceQuote:
    try:
        return pricer.price(
            action=item.data.action,
            model_class=item.data.model_class or None,
            quantity=item.data.quantity,
            at=item.occurred_at,
        )
    except InvalidOperation:  # a price past the decimal context's 28 digits
        raise _too_many_credits() from None


def _catalog_at(at: datetime) -> int | None:
    try:
        return cost_catalog_in_force(at=at).pk
    except CostCatalogNotFound:
        return None


def step_lookup(times: list[datetime], lookup: Callable[[datetime], T]) -> dict[datetime, T]:
    """`lookup` at every one of the sorted `times`, for a lookup that is a step function whose
    steps never return to an earlier value (see BatchPricer): O(steps x log n) lookups."""
    found: dict[datetime, T] = {}

    def at(i: int) -> T:
        if times[i] not in found:
            found[times[i]] = lookup(times[i])
        return found[times[i]]

    def fill(lo: int, hi: int) -> None:
        if hi - lo <= 1:
            at(lo)
            at(hi)
            return
        if at(lo) == at(hi):
            for i in range(lo + 1, hi):
                found[times[i]] = found[times[lo]]
            return
        mid = (lo + hi) // 2
        fill(lo, mid)
        fill(mid, hi)

    if times:
        fill(0, len(times) - 1)
    return found
