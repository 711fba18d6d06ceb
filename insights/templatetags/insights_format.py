"""Figures as the console shows them: credits to 4 places, money in its currency's minor units
rounded half up (from the rollups' unrounded sums), a ratio as a percentage."""

from decimal import ROUND_HALF_UP, Decimal

from django import template

from billing.money import money_format
from insights.selectors import percent

register = template.Library()


@register.filter
def credits(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return f"{value.quantize(Decimal('0.0001')):,}"


@register.filter
def minor(value: Decimal | int | None, currency: str) -> str:
    if value is None or not currency:
        return "—"
    units = int(Decimal(value).to_integral_value(rounding=ROUND_HALF_UP))
    return money_format(units, currency)


@register.filter
def pct(value: Decimal | None) -> str:
    shown = percent(value)
    return "—" if shown is None else f"{shown} %"


@register.filter
def rate(value: Decimal | None) -> str:
    """An exchange rate as entered: 0.920000000000 → 0.92, never in exponent notation."""
    if value is None:
        return "—"
    return f"{value.normalize():f}"
