from django import template

from billing.money import money_format

register = template.Library()


@register.filter
def money(amount_minor: int | None, currency: str = "USD") -> str:
    """12345, "USD" → "123.45 USD"; 12345, "JPY" → "12,345 JPY"."""
    if amount_minor is None:
        return ""
    return money_format(amount_minor, currency)
