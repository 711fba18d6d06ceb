from decimal import Decimal

from django import template

from billing.display import CREDITS, CreditDisplay

register = template.Library()


@register.simple_tag
def credits(amount: Decimal | None, display: CreditDisplay | None = None, places: str = "") -> str:
    """{% credits amount credit_display "-4" %}: the amount as the tenant sees credits
    (billing/display.py): money for invisible credits, else credits (floatformat `places`, or
    as stored)."""
    return (display or CREDITS).show(amount, places)


@register.simple_tag
def price(credits: Decimal, display: CreditDisplay | None = None) -> str:
    """{% price rate.credits_per_unit credit_display %}: a price of one unit as the tenant sees
    credits (money to a fraction of a cent for invisible credits, else credits)."""
    return (display or CREDITS).show_price(credits)


@register.simple_tag
def amount(credits: Decimal | None, display: CreditDisplay | None = None) -> str:
    """{% amount w.needs credit_display %}: an amount in a sentence, with its unit ("12.5
    credits", or "0.25 USD" for invisible credits)."""
    return (display or CREDITS).show_amount(credits)
