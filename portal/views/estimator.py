"""The usage estimator: monthly counts per action and model class → a credit range, the plan
that fits (or a smaller plan with top-ups when that costs less), priced by billing's
`estimate` (billing/estimates.py), the one path the API's `POST /api/v1/estimates` takes too.

Two pages share the form: the portal's (the member's tenant: its rate card in force and its
billing currency) and a public one at `/pricing/estimate/` for the vendor's pricing page (no
login: the default rate card, the one a new customer starts on, and the vendor's default
currency). Both are GET forms, so an estimate is a link that can be shared; htmx recalculates
in place and the page works the same without JavaScript. Bad input is a 422 page naming each
field (rows past billing's MAX_ROWS, counts that are not whole numbers in range, actions or
model classes not on the card).
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.views import View

from billing.estimates import (
    MAX_MONTHLY_COUNT,
    MAX_ROWS,
    Estimate,
    EstimateRow,
    estimate,
    estimate_currency,
)
from billing.exceptions import EstimateTooLarge
from portal.base import PortalView
from ratecards.exceptions import RateCardNotFound, UnknownAction, UnknownModelClass
from ratecards.models import RateCardVersion
from ratecards.selectors import version_in_force, version_rates
from tenants.models import Tenant

# Blank rows offered under the ones asked for, to add an action or a model class.
SPARE_ROWS = 2
_WHOLE = re.compile(r"[0-9][0-9,_ ]{0,15}")


@dataclass(frozen=True)
class Card:
    """What the form offers: the card's actions and, per action, its model classes."""

    version: RateCardVersion
    actions: list[str]
    model_classes: dict[str, list[str]]  # action -> classes it can be priced on ('' first)

    @property
    def all_model_classes(self) -> list[str]:
        return sorted({c for classes in self.model_classes.values() for c in classes if c})


def card_get(*, tenant: Tenant | None, at: datetime) -> Card:
    version = version_in_force(tenant=tenant, at=at)
    rates, multipliers = version_rates(version=version)
    classes: dict[str, set[str]] = {}
    for rate in rates:
        found = classes.setdefault(rate.action, set())
        found.add(rate.model_class)
        if rate.model_class == "":
            found.update(multipliers)  # a base rate is priced on any multiplied class
    return Card(
        version=version,
        actions=sorted(classes),
        model_classes={a: sorted(c, key=lambda m: (m != "", m)) for a, c in classes.items()},
    )


@dataclass
class FormRow:
    number: int  # 1-based, as the page and its errors name it
    action: str = ""
    model_class: str = ""
    count: str = ""
    invalid: set[str] = field(default_factory=set)  # its fields that have an error


@dataclass
class EstimateForm:
    rows: list[FormRow]
    errors: dict[str, str] = field(default_factory=dict)  # field id -> sentence
    asked: list[EstimateRow] = field(default_factory=list)

    @property
    def is_blank(self) -> bool:
        return not self.errors and not self.asked


def _clip(value: str) -> str:
    return value if len(value) <= 24 else value[:21] + "..."


def estimate_form_parse(query: QueryDict, card: Card) -> EstimateForm:
    """The rows a query asks for, each checked against the card; errors keyed by field id."""
    actions, classes, counts = (query.getlist(name) for name in ("action", "model_class", "count"))
    size = max(len(actions), len(classes), len(counts))
    if size == 0:
        return EstimateForm(rows=[FormRow(n + 1, action=a) for n, a in enumerate(card.actions)])
    if size > MAX_ROWS:
        return EstimateForm(
            rows=[],
            errors={
                "rows": f"Rows: an estimate takes {MAX_ROWS} rows at most; this one has {size}."
            },
        )

    def at(values: list[str], i: int) -> str:
        return values[i].strip() if i < len(values) else ""

    form = EstimateForm(
        rows=[FormRow(i + 1, at(actions, i), at(classes, i), at(counts, i)) for i in range(size)]
    )
    for row in form.rows:
        _check_row(row, card, form)
    return form


def _check_row(row: FormRow, card: Card, form: EstimateForm) -> None:
    _check_fields(row, card, form)
    row.invalid = {
        name for name in ("action", "model_class", "count") if f"{name}-{row.number}" in form.errors
    }


def _check_fields(row: FormRow, card: Card, form: EstimateForm) -> None:
    n = row.number
    if not row.count:
        return
    digits = re.sub(r"[,_ ]", "", row.count) if _WHOLE.fullmatch(row.count) else ""
    if not digits or Decimal(digits) > MAX_MONTHLY_COUNT:
        form.errors[f"count-{n}"] = (
            f"Row {n}, monthly count: enter a whole number from 0 to "
            f"{MAX_MONTHLY_COUNT:,} (not “{_clip(row.count)}”)."
        )
        return
    if not row.action:
        form.errors[f"action-{n}"] = f"Row {n}, action: choose the action this count is for."
        return
    if row.action not in card.model_classes:
        form.errors[f"action-{n}"] = (
            f"Row {n}, action: “{_clip(row.action)}” is not on this rate card."
        )
        return
    if row.model_class not in card.model_classes[row.action]:
        form.errors[f"model_class-{n}"] = (
            f"Row {n}, model class: “{row.action}” has no price on "
            f"“{_clip(row.model_class)}” on this rate card."
        )
        return
    count = Decimal(digits)
    if count > 0:
        mix = {row.model_class: Decimal(1)} if row.model_class else {}
        form.asked.append(EstimateRow(action=row.action, monthly_count=count, model_mix=mix))


def estimate_page_context(
    request: HttpRequest, *, tenant: Tenant | None
) -> tuple[dict[str, Any], int]:
    """The form, the estimate or the errors, and the status (422 when a field is wrong)."""
    now = timezone.now()
    try:
        card = card_get(tenant=tenant, at=now)
    except RateCardNotFound:
        return {"no_card": True}, 200
    form = estimate_form_parse(request.GET, card)
    result: Estimate | None = None
    if form.asked and not form.errors:
        try:
            result = estimate(tenant=tenant, rows=form.asked, at=now)
        except EstimateTooLarge as error:
            form.errors["rows"] = f"Monthly counts: {error.message}"
        except (UnknownAction, UnknownModelClass) as error:  # the card changed in between
            form.errors["rows"] = error.message
    rows = list(form.rows) or [FormRow(n + 1, action=a) for n, a in enumerate(card.actions)]
    while rows and not (rows[-1].action or rows[-1].count):
        rows.pop()  # only trailing blanks go, so a row keeps the number its error names
    rows += [FormRow(len(rows) + i + 1) for i in range(min(SPARE_ROWS, MAX_ROWS - len(rows)))]
    context = {
        "card": card,
        "form": form,
        "rows": rows,
        "result": result,
        "errors": sorted(form.errors.items(), key=lambda kv: _error_order(kv[0])),
        "currency": estimate_currency(tenant=tenant),
        "max_rows": MAX_ROWS,
        "max_count": MAX_MONTHLY_COUNT,
    }
    return context, 422 if form.errors else 200


def _error_order(field_id: str) -> tuple[int, str]:
    number = field_id.rsplit("-", 1)[-1]
    return (int(number) if number.isdigit() else 0, field_id)


def _partial(request: HttpRequest) -> bool:
    """An htmx recalculation: only the result is swapped in."""
    return request.headers.get("HX-Request") == "true"


class EstimatorPage(PortalView):
    template_name = "portal/estimator.html"
    section = "estimator"

    def get(self, request: HttpRequest) -> HttpResponse:
        context, status = estimate_page_context(request, tenant=self.tenant)
        if _partial(request):
            return render(request, "portal/_estimate.html", context, status=status)
        return self.page(context, status=status)


class PublicEstimatorPage(View):
    """No login: the default rate card and the vendor's default currency."""

    def get(self, request: HttpRequest) -> HttpResponse:
        context, status = estimate_page_context(request, tenant=None)
        template = "portal/_estimate.html" if _partial(request) else "portal/estimator_public.html"
        return render(request, template, {**context, "public": True}, status=status)
