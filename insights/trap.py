"""The rate-card trap as money: for a contract pinned to a version of its card, what its last
30 days of events would have cost under the card in force now (the newest published version
of that card already effective, what a contract that follows with no notice pays), in credits
and in the contract's money, and the date the pin ends.

Every event is re-priced through ratecards' own pricing (`version_quoter`, the rule and
rounding the hot path uses) and metering's charging rule (`credits_charged`: a failed
outcome-priced action is free), so the figure is what the ledger would have debited: the
events are read grouped by the inputs of their price (see `contract_traps`), each group priced
once. Not from the daily usage rollup: it sums quantities, and a summed quantity priced once
rounds differently from its events priced one by one; nor does it know outcomes or cards."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Count, Sum

from billing.models import Contract
from insights.locks import stored_traps_lock
from insights.models import StoredTrap
from metering.models import UsageEvent
from metering.usage.pricing import credits_charged
from ratecards.exceptions import UnknownAction, UnknownModelClass
from ratecards.models import PublishStatus, RateCardVersion
from ratecards.selectors import version_quoter

DAYS = 30
ZERO = Decimal("0.0000")


@dataclass(frozen=True)
class TrapFigure:
    contract: Contract
    since: datetime
    until: datetime
    pinned: RateCardVersion
    current: RateCardVersion
    events: int
    charged: Decimal  # what the events were charged (under the pin)
    under_current: Decimal  # what they would have been charged under `current`
    unpriced: int  # events whose action or model class `current` no longer prices

    @property
    def pin_ends_at(self) -> datetime:
        """pinned_until, else the contract's end."""
        return self.contract.pinned_until or self.contract.end_at

    @property
    def difference(self) -> Decimal:
        """Credits the pin saved the customer (negative: it cost them)."""
        return self.under_current - self.charged

    @property
    def difference_minor(self) -> int:
        """The difference at the contract's price per 1,000 credits, in its currency."""
        money = self.difference * self.contract.price_per_1000_minor / 1000
        return int(money.to_integral_value(rounding=ROUND_HALF_UP))

    def money_minor(self, credits: Decimal) -> int:
        money = credits * self.contract.price_per_1000_minor / 1000
        return int(money.to_integral_value(rounding=ROUND_HALF_UP))

    @property
    def charged_minor(self) -> int:
        return self.money_minor(self.charged)

    @property
    def under_current_minor(self) -> int:
        return self.money_minor(self.under_current)


def card_versions_now(*, rate_card_ids: Iterable[int], now: datetime) -> dict[int, RateCardVersion]:
    """Per card, the newest published version already in effect at `now` (one statement)."""
    newest: dict[int, RateCardVersion] = {}
    for version in RateCardVersion.objects.filter(
        rate_card_id__in=set(rate_card_ids),
        status=PublishStatus.PUBLISHED,
        effective_from__lte=now,
    ).order_by("rate_card_id", "-number"):
        newest.setdefault(version.rate_card_id, version)
    return newest


def _trapped(contract: Contract, current: RateCardVersion | None) -> bool:
    """Pinned to a version older than the card's current one."""
    pinned = contract.pinned_version
    return (
        contract.rate_card_mode == Contract.RateCardMode.PINNED
        and pinned is not None
        and current is not None
        and current.pk != pinned.pk
        and current.number >= pinned.number
    )


@dataclass(frozen=True)
class _Group:
    """The events of one tenant priced by one card with the same inputs of their price."""

    tenant_id: int
    rate_card_id: int
    action: str
    model_class: str
    quantity: Decimal
    outcome: str
    events: int
    credits: Decimal  # what they were charged


def _price_groups(
    *, pairs: set[tuple[int, int]], since: datetime, until: datetime
) -> Iterable[_Group]:
    """The events that occurred in [since, until) of each (tenant, card) pair, priced by a
    version of that card (as metering.selectors.usage_event_recorded_list reads them), grouped
    by tenant, card, action, model class, quantity and outcome: one statement, a row a group."""
    rows = (
        UsageEvent.objects.filter(
            tenant_id__in={t for t, _ in pairs},
            occurred_at__gte=since,
            occurred_at__lt=until,
            rate_card_version__rate_card_id__in={c for _, c in pairs},
        )
        .values_list(
            "tenant_id",
            "rate_card_version__rate_card_id",
            "action",
            "model_class",
            "quantity",
            "outcome",
        )
        .annotate(events=Count("id"), credits=Sum("credits"))
        .order_by()
    )
    for tenant_id, card_id, action, model_class, quantity, outcome, events, credits in rows:
        if (tenant_id, card_id) in pairs:
            yield _Group(
                tenant_id, card_id, action, model_class, quantity, outcome, events, credits
            )


@dataclass
class _Totals:
    events: int = 0
    charged: Decimal = ZERO
    under: Decimal = ZERO
    unpriced: int = 0


def contract_traps(*, contracts: Iterable[Contract], now: datetime) -> dict[int, TrapFigure]:
    """The trap of every contract given that is pinned behind its card, by contract id, in a
    fixed number of statements however many contracts: the cards' current versions at once,
    then the events of every trapped (tenant, card) pair of the last DAYS days in one grouped
    query (`_price_groups`).

    Exactly the event-by-event re-pricing: an event's charge depends only on the rate's inputs
    (action, model class, quantity) and its outcome, and each event is rounded on its own
    (ratecards: 0.0001 ROUND_HALF_UP per charge), so the events of a group of equal inputs are
    each charged the group's one quote; a rollup's summed quantity, priced once, would round
    differently. tests/insights/test_trap.py checks it against the events one by one."""
    contracts = list(contracts)
    current = card_versions_now(rate_card_ids=(c.rate_card_id for c in contracts), now=now)
    trapped = [c for c in contracts if _trapped(c, current.get(c.rate_card_id))]
    if not trapped:
        return {}
    since = now - timedelta(days=DAYS)
    quoters = {c.rate_card_id: version_quoter(version=current[c.rate_card_id]) for c in trapped}
    totals: dict[tuple[int, int], _Totals] = {}
    pairs = {(c.tenant_id, c.rate_card_id) for c in trapped}
    for group in _price_groups(pairs=pairs, since=since, until=now):
        t = totals.setdefault((group.tenant_id, group.rate_card_id), _Totals())
        t.events += group.events
        t.charged += group.credits
        try:
            quote = quoters[group.rate_card_id].price(
                action=group.action, model_class=group.model_class, quantity=group.quantity
            )
        except (UnknownAction, UnknownModelClass):
            t.unpriced += group.events
            continue
        t.under += group.events * credits_charged(quote=quote, outcome=group.outcome)
    figures = {}
    for c in trapped:
        t = totals.get((c.tenant_id, c.rate_card_id), _Totals())
        pinned = c.pinned_version
        if pinned is None:  # _trapped() said it is not
            continue
        figures[c.pk] = TrapFigure(
            contract=c,
            since=since,
            until=now,
            pinned=pinned,
            current=current[c.rate_card_id],
            events=t.events,
            charged=t.charged,
            under_current=t.under,
            unpriced=t.unpriced,
        )
    return figures


def contract_trap(*, contract: Contract, now: datetime) -> TrapFigure | None:
    """None unless the contract is pinned to a version older than the card's current one."""
    return contract_traps(contracts=[contract], now=now).get(contract.pk)


def contract_traps_store(*, now: datetime) -> int:
    """The hourly job: every active contract pinned behind its card figured (`contract_traps`)
    and stored, replacing what was stored; the rows of contracts no longer trapped go. Returns
    how many are stored. Safe to run twice at once: each run replaces the whole set under
    the table's lock (insights/locks.py), so the last one to commit wins whole."""
    contracts = Contract.objects.filter(
        status=Contract.Status.ACTIVE, rate_card_mode=Contract.RateCardMode.PINNED
    ).select_related("pinned_version")
    figures = contract_traps(contracts=contracts, now=now)
    rows = [
        StoredTrap(
            tenant_id=f.contract.tenant_id,
            contract_id=f.contract.pk,
            pinned=f.pinned,
            current=f.current,
            since=f.since,
            until=f.until,
            events=f.events,
            charged=f.charged,
            under_current=f.under_current,
            unpriced=f.unpriced,
        )
        for f in figures.values()
    ]
    with transaction.atomic():
        stored_traps_lock()
        StoredTrap.objects.all().delete()
        StoredTrap.objects.bulk_create(rows)
    return len(rows)


def stored_traps(*, contracts: Iterable[Contract]) -> dict[int, TrapFigure]:
    """The stored figures of those of `contracts` still pinned behind the version they were
    figured against, by contract id (one statement)."""
    by_id = {c.pk: c for c in contracts}
    figures = {}
    tenants = {c.tenant_id for c in by_id.values()}
    rows = StoredTrap.objects.filter(tenant_id__in=tenants, contract_id__in=by_id)
    for row in rows.select_related("pinned", "current"):
        c = by_id[row.contract_id]
        if c.rate_card_mode != Contract.RateCardMode.PINNED or c.pinned_version_id != row.pinned_id:
            continue  # changed since the job ran: its own page figures it live
        figures[c.pk] = TrapFigure(
            contract=c,
            since=row.since,
            until=row.until,
            pinned=row.pinned,
            current=row.current,
            events=row.events,
            charged=row.charged,
            under_current=row.under_current,
            unpriced=row.unpriced,
        )
    return figures
