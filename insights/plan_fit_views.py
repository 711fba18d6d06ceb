"""The console's plan-fit page (staff only): insights/plan_fit.py, read once."""

from typing import Any

from django.utils import timezone

from insights.base import StaffPage
from insights.plan_fit import NEEDED, PERIODS, plan_fit_list
from metering.rollup_selectors import usage_refusals_since


class PlanFitPage(StaffPage):
    template_name = "insights/plan_fit.html"
    nav_name = "insights:plan-fit"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        fits = plan_fit_list(now=timezone.now())
        return super().get_context_data(
            up=[f for f in fits if f.suggestion == "up"],
            down=[f for f in fits if f.suggestion == "down"],
            fitting=[f for f in fits if not f.suggestion],
            refusals_since=usage_refusals_since(),
            periods=PERIODS,
            needed=NEEDED,
            **kwargs,
        )
