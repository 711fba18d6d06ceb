"""The one base of every console page: staff only. Anonymous → the login page (and back);
a signed-in user who is not staff (a tenant's member) → 403. Subclasses cannot skip it:
the check is in dispatch, before any handler runs."""

from datetime import date, timedelta
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.views.generic import TemplateView

NAV = (
    ("insights:customers", "Customers"),
    ("insights:margin", "Margin"),
    ("insights:breakage", "Breakage"),
    ("insights:plan-fit", "Plan fit"),
    ("insights:contracts", "Contracts"),
    ("insights:weights", "Suggested weights"),
    ("insights:ratecards", "Rate cards"),
    ("insights:reconciliation", "Reconciliation"),
    ("insights:exchange-rates", "Exchange rates"),
)
DEFAULT_DAYS = 30
MAX_DAYS = 3660
# The days a range may name: the pages step a range's bounds by a day, a month and its own
# length (the trend's range before), which past the calendar's ends would raise.
EARLIEST = date(1970, 1, 1)
LATEST = date(9000, 12, 31)


class StaffPage(TemplateView):
    nav_name = ""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not request.user.is_staff:
            raise PermissionDenied("The vendor console is for the vendor's staff.")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["nav"] = [(name, label, name == self.nav_name) for name, label in NAV]
        return context

    def date_range(self) -> tuple[date, date]:
        """?start= and ?end= (ISO dates, UTC days, inclusive); the last 30 days by default."""
        today = timezone.now().date()
        end = _date(self.request.GET.get("end")) or today
        start = _date(self.request.GET.get("start")) or end - timedelta(days=DEFAULT_DAYS - 1)
        if start > end:
            start, end = end, start
        return max(start, end - timedelta(days=MAX_DAYS)), end


def _date(value: str | None) -> date | None:
    """An ISO date between EARLIEST and LATEST; anything else is None (the default)."""
    try:
        day = parse_date(value or "")
    except ValueError:
        return None
    return day if day is not None and EARLIEST <= day <= LATEST else None


def query_int(request: HttpRequest, name: str) -> int | None:
    """?name= as a non-negative integer (a page number, a row id), else None. ASCII digits
    only: str.isdigit() is true of '²', which int() refuses."""
    raw = request.GET.get(name, "")
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
