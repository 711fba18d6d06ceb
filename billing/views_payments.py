"""The portal's payment pages: a pending top-up paid or cancelled, a paid one's receipt, the
saved card added, replaced or removed, and the fake gateway's card page. Each calls the same
service as the API (billing.services); spending or saving a card needs a billing role."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from billing.exceptions import (
    GatewayError,
    PaymentMethodInUse,
    PaymentMethodNotFound,
    TopUpNotPending,
)
from billing.gateways import gateway_get
from billing.gateways.fake import FAKE_CARDS
from billing.models import TopUp
from billing.selectors import billing_customer_get
from billing.services import (
    payment_method_remove,
    payment_method_save,
    payment_method_setup_start,
    topup_cancel,
    topup_receipt_record,
)
from billing.views import _tenant


def _top_up(request: HttpRequest, top_up_id: int, *, billing: bool) -> TopUp:
    tenant = _tenant(request, billing=billing)
    return get_object_or_404(TopUp.objects.select_related("pack"), pk=top_up_id, tenant=tenant)


@login_required
def topup_pay(request: HttpRequest, top_up_id: int) -> HttpResponse:
    """Back to the checkout of a pending top-up, while it still takes payment."""
    top_up = _top_up(request, top_up_id, billing=True)
    open_until = top_up.expires_at
    if (
        top_up.status != TopUp.Status.PENDING
        or not top_up.checkout_url
        or (open_until is not None and open_until <= timezone.now())
    ):
        messages.error(request, TopUpNotPending.message)
        return redirect("billing:balance")
    return redirect(top_up.checkout_url)


@login_required
@require_POST
def topup_cancel_view(request: HttpRequest, top_up_id: int) -> HttpResponse:
    top_up = _top_up(request, top_up_id, billing=True)
    try:
        topup_cancel(top_up=top_up)
    except (TopUpNotPending, GatewayError) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The purchase was cancelled; nothing was charged.")
    return redirect("billing:balance")


@login_required
def topup_receipt(request: HttpRequest, top_up_id: int) -> HttpResponse:
    """A paid top-up's receipt: the gateway's (Stripe's receipt page), or the fake gateway's,
    rendered here with the same fields."""
    top_up = _top_up(request, top_up_id, billing=False)
    if top_up.status != TopUp.Status.SUCCEEDED:
        raise Http404("This purchase has no receipt: it was not paid.")
    top_up = topup_receipt_record(top_up=top_up)
    if top_up.receipt_url and not top_up.receipt_url.startswith("/"):
        return redirect(top_up.receipt_url)
    if top_up.gateway != "fake":
        messages.error(request, "The payment gateway has no receipt for this purchase yet.")
        return redirect("billing:balance")
    return render(request, "billing/receipt.html", {"tenant": top_up.tenant, "top_up": top_up})


@login_required
@require_POST
def payment_method_setup(request: HttpRequest) -> HttpResponse:
    """Add or replace the card: off to the gateway's page where the customer enters it."""
    tenant = _tenant(request, billing=True)
    back = request.build_absolute_uri("/billing/auto-top-up/")
    try:
        session = payment_method_setup_start(
            tenant=tenant, success_url=f"{back}?card=saved", cancel_url=back
        )
    except GatewayError as exc:
        messages.error(request, exc.message)
        return redirect("billing:auto-top-up")
    return redirect(session.url)


@login_required
@require_POST
def payment_method_remove_view(request: HttpRequest) -> HttpResponse:
    tenant = _tenant(request, billing=True)
    try:
        payment_method_remove(tenant=tenant)
    except (PaymentMethodNotFound, PaymentMethodInUse, GatewayError) as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "The card was removed.")
    return redirect("billing:auto-top-up")


@login_required
def fake_card_setup(request: HttpRequest) -> HttpResponse:
    """The fake gateway's card page: pick a test card; saving it does what Stripe's
    setup_intent.succeeded webhook does."""
    if settings.BILLING_GATEWAY != "fake":
        raise Http404("The fake card page is off.")
    tenant = _tenant(request, billing=True)
    customer = billing_customer_get(tenant_id=tenant.pk)
    if customer is None or customer.gateway != "fake":
        raise Http404("Start from the auto top-up page.")
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
        return redirect("billing:auto-top-up")
    return render(
        request,
        "billing/fake_card_setup.html",
        {"tenant": tenant, "cards": list(FAKE_CARDS.values())},
    )
