from decimal import Decimal
from typing import Any, cast

from django import forms

from billing.models import CreditPack
from billing.money import money_to_minor


class AutoTopUpForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    threshold = forms.DecimalField(
        min_value=Decimal(0), max_digits=18, decimal_places=4, label="Top up below (credits)"
    )
    pack = forms.ModelChoiceField(
        queryset=CreditPack.objects.filter(active=True), to_field_name="slug", empty_label=None
    )
    # In the pack's currency, to as many decimals as that currency has (none for JPY).
    monthly_cap = forms.DecimalField(
        min_value=Decimal(0), max_digits=15, decimal_places=4, label="Monthly cap (money)"
    )

    def __init__(self, *args: Any, currency: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Only the packs sold in the tenant's billing currency.
        pack = cast(forms.ModelChoiceField, self.fields["pack"])
        pack.queryset = CreditPack.objects.filter(active=True, currency=currency)

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean() or {}
        pack, cap = cleaned.get("pack"), cleaned.get("monthly_cap")
        if pack is not None and cap is not None:
            try:
                cleaned["monthly_cap_minor"] = money_to_minor(cap, pack.currency)
            except ValueError as exc:
                self.add_error("monthly_cap", str(exc))
        return cleaned
