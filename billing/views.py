"""The fake payment gateway's own hosted pages: its checkout, its card page, its receipt, its
subscription and contract invoices. With Stripe these pages are Stripe's (Checkout, the hosted
receipt and invoice), reached by the addresses the gateway hands out (`checkout_url`, `receipt_url`,
`hosted_url`, kept on the rows); the fake serves them here, under `/billing/`, so those stored
addresses keep working. They are not the portal: the customer's pages (buy, payment methods,
auto top-up, plan) are the portal's, and the old `/billing/...` addresses of those redirect.

The page acts for the tenant its object belongs to; the signed-in user must be a member of it
(and hold a billing role to pay or save a card), else 404 / 403.
"""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseRedirectBase
from django.shortcuts import get_object_or_404, redirect, render

from billing import links
from billing.exceptions import GatewayError, TopUpNotPending
from billing.gateways import gateway_get
from billing.gateways.fake import FAKE_CARDS
from billing.models import ContractInvoice, SubscriptionInvoice, TopUp
from billing.selectors import BILLING_ROLES, billing_customer_get, contract_invoice_list
from billing.services import fake_checkout_confirm, payment_method_save
from billing.services.contract_invoices import fake_contract_invoice_pay
from tenants.models import Membership, Tenant


def _member(request: HttpRequest, tenant_id: int, *, billing: bool) -> Tenant:
    """The tenant, if the user is a member of it (404 otherwise: it never says whether the
    object exists); `billing`: paying or saving a card needs an owner, admin or billing role."""
    membership = (
        Membership.objects.filter(tenant_id=tenant_id, user_id=int(request.user.pk or 0))
        .select_related("tenant")
        .first()
    )
    if membership is None:
        raise Http404("There is nothing at this address.")
    if billing and membership.role not in BILLING_ROLES:
        raise PermissionDenied("Only owners, admins and billing members can do this.")
    return membership.tenant


def _fake_only(what: str) -> None:
    if settings.BILLING_GATEWAY != "fake":
        # With a real gateway these pages would grant credits nobody paid for.
        raise Http404(f"The fake {what} is off.")


@login_required
def fake_checkout(request: HttpRequest, top_up_id: int) -> HttpResponse:
    """The fake's checkout: "Pay" completes the purchase the way Stripe's webhook does, then
    returns to the portal's buy page as Stripe's success address would."""
    _fake_only("checkout")
    top_up = get_object_or_404(TopUp.objects.select_related("pack"), pk=top_up_id)
    tenant = _member(request, top_up.tenant_id, billing=request.method == "POST")
    if request.method == "POST":
        try:
            fake_checkout_confirm(top_up=top_up)
        except TopUpNotPending as exc:
            messages.error(request, exc.message)
            return redirect(links.BUY)
        messages.success(
            request, f"Payment received: {top_up.credits.normalize():f} credits added."
        )
        return redirect(f"{links.BUY}?top_up={top_up.pk}")
    return render(
        request,
        "billing/fake_checkout.html",
        {"tenant": tenant, "top_up": top_up, "back": links.BUY},
    )


@login_required
def fake_card_setup(request: HttpRequest) -> HttpResponse:
    """The fake's card page: pick a test card; saving it does what Stripe's
    setup_intent.succeeded webhook does, then back to the portal's payment methods."""
    _fake_only("card page")
    # The tenant whose payment methods page started the setup, else the user's first (Stripe
    # knows it from its session; the fake's address does not carry it).
    memberships = Membership.objects.filter(user_id=int(request.user.pk or 0))
    slug = request.session.get(links.TENANT_SESSION_KEY)
    membership = (memberships.filter(tenant__slug=slug).first() if slug else None) or (
        memberships.order_by("tenant__slug").first()
    )
    if membership is None:
        raise Http404("Start from the payment methods page.")
    tenant = _member(request, membership.tenant_id, billing=True)
    customer = billing_customer_get(tenant_id=tenant.pk)
    if customer is None or customer.gateway != "fake":
        raise Http404("Start from the payment methods page.")
    if request.method == "POST":
        by_last4 = {card.last4: key for key, card in FAKE_CARDS.items()}
        chosen = by_last4.get(request.POST.get("card", ""))
        if chosen is None:
            messages.error(request, "Pick one of the test cards.")
            return redirect("billing:fake-card-setup")
        payment_method_save(
            tenant=tenant,
            gateway=gateway_get("fake").name,
            customer_id=customer.customer_id,
            payment_method_id=chosen,
        )
        messages.success(request, "Card saved.")
        return redirect(links.PAYMENT_METHODS)
    return render(
        request,
        "billing/fake_card_setup.html",
        {"tenant": tenant, "cards": list(FAKE_CARDS.values()), "back": links.PAYMENT_METHODS},
    )


@login_required
def fake_receipt(request: HttpRequest, top_up_id: int) -> HttpResponse:
    """The fake's receipt, with the fields of Stripe's. A top-up of another gateway goes to the
    portal's receipt link, which goes to that gateway's (the API handed this address out before
    the portal had its own)."""
    top_up = get_object_or_404(TopUp.objects.select_related("pack"), pk=top_up_id)
    tenant = _member(request, top_up.tenant_id, billing=False)
    if top_up.gateway != "fake":
        return redirect(links.receipt(top_up.pk))
    if top_up.status != TopUp.Status.SUCCEEDED:
        raise Http404("This purchase has no receipt: it was not paid.")
    return render(
        request, "billing/receipt.html", {"tenant": tenant, "top_up": top_up, "back": links.BUY}
    )


@login_required
def fake_invoice(request: HttpRequest, reference: str) -> HttpResponse:
    """The fake's hosted invoice of a subscription, with the fields of Stripe's."""
    if "\x00" in reference:  # PostgreSQL compares no text holding one (it raises)
        raise Http404("There is nothing at this address.")
    invoice = get_object_or_404(
        SubscriptionInvoice.objects.select_related("plan"), gateway_reference=reference
    )
    tenant = _member(request, invoice.tenant_id, billing=False)
    if invoice.hosted_url and not invoice.hosted_url.startswith("/"):
        return redirect(invoice.hosted_url)
    return render(
        request,
        "billing/subscription_invoice.html",
        {"tenant": tenant, "invoice": invoice, "back": links.PLAN},
    )


@login_required
def fake_contract_invoice(request: HttpRequest, invoice_id: int) -> HttpResponse:
    """The fake's hosted invoice of a contract, with the fields of a subscription invoice;
    "Pay" pays an open one as the customer would at Stripe's hosted invoice page."""
    found = get_object_or_404(ContractInvoice.objects.only("tenant_id"), pk=invoice_id)
    tenant = _member(request, found.tenant_id, billing=request.method == "POST")
    # Issued ones only: a request the gateway has not answered has no number or page yet.
    invoice = get_object_or_404(contract_invoice_list(tenant=tenant), pk=invoice_id)
    if invoice.hosted_url and not invoice.hosted_url.startswith("/"):
        return redirect(invoice.hosted_url)
    if request.method == "POST":
        _fake_only("invoice payment")
        try:
            paid = fake_contract_invoice_pay(invoice=invoice)
        except GatewayError as exc:  # the fake lost the invoice (its cache was emptied)
            messages.error(request, exc.message)
            return redirect("billing:contract-invoice", invoice_id=invoice.pk)
        if paid.status == ContractInvoice.Status.PAID:
            messages.success(request, f"Invoice {paid.number} paid.")
        else:
            messages.error(request, f"Invoice {paid.number} is {paid.get_status_display()}.")
        return redirect("billing:contract-invoice", invoice_id=invoice.pk)
    return render(
        request,
        "billing/contract_invoice.html",
        {
            "tenant": tenant,
            "invoice": invoice,
            "back": links.PLAN,
            "payable": invoice.status == ContractInvoice.Status.OPEN
            and settings.BILLING_GATEWAY == "fake",
        },
    )


class HttpResponsePermanentRedirectKeepingMethod(HttpResponseRedirectBase):
    status_code = 308


def moved(to: str) -> Callable[..., HttpResponse]:
    """An old `/billing/...` address of a page the portal now serves: GET is sent on with a 301,
    a form posted from a page loaded before the move with a 308 (the method and body kept, so
    the portal's page answers it, with its CSRF check and role check)."""

    def view(request: HttpRequest, **kwargs: int) -> HttpResponse:
        target = to.format(**kwargs)
        if request.META.get("QUERY_STRING"):
            target = f"{target}?{request.META['QUERY_STRING']}"
        if request.method in ("GET", "HEAD"):
            return redirect(target, permanent=True)
        return HttpResponsePermanentRedirectKeepingMethod(target)

    return view
