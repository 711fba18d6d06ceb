"""The usage estimator: expected monthly actions → a credit range and the plan that fits.

The band is ±20% around the rate card's price of the expected counts: usage forecasts are
rough, and the plan is chosen against the top of the band so it leaves headroom. Money is in
one currency (the tenant's billing currency, or the vendor's default for a visitor): a plan is
offered at its price in that currency (PlanPrice, what subscribing charges) and not at all
when it has none; packs likewise (billing/pack_selectors.py). When a smaller
plan plus top-up packs (bought each month) costs less than the plan that fits, or when no plan
is big enough, the estimate says so too.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from django.conf import settings

from billing.exceptions import EstimateTooLarge
from billing.models import Plan
from billing.money import money_format
from billing.pack_selectors import PackOffer, pack_offer_list
from billing.selectors import PlanOffer, billing_currency_get, plan_offer_list
from ratecards.selectors import estimate_credits
from tenants.models import Tenant

BAND = Decimal("0.20")

# What one estimate may ask for, so that a request's work and its numbers stay bounded: rows,
# model classes per row (each a pricing of its own), the count per row, and the total (which
# must fit the 18-digit, 4-decimal credits the answer is written in).
MAX_ROWS = 100
MAX_MODEL_MIX = 10
MAX_MONTHLY_COUNT = Decimal(10**9)
MAX_CREDITS = Decimal(10**12)


@dataclass(frozen=True)
class EstimateRow:
    action: str
    monthly_count: Decimal
    # model class -> share of the count (0..1]; the rest runs on the default class.
    model_mix: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class EstimateLine:
    action: str
    model_class: str
    monthly_count: Decimal
    credits: Decimal


@dataclass(frozen=True)
class PlanWithTopUps:
    """A plan too small for the top of the band, and the packs that cover the rest each month."""

    offer: PlanOffer
    pack: PackOffer  # at its price in the estimate's currency
    packs: int
    total_minor: int  # the plan's price and the packs', a month


@dataclass(frozen=True)
class Estimate:
    credits: Decimal
    low: int
    high: int
    band_percent: int
    plan: Plan | None  # the cheapest plan that covers the top of the band
    sentence: str
    lines: list[EstimateLine]
    currency: str = ""
    offer: PlanOffer | None = None  # `plan` at its price in `currency`
    with_top_ups: PlanWithTopUps | None = None  # when cheaper than `offer`, or no plan fits


def _split(row: EstimateRow) -> list[tuple[str, Decimal]]:
    parts = [
        (model_class, row.monthly_count * share) for model_class, share in row.model_mix.items()
    ]
    rest = row.monthly_count - sum((count for _, count in parts), Decimal(0))
    if rest > 0 or not parts:
        parts.insert(0, ("", rest))
    return parts


def _whole(value: Decimal) -> int:
    return int(value.to_integral_value(ROUND_HALF_UP))


def estimate(
    *,
    tenant: Tenant | None,
    rows: Sequence[EstimateRow],
    at: datetime,
    currency: str | None = None,
) -> Estimate:
    """Prices `rows` on the tenant's rate card in force at `at` (the default card when tenant
    is None) and fits a plan in `currency` (default: the tenant's billing currency, or the
    vendor's default currency for a visitor)."""
    currency = currency or estimate_currency(tenant=tenant)
    lines = []
    for row in rows:
        for model_class, count in _split(row):
            credits = estimate_credits(
                tenant_or_none=tenant, counts=[(row.action, model_class or None, count)], at=at
            )
            lines.append(EstimateLine(row.action, model_class, count, credits))
    total = sum((line.credits for line in lines), Decimal("0.0000"))
    if total > MAX_CREDITS:
        message = f"These actions would cost more than {MAX_CREDITS:,} credits a month."
        raise EstimateTooLarge(message, fields={"actions": [message]})
    low, high = _whole(total * (1 - BAND)), _whole(total * (1 + BAND))
    offer = with_top_ups = None
    if high > 0:
        offers = plan_offer_list(currency=currency)
        offer = next((o for o in offers if o.plan.included_credits >= high), None)
        with_top_ups = _cheapest_with_top_ups(
            offers=[o for o in offers if o.plan.included_credits < high],
            packs=pack_offer_list(currency=currency),
            credits=Decimal(high),
        )
        if (
            with_top_ups is not None
            and offer is not None
            and with_top_ups.total_minor >= offer.price_minor
        ):
            with_top_ups = None
    return Estimate(
        credits=total,
        low=low,
        high=high,
        band_percent=int(BAND * 100),
        plan=offer.plan if offer is not None else None,
        sentence=_sentence(low, high, offer, with_top_ups, currency),
        lines=lines,
        currency=currency,
        offer=offer,
        with_top_ups=with_top_ups,
    )


def estimate_currency(*, tenant: Tenant | None) -> str:
    """The tenant's billing currency; for a visitor, the vendor's default currency."""
    if tenant is not None:
        return billing_currency_get(tenant=tenant)
    return str(settings.BILLING_DEFAULT_CURRENCY).upper()


def _cheapest_with_top_ups(
    *, offers: Sequence[PlanOffer], packs: Sequence[PackOffer], credits: Decimal
) -> PlanWithTopUps | None:
    """The cheapest smaller plan plus as many of one pack as cover `credits` (ties: fewer
    packs, then the plan listed first). One kind of pack keeps the advice easy to follow."""
    best: PlanWithTopUps | None = None
    for offer in offers:
        short = credits - offer.plan.included_credits
        for pack in packs:
            count = _whole((short / pack.credits).to_integral_value(rounding=ROUND_CEILING))
            option = PlanWithTopUps(
                offer=offer,
                pack=pack,
                packs=count,
                total_minor=offer.price_minor + count * pack.price_minor,
            )
            if best is None or (option.total_minor, option.packs) < (best.total_minor, best.packs):
                best = option
    return best


def _plan_words(offer: PlanOffer) -> str:
    return f"the {_whole(offer.plan.included_credits):,}-credit {offer.plan.name} plan"


def _sentence(
    low: int,
    high: int,
    offer: PlanOffer | None,
    with_top_ups: PlanWithTopUps | None,
    currency: str,
) -> str:
    if high == 0:
        return "These actions cost no credits on this rate card."
    usage = f"You will use roughly {low:,}–{high:,} credits a month"  # noqa: RUF001 (en dash)
    combo = ""
    if with_top_ups is not None:
        pack_credits = _whole(with_top_ups.pack.credits)
        combo = (
            f"{_plan_words(with_top_ups.offer)} with {with_top_ups.packs} × {pack_credits:,}-credit"  # noqa: RUF001
            f" top-up pack{'s' if with_top_ups.packs != 1 else ''} a month"
            f" ({money_format(with_top_ups.total_minor, currency)} a month)"
        )
    if offer is None:
        if combo:
            return (
                f"{usage}, more than any plan includes; {combo} covers it, or ask about an "
                "Enterprise contract."
            )
        return (
            f"{usage}, more than any plan includes; an Enterprise contract or top-ups "
            "cover the rest."
        )
    plan = f"{_plan_words(offer)} ({money_format(offer.price_minor, currency)} a month)"
    if combo:
        return f"{usage}; {combo} costs less than {plan}."
    return f"{usage}; {plan} gives comfortable headroom."
