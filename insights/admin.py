"""The vendor's exchange-rate table in the Django admin (the console's page lists and adds;
here a rate is also corrected, with the admin's own history of who changed what)."""

from datetime import date
from typing import Any

from django import forms
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from billing.admin import ContractAdmin
from billing.models import Contract
from billing.money import ISO_4217
from insights.base import EARLIEST
from insights.fx_views import AHEAD
from insights.models import ExchangeRate


class ExchangeRateForm(forms.ModelForm):
    class Meta:
        model = ExchangeRate
        fields = ("from_currency", "to_currency", "rate", "effective_on", "source")

    def clean_from_currency(self) -> str:
        return _iso(self.cleaned_data["from_currency"])

    def clean_to_currency(self) -> str:
        return _iso(self.cleaned_data["to_currency"])

    def clean_effective_on(self) -> date:
        day: date = self.cleaned_data["effective_on"]
        if not EARLIEST <= day <= timezone.now().date() + AHEAD:
            raise forms.ValidationError("From 1970 to a year from today.")
        return day


def _iso(value: object) -> str:
    code = str(value).upper()
    if code not in ISO_4217:
        raise forms.ValidationError(f"{code} is not an ISO 4217 currency.")
    return code


@admin.register(ExchangeRate)
class ExchangeRateAdmin(admin.ModelAdmin):
    list_display = ("effective_on", "from_currency", "to_currency", "rate", "source", "created_by")
    list_filter = ("from_currency", "to_currency")
    form = ExchangeRateForm
    search_fields = ("source",)
    date_hierarchy = "effective_on"
    ordering = ("-effective_on", "from_currency", "to_currency")
    readonly_fields = ("created_by", "created_at")
    fields = ("from_currency", "to_currency", "rate", "effective_on", "source", *readonly_fields)

    def save_model(self, request: HttpRequest, obj: ExchangeRate, form: Any, change: bool) -> None:
        if not change:
            obj.created_by = request.user if request.user.is_authenticated else None
            obj.created_at = timezone.now()
        super().save_model(request, obj, form, change)


class ConsoleContractAdmin(ContractAdmin):
    """billing's contract admin, its add and change pages leading to the console's form, where
    contracts are made and changed (through billing's services, with a reason, logged)."""

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return redirect("insights:contract-new")

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        if not (object_id.isascii() and object_id.isdigit()):  # '²' is a digit to isdigit()
            raise Http404("No such contract.")
        return redirect("insights:contract", contract_id=int(object_id))


admin.site.unregister(Contract)
admin.site.register(Contract, ConsoleContractAdmin)
