"""Plan: the subscription (plan, seats, status, what changes at the period end and when), its
invoices and a contract's, and subscribing, changing plan or seats and cancelling, through the
services `/api/v1/subscription` calls."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from billing.exceptions import (
    GatewayError,
    InvalidSubscriptionInput,
    SubscriptionExists,
    SubscriptionNotActive,
    SubscriptionNotFound,
)
from billing.models import Plan, SubscriptionInvoice
from billing.selectors import (
    billing_currency_get,
    contract_invoice_list,
    plan_list,
    plan_offer_list,
    subscription_current_get,
)
from billing.services.subscriptions import (
    subscription_cancel,
    subscription_change,
    subscription_create,
)
from portal.access import Capability
from portal.base import PortalView

INVOICES_SHOWN = 12
REFUSED = (
    GatewayError,
    InvalidSubscriptionInput,
    SubscriptionExists,
    SubscriptionNotActive,
    SubscriptionNotFound,
)


class PlanPage(PortalView):
    template_name = "portal/plan.html"
    section = "plan"

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            sub = subscription_current_get(tenant=self.tenant)
        except SubscriptionNotFound:
            sub = None
        invoices = (
            SubscriptionInvoice.objects.filter(tenant=self.tenant, subscription=sub)
            .exclude(status=SubscriptionInvoice.Status.REQUESTED)
            .select_related("plan")
            .order_by("-created_at", "-pk")[:INVOICES_SHOWN]
            if sub is not None
            else []
        )
        return self.page(
            {
                "subscription": sub,
                "offers": plan_offer_list(currency=billing_currency_get(tenant=self.tenant)),
                "invoices": invoices,
                "contract_invoices": contract_invoice_list(tenant=self.tenant).order_by(
                    "-created_at", "-pk"
                )[:INVOICES_SHOWN],
            }
        )


MAX_SEATS = 100_000  # as the API's input


def _seats(request: HttpRequest) -> int:
    raw = request.POST.get("seats", "1")
    # ASCII digits only: str.isdigit() is true of '²', which int() refuses.
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidSubscriptionInput("seats", "Seats are a whole number, at least one.")
    if int(raw) < 1:
        raise InvalidSubscriptionInput("seats", "A subscription has at least one seat.")
    if len(raw) > 6 or int(raw) > MAX_SEATS:
        raise InvalidSubscriptionInput("seats", f"A subscription has at most {MAX_SEATS:,} seats.")
    return int(raw)


def _plan(request: HttpRequest) -> Plan:
    slug = request.POST.get("plan", "")
    # PostgreSQL compares no text holding a NUL (it raises): no slug holds one.
    plan = None if "\x00" in slug else plan_list().filter(slug=slug).first()
    if plan is None:
        raise InvalidSubscriptionInput("plan", "No active plan has that slug.")
    return plan


class _PlanAction(PortalView):
    """One change of the subscription, said how it went on the plan page."""

    section = "plan"
    requires = {"POST": Capability.BUY}

    def act(self, request: HttpRequest) -> str:
        raise NotImplementedError

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            messages.success(request, self.act(request))
        except InvalidSubscriptionInput as exc:
            # The field's own message: the form names the field already ("Seats", "Plan").
            said = [message for found in exc.details["fields"].values() for message in found]
            messages.error(request, " ".join(said))
        except REFUSED as exc:
            messages.error(request, exc.message)
        return redirect("portal:plan")


class PlanSubscribe(_PlanAction):
    def act(self, request: HttpRequest) -> str:
        sub = subscription_create(tenant=self.tenant, plan=_plan(request), seats=_seats(request))
        return f"Subscribed to {sub.plan.name} ({sub.get_status_display()})."


class PlanChange(_PlanAction):
    def act(self, request: HttpRequest) -> str:
        sub = subscription_change(tenant=self.tenant, plan=_plan(request), seats=_seats(request))
        if sub.next_plan is not None:
            return "The change takes effect at the end of the period."
        return f"Now on {sub.plan.name} with {sub.seats} seat(s)."


class PlanCancel(_PlanAction):
    def act(self, request: HttpRequest) -> str:
        subscription_cancel(tenant=self.tenant)
        return "The subscription ends at the end of the period."
