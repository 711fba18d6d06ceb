"""The console's forms: what a page parses before it calls a staff action
(insights/staff_actions.py). Each field says what it does."""

import copy
import uuid
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.forms.models import construct_instance

from billing.exceptions import InvalidContract
from billing.models import Contract
from billing.services.contracts import contract_validate
from ledger.models import CreditBucket
from ratecards.models import PublishStatus, RateCardVersion
from tenants.models import Tenant

# A token is new_token()'s 32 characters; the ledger keys it names are 200 (a grant's external
# reference) and 320 (an adjustment's idempotency key) at most.
TOKEN_MAX = 64


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
    token = forms.CharField(widget=forms.HiddenInput, max_length=TOKEN_MAX)

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
    token = forms.CharField(widget=forms.HiddenInput, max_length=TOKEN_MAX)


EVENT_KEY_MAX = 255  # UsageEvent.idempotency_key


class RefundLookupForm(forms.Form):
    event = forms.CharField(
        max_length=EVENT_KEY_MAX,
        label="Event idempotency key",
        help_text="The key the customer sent the usage event with.",
    )


class RefundForm(forms.Form):
    event = forms.CharField(widget=forms.HiddenInput, max_length=EVENT_KEY_MAX)
    credits = forms.DecimalField(
        required=False,
        max_digits=18,
        decimal_places=4,
        help_text="At most what the event charged less what was already refunded (blank: all "
        "of that).",
    )
    reason = forms.CharField(
        max_length=500, help_text="Why: kept on the ledger entry and in the staff log."
    )
    token = forms.CharField(widget=forms.HiddenInput, max_length=TOKEN_MAX)

    def clean_credits(self) -> Decimal | None:
        credits: Decimal | None = self.cleaned_data.get("credits")
        if credits is not None and credits <= 0:
            raise forms.ValidationError("A refund must be more than 0 credits.")
        return credits


CONTRACT_HELP = {
    "name": "How staff and the customer's invoices name it.",
    "price_per_1000_minor": "What the customer pays for 1,000 committed credits, in minor units "
    "of the currency (10000 = 100.00 USD); each tranche is invoiced at it and its credits carry "
    "it as their cost basis (the revenue they earn when spent).",
    "currency": "ISO 4217; must be the customer's billing currency.",
    "committed_credits": "Credits bought over the whole contract. They are granted with the "
    "rolling 12 months policy: each grant expires 12 calendar months after it is made.",
    "grant_schedule": "All up front, or in equal monthly tranches from the start (the last "
    "takes the rounding remainder), each invoiced when it is granted.",
    "start_at": "When the contract's card, overdraft and first tranche take effect (UTC).",
    "end_at": "When it ends: its overdraft is invoiced and cleared, and the customer goes back "
    "to its plan's card.",
    "rate_card": "The unit rate card the customer's usage is priced by.",
    "rate_card_mode": "Follow: new versions of the card apply after the notice period. Pinned: "
    "the version below applies until the pin ends, whatever is published (the rate-card trap).",
    "notice_days": "Follow only: days between publishing a version and it applying to this "
    "customer.",
    "pinned_version": "Pinned only: the version that prices the customer's usage.",
    "pinned_until": "Pinned only: when the pin ends (blank: the whole contract); after it, the "
    "card's current version applies.",
    "overdraft_limit": "Credits the customer may spend below zero; what it uses is invoiced "
    "monthly in arrears at the overage price.",
    "monthly_spending_cap_minor": "The most auto top-up may spend in a calendar month, in minor "
    "units (blank: the customer's own cap only).",
    "net_terms_days": "Days after an invoice is issued that it falls due (at most 365).",
    "credits_on": "When a tranche's credits come: when its invoice is issued (at signature) or "
    "only once it is paid.",
    "overage_price_per_1000_minor": "The price per 1,000 credits of overdraft invoiced in "
    "arrears (blank: the contract's price).",
}


class ContractForm(forms.ModelForm):
    reason = forms.CharField(max_length=500, help_text="Why: kept in the staff log.")

    class Meta:
        model = Contract
        fields = list(CONTRACT_HELP)
        help_texts = CONTRACT_HELP
        labels = {
            "price_per_1000_minor": "Price per 1,000 credits (minor units)",
            "monthly_spending_cap_minor": "Monthly spending cap (minor units)",
            "net_terms_days": "Net terms (days)",
            "overage_price_per_1000_minor": "Overage price per 1,000 credits (minor units)",
            "rate_card_mode": "Follow or pinned card",
            "start_at": "Starts at (UTC)",
            "end_at": "Ends at (UTC)",
            "pinned_until": "Pinned until (UTC)",
        }

    def __init__(self, *args: Any, locked: tuple[str, ...] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        pinned = cast(forms.ModelChoiceField, self.fields["pinned_version"])
        pinned.queryset = RateCardVersion.objects.filter(
            status=PublishStatus.PUBLISHED
        ).select_related("rate_card")
        for name in locked:
            self.fields[name].disabled = True
            self.fields[name].help_text += " Fixed once the contract is active."

    def clean(self) -> dict[str, Any]:
        """The contract as it would be saved, checked by billing's rules first: their message
        names the field ("The overage price cannot be negative."), where the model's
        constraints, checked next, would only name themselves."""
        cleaned: dict[str, Any] = super().clean() or {}
        if self.errors:
            return cleaned
        candidate = construct_instance(
            self, copy.copy(self.instance), self._meta.fields, self._meta.exclude
        )
        try:
            contract_validate(contract=candidate)
        except InvalidContract as exc:
            field = exc.details.get("field")
            self.add_error(field if field in self.fields else None, exc.message)
        return cleaned

    def terms(self) -> dict[str, Any]:
        return {n: v for n, v in self.cleaned_data.items() if n in CONTRACT_HELP}


def _activate_field() -> forms.BooleanField:
    return forms.BooleanField(
        required=False,
        help_text="Put it in force now: assign its card, set the overdraft, grant the tranches "
        "due. Unticked, it stays a draft.",
    )


class ContractDraftForm(ContractForm):
    """A draft's terms, and the box that puts it in force."""

    activate = _activate_field()


class ContractCreateForm(ContractForm):
    tenant = forms.ModelChoiceField(
        queryset=Tenant.objects.order_by("name"), help_text="The customer the contract is with."
    )
    activate = _activate_field()

    field_order = ["tenant", *CONTRACT_HELP]
