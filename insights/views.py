"""The vendor console's pages (staff only, insights/base.py): thin, each reads one selector."""

import csv
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404

from billing.money import money_from_minor
from insights.base import StaffPage, query_int
from insights.customers import SORTS, customer_list
from insights.selectors import (
    MARGIN_BY,
    MarginBy,
    MarginRow,
    breakage_list,
    cost_per_unit_list,
    margin_list,
    rollup_as_of,
)
from insights.weights import current_weights, multiplier_suggest, weights_suggest
from ratecards.models import RateCardVersion
from tenants.models import Tenant


def _csv_safe(value: object) -> str:
    # A cell a spreadsheet would run as a formula is shown as text (OWASP "CSV Injection").
    text = "" if value is None else str(value)
    return (
        f"'{text}"
        if text.startswith(("=", "+", "-", "@", "\t", "\r")) and not _is_number(text)
        else text
    )


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True


MAX_PAGE = 1_000_000
MAX_NUMBER = Decimal(10) ** 15

COLUMNS = (
    ("name", "Customer"),
    ("balance", "Balance"),
    ("credits", "Credits used"),
    ("revenue", "Revenue"),
    ("cogs", "COGS"),
    ("margin", "Gross margin"),
    ("breakage", "Breakage"),
)


class CustomersPage(StaffPage):
    template_name = "insights/customers.html"
    nav_name = "insights:customers"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        start, end = self.date_range()
        sort = self.request.GET.get("sort", "name")
        sort = sort if sort in SORTS else "name"
        descending = self.request.GET.get("dir") == "desc"
        negative = self.request.GET.get("negative") == "1"
        # No name holds a NUL (PostgreSQL compares no text with one: it raises).
        name = self.request.GET.get("q", "").replace("\x00", "").strip()[:100]
        page_number = query_int(self.request, "page")
        page = customer_list(
            start=start,
            end=end,
            sort=sort,
            descending=descending,
            negative_only=negative,
            name=name,
            page=page_number if page_number and page_number < MAX_PAGE else 1,
        )
        return super().get_context_data(
            start=start,
            end=end,
            rows=page.rows,
            page=page,
            sort=sort,
            descending=descending,
            negative=negative,
            q=name,
            columns=COLUMNS,
            as_of=rollup_as_of(),
            **kwargs,
        )


CUSTOMERS_PER_PAGE = 100


def _by_label(by: str) -> str:
    """A grouping as a person reads it: "model_class" is a model class, a tenant a customer."""
    return "customer" if by == "tenant" else by.replace("_", " ")


class MarginPage(StaffPage):
    template_name = "insights/margin.html"
    nav_name = "insights:margin"

    def by(self) -> MarginBy:
        by = self.request.GET.get("by", "action")
        for choice in MARGIN_BY:
            if by == choice:
                return choice
        return "action"

    def tenant(self) -> Tenant | None:
        """?tenant=<id>: one customer's margin (an unknown id: 404)."""
        raw = self.request.GET.get("tenant", "")
        if not raw:
            return None
        tenant_id = query_int(self.request, "tenant")
        if tenant_id is None:
            raise Http404("No such customer.")
        return get_object_or_404(Tenant, pk=tenant_id)

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.GET.get("format") == "csv":
            return self.csv()
        return super().get(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        start, end = self.date_range()
        by = self.by()
        tenant = self.tenant()
        rows = margin_list(start=start, end=end, by=by, tenant=tenant)
        # By customer, a page of them (the CSV has every one): 1,000 rows took longer to render
        # than to read (bench/README).
        page = Paginator(rows, CUSTOMERS_PER_PAGE).get_page(self.request.GET.get("page"))
        days = margin_list(start=start, end=end, by="day", tenant=tenant)
        # The currency's major units, rounded to its minor unit (the table has the exact
        # figures), of one currency pair only (the first day's): two currencies are never drawn
        # as one. COGS in another currency are drawn converted at each day's rate (a day
        # without one is a gap).
        pair = (days[0].currency, days[0].cogs_currency) if days else ("", "")
        shown = [r for r in days if (r.currency, r.cogs_currency) == pair]
        chart: dict[str, Any] = {
            "currency": pair[0],
            "labels": [str(r.key) for r in shown],
            "revenue": [_major(r.revenue_minor, pair[0]) for r in shown],
            "cogs": [_major(r.cogs_in_revenue_currency_minor, pair[0]) for r in shown],
        }
        if pair[0] != pair[1]:
            chart["converted_from"] = pair[1]
        return super().get_context_data(
            start=start,
            end=end,
            by=by,
            by_label=_by_label(by),
            choices=[(choice, _by_label(choice)) for choice in MARGIN_BY],
            rows=page.object_list if by == "tenant" else rows,
            page=page if by == "tenant" and page.paginator.num_pages > 1 else None,
            chart=chart,
            tenant=tenant,
            as_of=rollup_as_of(),
            **kwargs,
        )

    def csv(self) -> HttpResponse:
        start, end = self.date_range()
        by = self.by()
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="margin-{by}-{start}-{end}.csv"'
        writer = csv.writer(response)
        writer.writerow(
            [
                by,
                "name",
                "currency",
                "cogs_currency",
                "events",
                "credits",
                "revenue_minor",
                "cogs_minor",
                "gross_margin_percent",
                "events_cost_unknown",
                "revenue_cost_unknown_minor",
                "cogs_in_revenue_currency_minor",
                "exchange_rates",
            ]
        )
        for r in margin_list(start=start, end=end, by=by, tenant=self.tenant()):
            writer.writerow(
                [
                    _csv_safe(r.key),
                    _csv_safe(r.label),
                    r.currency,
                    r.cogs_currency,
                    r.events,
                    r.credits,
                    r.revenue_minor,
                    r.cogs_minor,
                    "" if r.margin_percent is None else r.margin_percent,
                    r.events_without_cost,
                    r.revenue_without_cost_minor,
                    _blank(r.cogs_in_revenue_currency_minor),
                    _rates(r),
                ]
            )
        return response


def _major(minor: Decimal | None, currency: str) -> str | None:
    """Minor units as the currency's major units, to its minor unit: 1801.4 USD cents → "18.01"."""
    if minor is None:
        return None
    return str(money_from_minor(int(minor.quantize(Decimal(1), ROUND_HALF_UP)), currency))


def _blank(value: object) -> object:
    return "" if value is None else value


def _rates(row: MarginRow) -> str:
    """How a row's COGS came into the revenue's currency (blank: they were in it)."""
    if row.currency == row.cogs_currency:
        return ""
    pair = f"{row.cogs_currency} to {row.currency}"
    if row.fx is None or row.fx.converted_minor is None:
        missing = row.fx.missing_from if row.fx is not None else None
        return f"no exchange rate {pair}" + (f" for {missing}" if missing else "")
    return f"{pair} at the rates of {row.fx.rates_label}"


class BreakagePage(StaffPage):
    template_name = "insights/breakage.html"
    nav_name = "insights:breakage"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        start, end = self.date_range()
        return super().get_context_data(
            start=start,
            end=end,
            rows=breakage_list(start=start, end=end),
            as_of=rollup_as_of(),
            **kwargs,
        )


def _number(value: str) -> Decimal | None:
    """A query value as a number: None unless it is a finite one of at most 15 digits before
    the point (NaN and Infinity compare and divide by raising)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number) < MAX_NUMBER else None


def _decimal(value: str | None, default: str) -> Decimal:
    """A query value as a number; the default when it is none or not one (see _number)."""
    number = _number(value) if value else None
    return Decimal(default) if number is None else number


class WeightsPage(StaffPage):
    template_name = "insights/weights.html"
    nav_name = "insights:weights"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        start, end = self.date_range()
        sent = self.request.GET
        target = _decimal(sent.get("target"), "70") / 100
        price_per_1000 = _decimal(sent.get("price"), "1000")
        step = _decimal(sent.get("step"), "0.01")
        currency = (sent.get("currency") or "USD").upper()[:3]
        # A value that is no number is said so, not silently replaced by the default.
        errors = [
            f"The {name} {sent[name]!r} is not a number (at most 15 digits before the point)."
            for name in ("target", "price", "step")
            if sent.get(name, "").strip() and _number(sent[name]) is None
        ]
        if not (Decimal(0) <= target < 1) or price_per_1000 <= 0 or step <= 0:
            errors.append("The target is a percentage under 100; price and step are positive.")
        observed = [
            o for o in cost_per_unit_list(start=start, end=end) if o.cogs_currency == currency
        ]
        version = (
            RateCardVersion.objects.filter(
                rate_card__is_default=True, status=RateCardVersion.Status.PUBLISHED
            )
            .order_by("-number")
            .first()
        )
        current = (
            current_weights(version=version, keys=[(o.action, o.model_class) for o in observed])
            if version is not None
            else {}
        )
        suggested = (
            []
            if errors
            else weights_suggest(
                observed=observed,
                current=current,
                credit_price_minor=price_per_1000 / 1000,
                target_margin=target,
                step=step,
            )
        )
        classes = sorted({w.model_class for w in suggested if w.model_class})
        return super().get_context_data(
            start=start,
            end=end,
            target=target * 100,
            price=price_per_1000,
            step=step,
            currency=currency,
            version=version,
            suggested=suggested,
            errors=errors,
            multipliers=[
                (c, multiplier_suggest(weights=suggested, model_class=c)) for c in classes
            ],
            **kwargs,
        )
