"""Statement: every ledger entry (kind, amount, bucket, balance after, source), filtered by
date range and kind, a page at a time; and its CSV export.

Balance after is the entry's own stored `balance_after` (written in the entry's transaction),
so a page is two queries whatever the size of the ledger (ledger/statement_selectors.py).
"""

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.defaultfilters import floatformat

from billing.display import CreditDisplay, credit_display_get
from ledger.models import EntryKind, LedgerEntry
from ledger.statement_selectors import (
    STATEMENT_EXPORT_MAX,
    statement_export_rows,
    statement_export_too_long,
    statement_page,
)
from metering.selectors import UsageLine, usage_lines_by_key
from portal.base import PortalView
from portal.csv_cells import csv_safe
from portal.paging import PAGE_SIZE, after_param
from tenants.models import Tenant

USAGE = "usage_event"
TIMES = "\u00d7"  # the multiplication sign
# Who moved the credits, in the customer's words (LedgerTransaction.source_type); a type not
# listed shows as it is stored.
SOURCE_LABELS = {
    USAGE: "Usage event",
    "billing.topup": "Top-up",
    "billing.subscription": "Subscription",
    "billing.contract": "Contract",
    "billing.contractinvoice": "Contract invoice",
    "admin": "Adjustment by support",
    "cli": "Grant by support",
}
CSV_HEADER = [
    "created_at",
    "entry_id",
    "transaction_id",
    "kind",
    "amount",
    "bucket_id",
    "bucket_source",
    "bucket_policy",
    "balance_after",
    "source_type",
    "source_id",
    "memo",
]


class StatementFilter(forms.Form):
    """Dates are UTC days, both ends included."""

    since = forms.DateField(required=False, label="From", widget=forms.DateInput({"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput({"type": "date"}))
    kind = forms.ChoiceField(
        required=False, label="Kind", choices=[("", "All kinds"), *EntryKind.choices]
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end of the range is before its start.")
        return data

    def query(self) -> dict[str, Any]:
        """The selector's arguments: kinds and a half-open [since, until) range in UTC."""
        data = self.cleaned_data if self.is_valid() else {}
        since, until, kind = data.get("since"), data.get("until"), data.get("kind")
        return {
            "kinds": [kind] if kind else None,
            "since": datetime.combine(since, time.min, UTC) if since else None,
            # The calendar's last day has no day after it: the range is open-ended then.
            "until": datetime.combine(until + timedelta(days=1), time.min, UTC)
            if until and until < date.max
            else None,
        }


def source_label(entry: LedgerEntry) -> str:
    tx = entry.transaction
    return SOURCE_LABELS.get(tx.source_type, tx.source_type)


def usage_label(line: UsageLine, display: CreditDisplay) -> str:
    """What the customer was charged for, at the price of one: "12 x resolution at 0.99 USD"
    (money shown) or "12 x resolution at 50 credits", with a multiplication sign."""
    what = f"{line.action} ({line.model_class})" if line.model_class else line.action
    quantity = floatformat(line.quantity, "-4")
    each = display.show_price(line.credits / line.quantity)
    return f"{quantity} {TIMES} {what} at {each}{'' if display.money else ' credits'}"


def statement_rows(
    entries: list[LedgerEntry], *, tenant: Tenant, display: CreditDisplay
) -> list[tuple[LedgerEntry, str]]:
    """Each entry with its source in words; a usage debit (or its refund) names its event. One
    query for the page's events."""
    keys = [e.transaction.source_id for e in entries if e.transaction.source_type == USAGE]
    lines = usage_lines_by_key(tenant=tenant, keys=keys)
    rows = []
    for entry in entries:
        label = source_label(entry)
        line = (
            lines.get(entry.transaction.source_id)
            if entry.transaction.source_type == USAGE
            else None
        )
        rows.append((entry, f"{label}: {usage_label(line, display)}" if line else label))
    return rows


class StatementPage(PortalView):
    template_name = "portal/statement.html"
    section = "statement"

    def get(self, request: HttpRequest) -> HttpResponse:
        form = StatementFilter(request.GET or None)
        display = credit_display_get(tenant_id=self.tenant.pk)
        if form.is_bound and not form.is_valid():
            # The filter's errors, and no entries: not every entry as if nothing was asked.
            return self.page(
                {"form": form, "page": None, "rows": [], "credit_display": display}, status=400
            )
        page = statement_page(
            tenant=self.tenant, **form.query(), after=after_param(request), limit=PAGE_SIZE
        )
        rows = statement_rows(list(page.rows), tenant=self.tenant, display=display)
        return self.page({"form": form, "page": page, "rows": rows, "credit_display": display})


class StatementCsv(PortalView):
    template_name = "portal/statement.html"
    section = "statement"

    def get(self, request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
        form = StatementFilter(request.GET or None)
        if form.is_bound and not form.is_valid():
            return self.page({"form": form, "page": None, "rows": []}, status=400)
        query = form.query()
        if statement_export_too_long(tenant=self.tenant, **query):
            return self.page(
                {
                    "form": form,
                    "page": None,
                    "rows": [],
                    "export_error": f"This range holds more than {STATEMENT_EXPORT_MAX:,} "
                    "entries: choose a shorter one to export.",
                },
                status=400,
            )
        rows = statement_export_rows(tenant=self.tenant, **query)
        response = StreamingHttpResponse(_csv_lines(rows), content_type="text/csv")
        response["Content-Disposition"] = f'attachment; filename="statement-{self.tenant.slug}.csv"'
        return response


class _Line:
    """csv.writer's file: hands back what it was given to write."""

    def write(self, value: str) -> str:
        return value


def _csv_lines(entries: Iterator[LedgerEntry]) -> Iterator[str]:
    writer = csv.writer(_Line())
    yield writer.writerow(CSV_HEADER)
    for entry in entries:
        bucket = entry.bucket
        tx = entry.transaction
        yield writer.writerow(
            [
                entry.created_at.isoformat(),
                entry.pk,
                tx.pk,
                entry.kind,
                entry.amount,
                bucket.pk if bucket else "",
                bucket.source if bucket else "",
                bucket.policy if bucket else "",
                entry.balance_after,
                csv_safe(tx.source_type),
                csv_safe(tx.source_id),
                csv_safe(tx.memo),
            ]
        )
