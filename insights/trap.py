"""The rate-card trap as money: for a contract pinned to a version of its card, what its last
30 days of events would have cost under the card in force now (the newest published version
of that card already effective, what a contract that follows with no notice pays), in credits
and in the contract's money, and the date the pin ends.

Every event is re-priced one by one through ratecards' own pricing (`version_quoter`, the rule
and rounding the hot path uses) and metering's charging rule (`credits_charged`: a failed
outcome-priced action is free), so the figure is what the ledger would have debited."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from billing.models import Contract
from metering.selectors import usage_event_recorded_list
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
    pin_ends_at: datetime  # pinned_until, else the contract's end

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


def card_version_now(*, rate_card_id: int, now: datetime) -> RateCardVersion | None:
    """The newest published version of the card already in effect at `now`."""
    return (
        RateCardVersion.objects.filter(
            rate_card_id=rate_card_id, status=PublishStatus.PUBLISHED, effective_from__lte=now
        )
        .order_by("-number")
        .first()
    )


def contract_trap(*, contract: Contract, now: datetime) -> TrapFigure | None:
    """None unless the contract is pinned to a version older than the card's current one."""
    pinned = contract.pinned_version
    if contract.rate_card_mode != Contract.RateCardMode.PINNED or pinned is None:
        return None
    current = card_version_now(rate_card_id=contract.rate_card_id, now=now)
    if current is None or current.pk == pinned.pk or current.number < pinned.number:
        return None
    quoter = version_quoter(version=current)
    since = now - timedelta(days=DAYS)
    events = unpriced = 0
    charged = under = ZERO
    for event in usage_event_recorded_list(
        tenant=contract.tenant, since=since, until=now, rate_card_id=contract.rate_card_id
    ):
        events += 1
        charged += event.credits
        try:
            quote = quoter.price(
                action=event.action, model_class=event.model_class, quantity=event.quantity
            )
        except (UnknownAction, UnknownModelClass):
            unpriced += 1
            continue
        under += credits_charged(quote=quote, outcome=event.outcome)
    return TrapFigure(
        contract=contract,
        since=since,
        until=now,
        pinned=pinned,
        current=current,
        events=events,
        charged=charged,
        under_current=under,
        unpriced=unpriced,
        pin_ends_at=contract.pinned_until or contract.end_at,
    )
