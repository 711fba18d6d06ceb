"""The payment gateway chosen by settings.BILLING_GATEWAY: `fake` (default) or `stripe`."""

from django.conf import settings

from billing.gateways.base import (
    Card,
    Charge,
    CheckoutSession,
    PaymentGateway,
    PaymentStatus,
)
from billing.gateways.fake import FakeGateway

__all__ = [
    "Card",
    "Charge",
    "CheckoutSession",
    "PaymentGateway",
    "PaymentStatus",
    "gateway_get",
]


def gateway_get(name: str | None = None) -> PaymentGateway:
    chosen = name or getattr(settings, "BILLING_GATEWAY", "fake")
    if chosen == "stripe":
        from billing.gateways.stripe_gateway import StripeGateway

        return StripeGateway()
    if chosen == "fake":
        return FakeGateway()
    raise ValueError(f"Unknown payment gateway '{chosen}'.")
