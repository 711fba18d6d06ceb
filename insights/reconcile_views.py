"""The console's reconciliation page (staff only): the last stored run (insights/reconcile.py),
when it ran and how long it took, the runs before it, and for a staff user with
`insights.add_reconciliationrun` a button that asks the task for a run now (POST)."""

from typing import Any

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from insights.base import StaffPage
from insights.models import ReconciliationRun
from insights.reconcile import RUN_PERMISSION, currency_balances_from_json, reconciliation_request

RECENT = 10
FINISHED = (ReconciliationRun.Status.DONE, ReconciliationRun.Status.FAILED)


class ReconciliationPage(StaffPage):
    template_name = "insights/reconciliation.html"
    nav_name = "insights:reconciliation"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        # Two statements by the primary key, however many runs and differences: the last
        # finished run whole, the recent ones without their figures.
        last = (
            ReconciliationRun.objects.select_related("requested_by")
            .filter(status__in=FINISHED)
            .first()
        )
        runs = list(
            ReconciliationRun.objects.select_related("requested_by").defer(
                "currencies", "problems"
            )[:RECENT]
        )
        waiting = [r for r in runs if r.status not in FINISHED and (last is None or r.pk > last.pk)]
        return super().get_context_data(
            run=last,
            currencies=currency_balances_from_json(last.currencies) if last else [],
            waiting=waiting,
            runs=runs,
            can_run=self.request.user.has_perm(RUN_PERMISSION),
            **kwargs,
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not isinstance(request.user, User):
            raise PermissionDenied
        run = reconciliation_request(user=request.user)
        messages.success(request, f"Reconciliation run {run.pk} asked for: a worker runs it.")
        return HttpResponseRedirect(reverse("insights:reconciliation"))
