"""Buy credits: the packs for sale in the tenant's currency, pending purchases (pay or cancel),
past purchases with their receipts. Buying calls `topup_purchase`, the service the API calls
(`POST /api/v1/top-ups`); the gateway's checkout returns here."""

from dataclasses import dataclass

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone

from billing import links
from billing.display import credit_display_get
from billing.exceptions import GatewayError, PackNotFound, TopUpNotPending
from billing.models import CreditPack, TopUp
from billing.money import price_per_1000_minor
from billing.pack_selectors import PackOffer, pack_offer_list
from billing.selectors import billing_currency_get, topup_list
from billing.services import topup_cancel, topup_purchase, topup_receipt_record
from portal.access import Capability
from portal.base import PortalView

PURCHASES_SHOWN = 20


@dataclass(frozen=True)
class Offer:
    """A pack at its price in the tenant's currency, and what 1,000 credits cost in it."""

    offer: PackOffer
    per_1000_minor: int

    @property
    def pack(self) -> CreditPack:
        return self.offer.pack


def _open(top_up: TopUp) -> bool:
    """Whether a pending purchase's checkout still takes payment."""
    return (
        top_up.status == TopUp.Status.PENDING
        and not top_up.auto
        and bool(top_up.checkout_url)
        and (top_up.expires_at is None or top_up.expires_at > timezone.now())
    )


class BuyPage(PortalView):
    template_name = "portal/buy.html"
    section = "buy"
    requires = {"POST": Capability.BUY}

    def get(self, request: HttpRequest) -> HttpResponse:
        currency = billing_currency_get(tenant=self.tenant)
        purchases = topup_list(tenant=self.tenant).order_by("-created_at", "-pk")
        open_now = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
        pending = list(
            purchases.filter(open_now, status=TopUp.Status.PENDING, auto=False).exclude(
                checkout_url=""
            )[:PURCHASES_SHOWN]
        )
        returned = None
        asked = request.GET.get("top_up", "")
        if asked.isascii() and asked.isdigit() and len(asked) < 19:
            returned = purchases.filter(pk=int(asked)).first()
        return self.page(
            {
                "currency": currency,
                "offers": [
                    Offer(offer, price_per_1000_minor(offer.price_minor, offer.credits))
                    for offer in pack_offer_list(currency=currency)
                ],
                "pending": pending,
                "purchases": purchases.exclude(pk__in=[t.pk for t in pending])[:PURCHASES_SHOWN],
                "returned": returned,
                "credit_display": credit_display_get(tenant_id=self.tenant.pk),
            }
        )

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            purchase = topup_purchase(
                tenant=self.tenant,
                pack_slug=request.POST.get("pack", ""),
                return_url=request.build_absolute_uri(links.BUY),
            )
        except (GatewayError, PackNotFound) as exc:
            messages.error(request, exc.message)
            return redirect("portal:buy")
        return redirect(purchase.top_up.checkout_url)


class TopUpPay(PortalView):
    """Back to the checkout of a pending purchase, while it still takes payment."""

    section = "buy"
    requires = {"GET": Capability.BUY}

    def get(self, request: HttpRequest, top_up_id: int) -> HttpResponse:
        top_up = get_object_or_404(TopUp, pk=top_up_id, tenant=self.tenant)
        if not _open(top_up):
            messages.error(request, TopUpNotPending.message)
            return redirect("portal:buy")
        return redirect(top_up.checkout_url)


class TopUpCancel(PortalView):
    section = "buy"
    requires = {"POST": Capability.BUY}

    def post(self, request: HttpRequest, top_up_id: int) -> HttpResponse:
        top_up = get_object_or_404(TopUp, pk=top_up_id, tenant=self.tenant)
        try:
            topup_cancel(top_up=top_up)
        except (TopUpNotPending, GatewayError) as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "The purchase was cancelled; nothing was charged.")
        return redirect("portal:buy")


class TopUpReceipt(PortalView):
    """A paid purchase's receipt: the gateway's page (Stripe's receipt, or the fake gateway's),
    its address asked for and kept the first time."""

    section = "buy"

    def get(self, request: HttpRequest, top_up_id: int) -> HttpResponse:
        top_up = get_object_or_404(TopUp, pk=top_up_id, tenant=self.tenant)
        if top_up.status != TopUp.Status.SUCCEEDED:
            raise Http404("This purchase has no receipt: it was not paid.")
        top_up = topup_receipt_record(top_up=top_up)
        if not top_up.receipt_url:
            messages.error(request, "The payment gateway has no receipt for this purchase yet.")
            return redirect("portal:buy")
        return redirect(top_up.receipt_url)
