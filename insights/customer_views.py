"""The console's customer page (staff only, insights/base.py): what insights/customer.py reads,
and the grant, adjust and refund forms, shown only to staff who hold their permission; a POST
without it is refused (403) by the staff action itself. A refund starts with a lookup (GET
`?event=<idempotency key>`), which shows what the event charged and what is left to refund."""

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
from insights.forms import AdjustForm, GrantForm, RefundForm, RefundLookupForm, new_token
from insights.selectors import rollup_as_of
from insights.staff_actions import (
    ADJUST_PERMISSION,
    GRANT_PERMISSION,
    REFUND_PERMISSION,
    staff_credits_adjust,
    staff_credits_grant,
    staff_usage_refund,
)
from metering.services import Refundable, usage_event_refundable_get
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
        lookup = kwargs.pop("refund_lookup", None)
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
            refund_lookup=(lookup or RefundLookupForm())
            if user.has_perm(REFUND_PERMISSION)
            else None,
            **kwargs,
        )

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _user(request).has_perm(REFUND_PERMISSION) or "event" not in request.GET:
            return super().get(request, *args, **kwargs)
        lookup = RefundLookupForm(request.GET)
        if not lookup.is_valid():
            return self._refund_page(lookup, None, status=422)
        return self._refund_page(lookup, None, key=lookup.cleaned_data["event"])

    def _refund_page(
        self,
        lookup: RefundLookupForm,
        form: RefundForm | None,
        *,
        key: str | None = None,
        status: int = 200,
    ) -> HttpResponse:
        """The page with the refund section: the lookup, and for a key found, the event and
        its refund form (a new one with all that is left, unless `form` is given)."""
        found: Refundable | None = None
        error = ""
        if key is not None:
            try:
                found = usage_event_refundable_get(tenant=self.tenant(), idempotency_key=key)
            except CreditlineError as refused:
                error = refused.message
                status = max(status, refused.status_code)
        if found is not None and form is None:
            form = RefundForm(
                initial={"event": key, "credits": found.left, "token": new_token()},
                prefix="refund",
            )
        if form is not None and form.errors:
            error = ""  # the form says it
        context = self.get_context_data(
            refund_lookup=lookup, refund=found, refund_form=form, refund_error=error
        )
        return self.render_to_response(context, status=status)

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
        if action == "refund":
            refund = RefundForm(request.POST, prefix="refund")
            if not user.has_perm(REFUND_PERMISSION):
                raise PermissionDenied(
                    "Refunding a usage event needs the permission ledger.adjust_credits."
                )
            if refund.is_valid():
                return self._refund(request, user, tenant, refund)
            return self._refund_invalid(refund)
        raise PermissionDenied("Unknown action.")

    def _refund(
        self, request: HttpRequest, user: User, tenant: Tenant, form: RefundForm
    ) -> HttpResponse:
        d = form.cleaned_data
        try:
            tx = staff_usage_refund(
                user=user,
                tenant=tenant,
                idempotency_key=d["event"],
                credits=d["credits"],
                reason=d["reason"],
                token=d["token"],
            )
        except CreditlineError as error:
            form.add_error(None, error.message)
            return self._refund_invalid(form)
        messages.success(request, f"Refunded {tx.amount:.4f} credits of usage event {d['event']}.")
        return self._back(tenant)

    def _refund_invalid(self, form: RefundForm) -> HttpResponse:
        """422, with the event looked up again (the form's own key, if it is a valid one)."""
        key = form.cleaned_data.get("event")
        lookup = RefundLookupForm(initial={"event": key or ""})
        return self._refund_page(lookup, form, key=key, status=422)

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
