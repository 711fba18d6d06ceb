"""The portal's plan page: the subscription (plan, seats, status, what changes at the period end,
its invoices with the gateway's hosted pages), and subscribing, changing plan or seats and
cancelling, through the same services as `/api/v1/subscription`. Changing anything needs a
billing role (owner, admin or billing)."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing.exceptions import (
    GatewayError,
    InvalidSubscriptionInput,
    SubscriptionExists,
    SubscriptionNotActive,
    SubscriptionNotFound,
)
from billing.models import Plan, SubscriptionInvoice
from billing.selectors import plan_list, subscription_current_get
from billing.services.subscriptions import (
    subscription_cancel,
    subscription_change,
    subscription_create,
)
from billing.views import _tenant
from tenants.models import Tenant

REFUSED = (
    GatewayError,
    InvalidSubscriptionInput,
    SubscriptionExists,
    SubscriptionNotActive,
    SubscriptionNotFound,
)


@login_required
def plan_invoice(request: HttpRequest, reference: str) -> HttpResponse:
    """A subscription invoice: the gateway's hosted page (Stripe's), or the fake gateway's,
    rendered here with the same fields."""
    tenant = _tenant(request)
    invoice = get_object_or_404(
        SubscriptionInvoice.objects.select_related("plan"),
        tenant=tenant,
        gateway_reference=reference,
    )
    if invoice.hosted_url and not invoice.hosted_url.startswith("/"):
        return redirect(invoice.hosted_url)
    return render(
        request, "billing/subscription_invoice.html", {"tenant": tenant, "invoice": invoice}
    )


@login_required
def plan_page(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    try:
        sub = subscription_current_get(tenant=tenant)
    except SubscriptionNotFound:
        sub = None
    invoices = (
        SubscriptionInvoice.objects.filter(tenant=tenant, subscription=sub)
        .exclude(status=SubscriptionInvoice.Status.REQUESTED)
        .select_related("plan")
        .order_by("-created_at", "-pk")[:12]
        if sub is not None
        else []
    )
    tenant.refresh_from_db(fields=["runs_refused_from"])
    context = {"tenant": tenant, "subscription": sub, "plans": plan_list(), "invoices": invoices}
    return render(request, "billing/plan.html", context)


def _seats(request: HttpRequest) -> int:
    raw = request.POST.get("seats", "1")
    if not raw.isdigit():
        raise InvalidSubscriptionInput("seats", "A subscription has at least one seat.")
    return int(raw)


def _plan(request: HttpRequest) -> Plan:
    plan = plan_list().filter(slug=request.POST.get("plan", "")).first()
    if plan is None:
        raise InvalidSubscriptionInput("plan", "No active plan has that slug.")
    return plan


def _act(request: HttpRequest, act: Callable[[Tenant], str]) -> HttpResponse:
    """Run one change for the page's tenant (a billing role needed) and say how it went."""
    tenant = _tenant(request, billing=True)
    try:
        messages.success(request, act(tenant))
    except REFUSED as exc:
        messages.error(request, exc.message)
    return redirect("billing:plan")


@login_required
@require_POST
def plan_subscribe(request: HttpRequest) -> HttpResponse:
    def act(tenant: Tenant) -> str:
        sub = subscription_create(tenant=tenant, plan=_plan(request), seats=_seats(request))
        return f"Subscribed to {sub.plan.name} ({sub.get_status_display()})."

    return _act(request, act)


@login_required
@require_POST
def plan_change(request: HttpRequest) -> HttpResponse:
    def act(tenant: Tenant) -> str:
        sub = subscription_change(tenant=tenant, plan=_plan(request), seats=_seats(request))
        if sub.next_plan is not None:
            return "The change takes effect at the end of the period."
        return f"Now on {sub.plan.name} with {sub.seats} seat(s)."

    return _act(request, act)


@login_required
@require_POST
def plan_cancel(request: HttpRequest) -> HttpResponse:
    def act(tenant: Tenant) -> str:
        subscription_cancel(tenant=tenant)
        return "The subscription ends at the end of the period."

    return _act(request, act)
