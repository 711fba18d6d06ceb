"""The console's customer page (staff only, insights/base.py): what insights/customer.py reads,
and the grant and adjust forms, shown only to staff who hold their permission; a POST without
it is refused (403) by the staff action itself."""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse

from insights.base import StaffPage, query_int
from insights.customer import customer_get
from insights.forms import AdjustForm, GrantForm, new_token
from insights.selectors import rollup_as_of
from insights.staff_actions import (
    ADJUST_PERMISSION,
    GRANT_PERMISSION,
    staff_credits_adjust,
    staff_credits_grant,
)
from tenants.exceptions import CreditlineError
from tenants.models import Tenant


def _user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied
    return request.user


class CustomerPage(StaffPage):
    template_name = "insights/customer.html"
    nav_name = "insights:customers"

    def tenant(self) -> Tenant:
        return get_object_or_404(Tenant, pk=self.kwargs["tenant_id"])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        start, end = self.date_range()
        after = query_int(self.request, "after")
        user = _user(self.request)
        can_grant = user.has_perm(GRANT_PERMISSION)
        can_adjust = user.has_perm(ADJUST_PERMISSION)
        grant = kwargs.pop("grant_form", None)
        adjust = kwargs.pop("adjust_form", None)
        return super().get_context_data(
            start=start,
            end=end,
            view=customer_get(tenant=self.tenant(), start=start, end=end, after=after),
            as_of=rollup_as_of(),
            grant_form=(
                grant
                or GrantForm(initial={"token": new_token(), "policy": "permanent"}, prefix="grant")
            )
            if can_grant
            else None,
            adjust_form=(adjust or AdjustForm(initial={"token": new_token()}, prefix="adjust"))
            if can_adjust
            else None,
            **kwargs,
        )

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        tenant = self.tenant()
        user = _user(request)
        action = request.POST.get("action")
        form: forms.Form
        if action == "grant":
            form = GrantForm(request.POST, prefix="grant")
            if not user.has_perm(GRANT_PERMISSION):
                raise PermissionDenied(
                    "Granting credits needs the permission ledger.grant_credits."
                )
            if form.is_valid():
                return self._grant(request, user, tenant, form)
            return self._invalid(grant_form=form)
        if action == "adjust":
            form = AdjustForm(request.POST, prefix="adjust")
            if not user.has_perm(ADJUST_PERMISSION):
                raise PermissionDenied(
                    "Adjusting credits needs the permission ledger.adjust_credits."
                )
            if form.is_valid():
                return self._adjust(request, user, tenant, form)
            return self._invalid(adjust_form=form)
        raise PermissionDenied("Unknown action.")

    def _invalid(self, **forms_: forms.Form) -> HttpResponse:
        return self.render_to_response(self.get_context_data(**forms_), status=422)

    def _grant(
        self, request: HttpRequest, user: User, tenant: Tenant, form: forms.Form
    ) -> HttpResponse:
        d = form.cleaned_data
        try:
            result = staff_credits_grant(
                user=user,
                tenant=tenant,
                credits=d["credits"],
                policy=d["policy"],
                reason=d["reason"],
                token=d["token"],
                expires_at=d["expires_at"],
            )
        except CreditlineError as error:
            form.add_error(None, error.message)
            return self._invalid(grant_form=form)
        messages.success(
            request,
            f"Granted {result.bucket.granted} credits; available {result.available_after}.",
        )
        return self._back(tenant)

    def _adjust(
        self, request: HttpRequest, user: User, tenant: Tenant, form: forms.Form
    ) -> HttpResponse:
        d = form.cleaned_data
        try:
            staff_credits_adjust(
                user=user, tenant=tenant, credits=d["credits"], reason=d["reason"], token=d["token"]
            )
        except CreditlineError as error:
            form.add_error(None, error.message)
            return self._invalid(adjust_form=form)
        messages.success(request, f"Adjusted by {d['credits']} credits.")
        return self._back(tenant)

    def _back(self, tenant: Tenant) -> HttpResponse:
        return HttpResponseRedirect(reverse("insights:customer", args=[tenant.pk]))
