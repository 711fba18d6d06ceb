"""The console's exchange-rate page (staff only, insights/base.py): the vendor's table of dated
rates (insights/models.py ExchangeRate), newest first, 50 a page, each pair's rate in force
today, and a form to add one, shown only to staff who may (`insights.add_exchangerate`); a
POST without the permission is refused (403) by the staff action itself. Corrections of a
rate are the admin's (its change form and history)."""

from datetime import date, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone

from billing.money import ISO_4217
from insights.base import EARLIEST, StaffPage, query_int
from insights.models import ExchangeRate
from insights.staff_actions import (
    EXCHANGE_RATE_ADD_PERMISSION,
    ExchangeRateExists,
    staff_exchange_rate_add,
)
from tenants.keyset import Key, page_of

PAGE = 50
# How far ahead a rate may be entered (one for a date no day of usage reaches is a typo).
AHEAD = timedelta(days=366)
CODE = r"^[A-Za-z]{3}$"
CODE_ERRORS = {"invalid": "A three-letter ISO 4217 code, e.g. USD."}


class ExchangeRateForm(forms.Form):
    from_currency = forms.RegexField(
        regex=CODE,
        max_length=3,
        label="From (the cost catalog's currency)",
        help_text="ISO 4217, e.g. USD: the currency COGS are recorded in.",
        error_messages=CODE_ERRORS,
    )
    to_currency = forms.RegexField(
        regex=CODE,
        max_length=3,
        label="To (the revenue's currency)",
        help_text="ISO 4217, e.g. EUR: the currency the customer paid for its credits in.",
        error_messages=CODE_ERRORS,
    )
    rate = forms.DecimalField(
        min_value=0,
        max_digits=24,
        decimal_places=12,
        help_text="What one unit of the first is worth in the second (1 USD = 0.92 EUR: 0.92), "
        "up to 12 decimal places.",
    )
    effective_on = forms.DateField(
        label="Effective on (UTC day)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="It converts the COGS of this day and of every later one until the pair's "
        "next rate.",
    )
    source = forms.CharField(
        max_length=200,
        help_text="Where the figure comes from (e.g. ECB reference rate): shown beside the "
        "rate and kept in the staff log.",
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in ("from_currency", "to_currency"):
            if cleaned.get(name):
                cleaned[name] = cleaned[name].upper()
                if cleaned[name] not in ISO_4217:  # add_error takes it out of `cleaned`
                    self.add_error(name, f"{cleaned[name]} is not an ISO 4217 currency.")
        if cleaned.get("from_currency") and cleaned.get("from_currency") == cleaned.get(
            "to_currency"
        ):
            self.add_error("to_currency", "A rate converts between two currencies.")
        effective_on = cleaned.get("effective_on")
        if effective_on is not None and not (
            EARLIEST <= effective_on <= timezone.now().date() + AHEAD
        ):
            self.add_error("effective_on", "From 1970 to a year from today.")
        if cleaned.get("rate") is not None and cleaned["rate"] <= 0:
            self.add_error("rate", "A rate is more than zero.")
        return cleaned


def _user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


class ExchangeRatesPage(StaffPage):
    template_name = "insights/exchange_rates.html"
    nav_name = "insights:exchange-rates"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        rates = page_of(
            ExchangeRate.objects.select_related("created_by"),
            keys=[Key("effective_on", descending=True), Key("id", descending=True)],
            after=query_int(self.request, "after"),
            limit=PAGE,
        )
        today = timezone.now().date()
        can_add = _user(self.request).has_perm(EXCHANGE_RATE_ADD_PERMISSION)
        form = kwargs.pop("form", None)
        return super().get_context_data(
            rates=rates,
            in_force=_in_force_today(today),
            today=today,
            form=(form or ExchangeRateForm(initial={"effective_on": today})) if can_add else None,
            **kwargs,
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = _user(request)
        if not user.has_perm(EXCHANGE_RATE_ADD_PERMISSION):
            raise PermissionDenied(
                f"Adding an exchange rate needs the permission {EXCHANGE_RATE_ADD_PERMISSION}."
            )
        form = ExchangeRateForm(request.POST)
        if not form.is_valid():
            return self._invalid(form)
        try:
            added = staff_exchange_rate_add(user=user, **form.cleaned_data)
        except ExchangeRateExists as error:
            form.add_error(None, error.message)
            return self._invalid(form)
        messages.success(request, f"Added: {added}.")
        return HttpResponseRedirect(reverse("insights:exchange-rates"))

    def _invalid(self, form: ExchangeRateForm) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form), status=422)


def _in_force_today(today: date) -> list[ExchangeRate]:
    """Each pair's rate in force today, its latest effective on or before it (one query)."""
    return list(
        ExchangeRate.objects.filter(effective_on__lte=today)
        .order_by("from_currency", "to_currency", "-effective_on")
        .distinct("from_currency", "to_currency")
    )
