"""The usage estimator: expected monthly actions → a credit range and the plan that fits.

The band is ±20% around the rate card's price of the expected counts: usage forecasts are
rough, and the plan is chosen against the top of the band so it leaves headroom.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from billing.exceptions import EstimateTooLarge
from billing.models import Plan
from billing.selectors import cheapest_plan_covering
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
class Estimate:
    credits: Decimal
    low: int
    high: int
    band_percent: int
    plan: Plan | None
    sentence: str
    lines: list[EstimateLine]


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


def estimate(*, tenant: Tenant | None, rows: Sequence[EstimateRow], at: datetime) -> Estimate:
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
    plan = cheapest_plan_covering(credits=Decimal(high)) if high > 0 else None
    return Estimate(
        credits=total,
        low=low,
        high=high,
        band_percent=int(BAND * 100),
        plan=plan,
        sentence=_sentence(low, high, plan),
        lines=lines,
    )


def _sentence(low: int, high: int, plan: Plan | None) -> str:
    if high == 0:
        return "These actions cost no credits on your rate card."
    usage = f"You will use roughly {low:,}–{high:,} credits a month"  # noqa: RUF001 (en dash)
    if plan is None:
        return (
            f"{usage}, more than any plan includes; an Enterprise contract or top-ups "
            "cover the rest."
        )
    included = _whole(plan.included_credits)
    return f"{usage}; the {included:,}-credit {plan.name} plan leaves headroom."
