from decimal import Decimal

from django import template

register = template.Library()


@register.filter
def money(amount_minor: int | None, currency: str = "USD") -> str:
    """12345, "USD" → "123.45 USD" (two-decimal currencies, which is all the packs use)."""
    if amount_minor is None:
        return ""
    return f"{Decimal(amount_minor) / 100:,.2f} {currency}"
