"""The portal's billing pages: balance and buckets, buying a pack, auto top-up. The signed-in
user's tenant comes from their memberships (?tenant=<slug> picks one when they have several)."""

from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from billing.exceptions import GatewayError, NoPaymentMethod, PackNotFound, TopUpNotPending
from billing.forms import AutoTopUpForm
from billing.models import TopUp
from billing.money import money_from_minor
from billing.selectors import (
    alert_thresholds_get,
    auto_topup_policy_get,
    billing_currency_get,
    billing_customer_get,
    billing_role_held,
    pack_list,
    subscription_get_active,
    topup_list,
)
from billing.services import auto_topup_policy_update, fake_checkout_confirm, topup_purchase
from ledger.selectors import balance_get, bucket_list
from tenants.events import tenant_settings_get
from tenants.models import Tenant
from tenants.selectors import tenant_list_for_user


def _tenant(request: HttpRequest, *, billing: bool = False) -> Tenant:
    """The tenant the page is about; `billing` (spending money, saving a card) also needs an
    owner, admin or billing membership there, else 403."""
    tenants = tenant_list_for_user(user=request.user)  # type: ignore[arg-type]
    slug = request.GET.get("tenant") or request.session.get("billing_tenant")
    tenant = (tenants.filter(slug=slug).first() if slug else None) or tenants.first()
    if tenant is None:
        raise Http404("You are not a member of any tenant.")
    request.session["billing_tenant"] = tenant.slug
    if billing and not billing_role_held(tenant=tenant, user_id=int(request.user.pk or 0)):
        raise PermissionDenied("Only owners, admins and billing members can do this.")
    return tenant


@login_required
def balance_page(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request)
    context = {
        "tenant": tenant,
        "balance": balance_get(tenant=tenant),
        # Every live bucket: the balance itself carries only the first page of them.
        "buckets": bucket_list(tenant=tenant),
        "packs": pack_list(currency=billing_currency_get(tenant=tenant)),
        "top_ups": topup_list(tenant=tenant).order_by("-created_at")[:10],
        "subscription": subscription_get_active(tenant=tenant),
        "policy": auto_topup_policy_get(tenant=tenant),
        "alert_thresholds": alert_thresholds_get(tenant_id=tenant.pk),
        # Metering's: the balance under which new workflow runs are refused.
        "soft_cap": tenant_settings_get(tenant=tenant, names=["soft_cap_effective"]).get(
            "soft_cap_effective"
        ),
    }
    return render(request, "billing/balance.html", context)


@login_required
@require_POST
def topup_buy(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request, billing=True)
    try:
        purchase = topup_purchase(
            tenant=tenant,
            pack_slug=request.POST.get("pack", ""),
            return_url=request.build_absolute_uri("/billing/"),
        )
    except (GatewayError, PackNotFound) as exc:
        messages.error(request, exc.message)
        return redirect("billing:balance")
    return redirect(purchase.top_up.checkout_url)


@login_required
def fake_checkout(request: HttpRequest, top_up_id: int) -> HttpResponse:
    if settings.BILLING_GATEWAY != "fake":
        # With a real gateway this page would grant credits nobody paid for.
        raise Http404("The fake checkout is off.")
    tenant = _tenant(request, billing=request.method == "POST")
    top_up = get_object_or_404(TopUp.objects.select_related("pack"), pk=top_up_id, tenant=tenant)
    if request.method == "POST":
        try:
            fake_checkout_confirm(top_up=top_up)
        except TopUpNotPending as exc:
            messages.error(request, exc.message)
            return redirect("billing:balance")
        messages.success(
            request, f"Payment received: {top_up.credits.normalize():f} credits added."
        )
        return redirect("billing:balance")
    return render(request, "billing/fake_checkout.html", {"tenant": tenant, "top_up": top_up})


@login_required
def auto_topup_page(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request, billing=request.method == "POST")
    policy = auto_topup_policy_get(tenant=tenant)
    if request.method == "POST":
        form = AutoTopUpForm(request.POST, currency=billing_currency_get(tenant=tenant))
        if form.is_valid():
            values = form.cleaned_data
            try:
                auto_topup_policy_update(
                    tenant=tenant,
                    enabled=values["enabled"],
                    threshold=values["threshold"],
                    pack=values["pack"],
                    monthly_cap_minor=values["monthly_cap_minor"],
                )
            except NoPaymentMethod as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, "Auto top-up saved.")
                return redirect("billing:auto-top-up")
    else:
        initial = {"threshold": Decimal(100), "monthly_cap": Decimal(100), "enabled": False}
        if policy is not None:
            initial = {
                "enabled": policy.enabled,
                "threshold": policy.threshold,
                "pack": policy.pack,
                "monthly_cap": money_from_minor(policy.monthly_cap_minor, policy.pack.currency),
            }
        form = AutoTopUpForm(initial=initial, currency=billing_currency_get(tenant=tenant))
    context = {
        "tenant": tenant,
        "form": form,
        "policy": policy,
        "customer": billing_customer_get(tenant_id=tenant.pk),
        "card_saved": request.GET.get("card") == "saved",
        "gateway": settings.BILLING_GATEWAY,
        "attempts": topup_list(tenant=tenant).filter(auto=True).order_by("-created_at")[:5],
    }
    return render(request, "billing/auto_topup.html", context)
