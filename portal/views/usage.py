"""Usage: credits by day (a chart stacked by action or model class, with a table as its text
alternative), a table by action / model class / workflow, and CSV exports of the events or
the daily totals over the chosen UTC days.

Everything on the page reads metering's daily rollup (metering/rollup_selectors.py), never the
events, so a page is the same few statements whatever the data; the rollup's "as of" says how
fresh it is. The exports are metering's (metering/exports.py): a small one is ready when the
request returns, a larger one is made by a job that the export's page polls with htmx.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django import forms
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone

from billing.display import credit_display_get
from metering.exports import (
    MAX_DAYS,
    InvalidExport,
    usage_export_chunks,
    usage_export_get,
    usage_export_list,
    usage_export_request,
)
from metering.models import UsageExport
from metering.rollup_selectors import (
    DayStack,
    usage_by_day,
    usage_rollup_as_of,
    usage_table,
    usage_totals,
)
from portal.base import PortalView

DEFAULT_DAYS = 30
STACKS = {"action": "Action", "model_class": "Model class"}
NO_MODEL_CLASS = "standard"
NO_WORKFLOW = "(none)"


class UsageRange(forms.Form):
    """UTC days, both ends included; at most MAX_DAYS of them."""

    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    stack = forms.ChoiceField(
        required=False, label="Stack by", choices=list(STACKS.items()), initial="action"
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        until = data.get("until") or timezone.now().date()
        # The default range ends on `until`; near the calendar's first day it starts there.
        back = timedelta(days=DEFAULT_DAYS - 1)
        since = data.get("since") or max(until, date.min + back) - back
        if until < since:
            self.add_error("until", "The last day comes on or after the first.")
        elif (until - since).days + 1 > MAX_DAYS:
            self.add_error("until", f"A range covers {MAX_DAYS} days at most.")
        data.update(since=since, until=until, stack=data.get("stack") or "action")
        return data


@dataclass(frozen=True)
class Series:
    label: str
    values: list[Decimal]  # one per day of the range


def chart_series(rows: list[DayStack], days: list[date], stack: str) -> list[Series]:
    """One series per action (or model class), a value per day, biggest total first."""
    index = {day: i for i, day in enumerate(days)}
    by_key: dict[str, list[Decimal]] = {}
    for row in rows:
        by_key.setdefault(row.key, [Decimal("0.0000")] * len(days))[index[row.day]] += row.credits
    ordered = sorted(by_key.items(), key=lambda kv: (-sum(kv[1]), kv[0]))
    return [Series(_label(key, stack), values) for key, values in ordered]


def _label(key: str, stack: str) -> str:
    return key or (NO_MODEL_CLASS if stack == "model_class" else NO_WORKFLOW)


class UsagePage(PortalView):
    template_name = "portal/usage.html"
    section = "usage"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = UsageRange(request.GET)
        if not form.is_valid():
            return self.page({"form": form, "invalid": True}, status=422)
        data = form.cleaned_data
        return self.page(self._context(form, data["since"], data["until"], data["stack"]))

    def _context(self, form: UsageRange, since: date, until: date, stack: str) -> dict[str, Any]:
        days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
        series = chart_series(
            usage_by_day(tenant=self.tenant, since=since, until=until, stack=stack), days, stack
        )
        day_totals = [
            sum((s.values[i] for s in series), Decimal("0.0000")) for i in range(len(days))
        ]
        display = credit_display_get(tenant_id=self.tenant.pk)
        chart = {
            "labels": [d.isoformat() for d in days],
            "series": [
                {"label": s.label, "values": [str(display.figure(v)) for v in s.values]}
                for s in series
            ],
            "unit": display.unit,
        }
        return {
            "form": form,
            "since": since,
            "until": until,
            "stack": stack,
            "stack_label": STACKS[stack],
            "chart": chart,
            "series": series,
            "day_rows": [
                (day, [s.values[i] for s in series], day_totals[i])
                for i, day in enumerate(days)
                if day_totals[i]
            ],
            "rows": usage_table(tenant=self.tenant, since=since, until=until),
            "totals": usage_totals(tenant=self.tenant, since=since, until=until),
            "as_of": usage_rollup_as_of(),
            "exports": usage_export_list(tenant=self.tenant),
            "credit_display": display,
        }


class UsageExportCreate(PortalView):
    """POST: a new export of the range; then its page (ready at once when small)."""

    template_name = "portal/usage_export.html"
    section = "usage"

    def post(self, request: HttpRequest) -> HttpResponse:
        form = UsageRange(request.POST)
        if not form.is_valid():
            return self.page({"errors": _named(form.errors.items())}, status=422)
        try:
            export = usage_export_request(
                tenant=self.tenant,
                kind=request.POST.get("kind", ""),
                since=form.cleaned_data["since"],
                until=form.cleaned_data["until"],
                user_id=request.user.pk,
            )
        except InvalidExport as error:
            return self.page({"errors": _named([(error.field, [error.message])])}, status=422)
        return redirect("portal:usage-export", export_id=export.pk)


FIELD_LABELS = {"since": "From", "until": "To", "kind": "Export", "stack": "Stack by"}


def _named(errors: Iterable[tuple[str, Any]]) -> list[str]:
    """Each error as a sentence that names its field: "To: the last day comes ..."."""
    return [f"{FIELD_LABELS.get(name, name)}: {m}" for name, messages in errors for m in messages]


def _export(view: PortalView, export_id: int) -> UsageExport:
    try:
        return usage_export_get(tenant=view.tenant, export_id=export_id)
    except UsageExport.DoesNotExist:
        raise Http404("No such export: it belongs to no one here, or it has expired.") from None


class UsageExportPage(PortalView):
    """The export's state; htmx polls it (the status block alone) until the file is ready."""

    template_name = "portal/usage_export.html"
    section = "usage"

    def get(self, request: HttpRequest, export_id: int) -> HttpResponse:
        context = {"export": _export(self, export_id)}
        if request.headers.get("HX-Request") == "true":
            return render(request, "portal/_usage_export_status.html", context)
        return self.page(context)


class UsageExportDownload(PortalView):
    section = "usage"

    def get(self, request: HttpRequest, export_id: int) -> HttpResponseBase:
        export = _export(self, export_id)
        if export.status != UsageExport.Status.DONE:
            raise Http404("This export is not ready.")
        name = f"usage-{export.kind}-{self.tenant.slug}-{export.since}-{export.until}.csv"
        response = StreamingHttpResponse(
            usage_export_chunks(export=export), content_type="text/csv; charset=utf-8"
        )
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response
