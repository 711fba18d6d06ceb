"""The console's plan-fit page (staff only): insights/plan_fit.py, read once. Each list (move
up, move down) is shown 50 customers a page (`?up=`, `?down=`), by name: the sums are one
statement whatever the number of customers, and a page renders a bounded number of rows."""

from typing import Any

from django.core.paginator import Page, Paginator
from django.utils import timezone

from insights.base import StaffPage
from insights.plan_fit import NEEDED, PERIODS, PlanFit, plan_fit_list
from metering.rollup_selectors import usage_refusals_since

PER_PAGE = 50


class PlanFitPage(StaffPage):
    template_name = "insights/plan_fit.html"
    nav_name = "insights:plan-fit"

    def _page(self, fits: list[PlanFit], name: str) -> Page:
        return Paginator(fits, PER_PAGE).get_page(self.request.GET.get(name))

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        fits = plan_fit_list(now=timezone.now())
        return super().get_context_data(
            up=self._page([f for f in fits if f.suggestion == "up"], "up"),
            down=self._page([f for f in fits if f.suggestion == "down"], "down"),
            fitting=sum(not f.suggestion for f in fits),
            refusals_since=usage_refusals_since(),
            periods=PERIODS,
            needed=NEEDED,
            **kwargs,
        )
