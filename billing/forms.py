from decimal import Decimal

from django import forms

from billing.models import CreditPack


class AutoTopUpForm(forms.Form):
    enabled = forms.BooleanField(required=False)
    threshold = forms.DecimalField(
        min_value=Decimal(0), max_digits=18, decimal_places=4, label="Top up below (credits)"
    )
    pack = forms.ModelChoiceField(
        queryset=CreditPack.objects.filter(active=True), to_field_name="slug", empty_label=None
    )
    monthly_cap = forms.DecimalField(
        min_value=Decimal(0), max_digits=12, decimal_places=2, label="Monthly cap (money)"
    )
