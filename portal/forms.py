"""The portal's forms: what a page parses before it calls a billing service."""

from decimal import Decimal
from typing import Any, cast

from django import forms

from billing.models import CreditPack
from billing.money import money_format, money_to_minor
from billing.pack_selectors import PackOffer, pack_offer_list


def _offer_label(offer: PackOffer) -> str:
    price = money_format(offer.price_minor, offer.currency)
    credits = f"{offer.credits.normalize():f}"
    # "500 credits, 65.00 USD" rather than "500 credits: 500 credits for 65.00 USD".
    if credits in offer.name:
        return f"{offer.name}, {price}"
    return f"{offer.name}: {credits} credits, {price}"


class AutoTopUpForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    threshold = forms.DecimalField(
        min_value=Decimal(0),
        max_digits=18,
        decimal_places=4,
        label="Top up when available credits fall below",
    )
    pack = forms.ModelChoiceField(
        queryset=CreditPack.objects.filter(active=True),
        to_field_name="slug",
        empty_label=None,
        label="Pack to buy",
    )
    # In the tenant's billing currency, to as many decimals as it has (none for JPY).
    monthly_cap = forms.DecimalField(
        min_value=Decimal(0), max_digits=15, decimal_places=4, label="Monthly cap (money)"
    )

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the packs priced in the tenant's billing currency, at that price.
        self.currency = currency
        offers = {offer.pack.pk: offer for offer in pack_offer_list(currency=currency)}
        pack = cast(forms.ModelChoiceField, self.fields["pack"])
        pack.queryset = CreditPack.objects.filter(pk__in=offers).order_by("slug")
        pack.label_from_instance = lambda p: _offer_label(offers[p.pk])  # type: ignore[method-assign,assignment]
        self.fields["monthly_cap"].label = f"Monthly cap ({currency})"

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        pack, cap = cleaned.get("pack"), cleaned.get("monthly_cap")
        if pack is not None and cap is not None:
            try:
                cleaned["monthly_cap_minor"] = money_to_minor(cap, self.currency)
            except ValueError as exc:
                self.add_error("monthly_cap", str(exc))
        return cleaned
