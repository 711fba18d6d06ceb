"""Alerts and the soft cap: billing's low-balance thresholds and metering's soft cap on new
workflow runs, in one form, through the services /api/v1/alert-settings and
/api/v1/workflow-settings use."""

import re
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from billing.selectors import alert_thresholds_get
from billing.services.alerts import alert_settings_update
from ledger.selectors import available_get, credit_account_get
from metering.soft_cap import (
    DEFAULT_SOFT_CAP_PERCENT,
    soft_cap_get,
    workflow_settings_get,
    workflow_settings_update,
)
from portal.access import Capability
from portal.base import PortalView

MAX_THRESHOLDS = 10  # as the API's input


class AlertsForm(forms.Form):
    thresholds = forms.CharField(max_length=100, required=False)
    soft_cap = forms.DecimalField(
        max_digits=18, decimal_places=4, min_value=Decimal(0), required=False
    )

    def clean_thresholds(self) -> list[int]:
        parts = [p for p in re.split(r"[\s,;%]+", self.cleaned_data["thresholds"]) if p]
        try:
            values = sorted({int(p) for p in parts}, reverse=True)
        except ValueError:
            raise forms.ValidationError("Write whole percentages, e.g. 20, 10.") from None
        if any(v < 1 or v > 99 for v in values):
            raise forms.ValidationError("Each threshold is a whole percentage from 1 to 99.")
        if len(values) > MAX_THRESHOLDS:
            raise forms.ValidationError(f"At most {MAX_THRESHOLDS} thresholds.")
        return values


class AlertsPage(PortalView):
    template_name = "portal/alerts.html"
    section = "alerts"
    requires = {"POST": Capability.MANAGE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self._render(None)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = AlertsForm(request.POST)
        if not form.is_valid():
            return self._render(form, status=422)
        with transaction.atomic():
            alert_settings_update(tenant=self.tenant, thresholds=form.cleaned_data["thresholds"])
            workflow_settings_update(tenant=self.tenant, soft_cap=form.cleaned_data["soft_cap"])
        messages.success(request, "Alert thresholds and soft cap saved.")
        return HttpResponseRedirect(reverse("portal:alerts"))

    def _render(self, form: AlertsForm | None, *, status: int = 200) -> HttpResponse:
        thresholds = alert_thresholds_get(tenant_id=self.tenant.pk)
        settings = workflow_settings_get(tenant=self.tenant)
        if form is None:
            initial: dict[str, Any] = {
                "thresholds": ", ".join(str(t) for t in thresholds),
                "soft_cap": settings.soft_cap,
            }
            form = AlertsForm(initial=initial)
        topped_up_to = credit_account_get(tenant=self.tenant).topped_up_to
        context = {
            "form": form,
            "thresholds": thresholds,
            "topped_up_to": topped_up_to,
            "own_soft_cap": settings.soft_cap,
            "soft_cap": soft_cap_get(
                tenant=self.tenant, settings=settings, topped_up_to=topped_up_to
            ),
            "default_percent": min(thresholds or [DEFAULT_SOFT_CAP_PERCENT]),
            "available": available_get(tenant=self.tenant),
        }
        return self.page(context, status=status)
