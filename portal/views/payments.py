"""Payment methods and auto top-up. The saved card is shown as brand, last 4 and expiry (never
the gateway's id), added or replaced on the gateway's own page, removed here; auto top-up's
settings, this month's spending against its cap and its last attempts. Both call billing's
services, the ones `/api/v1/payment-method` and `/api/v1/auto-top-up` call."""

from decimal import Decimal
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from billing import links
from billing.exceptions import (
    GatewayError,
    NoPaymentMethod,
    PaymentMethodInUse,
    PaymentMethodNotFound,
)
from billing.models import AutoTopUpPolicy
from billing.money import money_from_minor
from billing.selectors import (
    auto_topup_month_spent,
    auto_topup_policy_get,
    billing_currency_get,
    billing_customer_get,
    spending_cap_minor,
    topup_list,
)
from billing.services import (
    auto_topup_policy_update,
    payment_method_remove,
    payment_method_setup_start,
)
from portal.access import Capability
from portal.base import PortalView
from portal.forms import AutoTopUpForm

ATTEMPTS_SHOWN = 5


class PaymentMethodsPage(PortalView):
    """GET shows the card; POST goes to the gateway's page to add or replace it."""

    template_name = "portal/payment_methods.html"
    section = "payment-methods"
    requires = {"POST": Capability.BUY}

    def get(self, request: HttpRequest) -> HttpResponse:
        policy = auto_topup_policy_get(tenant=self.tenant)
        return self.page(
            {
                "customer": billing_customer_get(tenant_id=self.tenant.pk),
                "auto_topup_on": policy is not None and policy.enabled,
                "card_saved": request.GET.get("card") == "saved",
            }
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        back = request.build_absolute_uri(links.PAYMENT_METHODS)
        try:
            session = payment_method_setup_start(
                tenant=self.tenant, success_url=f"{back}?card=saved", cancel_url=back
            )
        except GatewayError as exc:
            messages.error(request, exc.message)
            return redirect("portal:payment-methods")
        return redirect(session.url)


class PaymentMethodRemove(PortalView):
    section = "payment-methods"
    requires = {"POST": Capability.BUY}

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            payment_method_remove(tenant=self.tenant)
        except (PaymentMethodNotFound, PaymentMethodInUse, GatewayError) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "The card was removed.")
        return redirect("portal:payment-methods")


def _plain(value: Decimal) -> Decimal:
    """Without trailing zeros, as typed: 40.0000 → 40, 12.5000 → 12.5 (normalize() alone
    writes 40 as 4E+1)."""
    return value.quantize(Decimal(1)) if value == value.to_integral_value() else value.normalize()


def _initial(policy: AutoTopUpPolicy | None, currency: str) -> dict[str, Any]:
    if policy is None:
        return {"threshold": Decimal(100), "monthly_cap": Decimal(100), "enabled": False}
    return {
        "enabled": policy.enabled,
        "threshold": _plain(policy.threshold),
        "pack": policy.pack,
        "monthly_cap": money_from_minor(policy.monthly_cap_minor, currency),
    }


class AutoTopUpPage(PortalView):
    template_name = "portal/auto_topup.html"
    section = "auto-top-up"
    requires = {"POST": Capability.BUY}

    def get(self, request: HttpRequest) -> HttpResponse:
        policy = auto_topup_policy_get(tenant=self.tenant)
        currency = billing_currency_get(tenant=self.tenant)
        return self._page(
            AutoTopUpForm(initial=_initial(policy, currency), currency=currency), policy
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        policy = auto_topup_policy_get(tenant=self.tenant)
        form = AutoTopUpForm(request.POST, currency=billing_currency_get(tenant=self.tenant))
        if form.is_valid():
            values = form.cleaned_data
            try:
                auto_topup_policy_update(
                    tenant=self.tenant,
                    enabled=values["enabled"],
                    threshold=values["threshold"],
                    pack=values["pack"],
                    monthly_cap_minor=values["monthly_cap_minor"],
                )
            except NoPaymentMethod as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, "Auto top-up saved.")
                return redirect("portal:auto-top-up")
        return self._page(form, policy, status=200 if form.is_valid() else 422)

    def _page(
        self, form: AutoTopUpForm, policy: AutoTopUpPolicy | None, *, status: int = 200
    ) -> HttpResponse:
        now = timezone.now()
        return self.page(
            {
                "form": form,
                "currency": form.currency,
                "policy": policy,
                "customer": billing_customer_get(tenant_id=self.tenant.pk),
                "spent_minor": auto_topup_month_spent(tenant_id=self.tenant.pk, at=now),
                "cap_minor": spending_cap_minor(policy=policy, at=now) if policy else None,
                "attempts": topup_list(tenant=self.tenant)
                .filter(auto=True)
                .order_by("-created_at", "-pk")[:ATTEMPTS_SHOWN],
            },
            status=status,
        )
