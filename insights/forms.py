"""The console's forms: what a page parses before it calls a staff action
(insights/staff_actions.py). Each field says what it does."""

import uuid
from decimal import Decimal

from django import forms

from ledger.models import CreditBucket


def new_token() -> str:
    """Rendered once with a form, so the same form submitted twice moves money once."""
    return uuid.uuid4().hex


class GrantForm(forms.Form):
    credits = forms.DecimalField(
        min_value=Decimal("0.0001"),
        max_digits=18,
        decimal_places=4,
        help_text="Free credits (cost basis 0): they earn no revenue when spent.",
    )
    policy = forms.ChoiceField(
        choices=CreditBucket.Policy.choices,
        help_text="Permanent never expires; rolling 12 months expires a year after today; "
        "monthly reset expires at the date below.",
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at (UTC, monthly reset only)",
        help_text="Needed for monthly reset: the end of the billing period.",
    )
    reason = forms.CharField(
        max_length=500, help_text="Why: kept on the ledger entry and in the staff log."
    )
    token = forms.CharField(widget=forms.HiddenInput)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("policy") == CreditBucket.Policy.MONTHLY_RESET and not cleaned.get(
            "expires_at"
        ):
            self.add_error("expires_at", "Monthly reset credits need the date they expire.")
        return cleaned


class AdjustForm(forms.Form):
    credits = forms.DecimalField(
        max_digits=18,
        decimal_places=4,
        help_text="Signed: positive adds free permanent credits; negative takes credits away "
        "in consumption order, refused whole if the balance cannot cover it.",
    )
    reason = forms.CharField(
        max_length=500, help_text="Why: kept on the ledger entry and in the staff log."
    )
    token = forms.CharField(widget=forms.HiddenInput)
