"""A gateway that needs no network: checkout goes to a confirm page in the portal, and
off-session charges succeed unless the saved payment method says otherwise."""

import hashlib

from django.core.cache import cache
from django.urls import reverse

from billing.exceptions import GatewayError
from billing.gateways.base import (
    Card,
    Charge,
    CheckoutSession,
    PaymentGateway,
    PaymentStatus,
    Refund,
)
from billing.gateways.fake_contracts import FakeContracts
from billing.gateways.fake_subscriptions import FakeSubscriptions
from billing.models import TopUp

# Save this payment method id to make every off-session charge decline (tests, demos).
DECLINING_PAYMENT_METHOD = "pm_fake_declined"
# And this one to leave charges processing (Stripe's asynchronous case): nothing completes
# until confirmed later, which keeps an auto top-up in flight.
PROCESSING_PAYMENT_METHOD = "pm_fake_processing"
# And this one to make every charge need the customer's confirmation (SCA), like Stripe's
# 4000 0025 0000 3155 off-session.
AUTHENTICATING_PAYMENT_METHOD = "pm_fake_authentication"
# The fake's test cards, as its "server side" describes them (Stripe's test numbers).
FAKE_CARDS = {
    "pm_fake_visa": Card(brand="visa", last4="4242", exp_month=12, exp_year=2030),
    DECLINING_PAYMENT_METHOD: Card(brand="visa", last4="0002", exp_month=12, exp_year=2030),
    PROCESSING_PAYMENT_METHOD: Card(brand="mastercard", last4="4444", exp_month=6, exp_year=2031),
    AUTHENTICATING_PAYMENT_METHOD: Card(brand="visa", last4="3155", exp_month=9, exp_year=2032),
}


def _reference(prefix: str, idempotency_key: str) -> str:
    # Derived from the idempotency key, so a retried call returns the same object, as Stripe does.
    return f"{prefix}_{hashlib.sha256(idempotency_key.encode()).hexdigest()[:24]}"


class FakeGateway(FakeContracts, FakeSubscriptions, PaymentGateway):
    name = "fake"

    # The fake's "server side": each off-session payment's state by reference, kept in the
    # Django cache (Stripe keeps it for us; the fake has nowhere else to keep it). A charge made
    # in a worker is read back by the sweep or the web process, so with several processes the
    # cache must be one they share (Redis); the per-process locmem default only suits tests.
    @staticmethod
    def payment_key(reference: str) -> str:
        return f"billing:fake-payment:{reference}"

    @classmethod
    def payment_settle(cls, *, reference: str, status: str, failure_reason: str = "") -> None:
        """Move a stored payment on, as Stripe would (a processing charge that clears)."""
        # No expiry: a payment's state must outlive the top-up that asks about it (as at Stripe).
        cache.set(cls.payment_key(reference), (status, failure_reason), timeout=None)

    def payment_status(self, *, reference: str) -> PaymentStatus:
        self.outside_transaction()
        stored = cache.get(self.payment_key(reference))
        if stored is None:
            return PaymentStatus(reference, "processing")
        status, failure_reason = stored
        return PaymentStatus(reference, status, failure_reason)

    def cancel_payment(self, *, reference: str, idempotency_key: str) -> PaymentStatus:
        self.outside_transaction()
        current = self.payment_status(reference=reference)
        if current.status in ("succeeded", "processing"):
            # Stripe refuses to cancel a payment that has been (or is being) collected.
            raise GatewayError(detail=f"This PaymentIntent's status is {current.status}.")
        self.payment_settle(reference=reference, status="canceled")
        return PaymentStatus(reference, "canceled")

    def checkout_create(
        self, *, top_up: TopUp, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        self.outside_transaction()
        url = reverse("billing:fake-checkout", kwargs={"top_up_id": top_up.pk})
        return CheckoutSession(
            reference=_reference("fcs", top_up.idempotency_key),
            url=url,
            expires_at=top_up.expires_at,
        )

    def checkout_expire(self, *, reference: str, idempotency_key: str) -> None:
        self.outside_transaction()

    def receipt_url(self, *, top_up: TopUp) -> str:
        # The fake has no receipt server: the portal renders the receipt itself.
        return reverse("billing:topup-receipt", kwargs={"top_up_id": top_up.pk})

    def card_setup_create(
        self,
        *,
        tenant_id: int,
        customer_id: str,
        success_url: str,
        cancel_url: str,
        idempotency_key: str,
    ) -> CheckoutSession:
        self.outside_transaction()
        reference = _reference("fcs_setup", idempotency_key)
        return CheckoutSession(
            reference=reference, url=f"{reverse('billing:fake-card-setup')}?session={reference}"
        )

    def card_get(self, *, payment_method_id: str) -> Card:
        self.outside_transaction()
        card = FAKE_CARDS.get(payment_method_id)
        if card is None:
            raise GatewayError(detail=f"No such payment method: {payment_method_id}.")
        return card

    def card_make_default(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> None:
        self.outside_transaction()

    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        self.outside_transaction()

    def customer_create(self, *, tenant_id: int, name: str, idempotency_key: str) -> str:
        self.outside_transaction()
        return _reference("fcus", idempotency_key)

    def charge_off_session(
        self, *, top_up: TopUp, customer_id: str, payment_method_id: str
    ) -> Charge:
        self.outside_transaction()
        reference = _reference("fpi", top_up.idempotency_key)
        if payment_method_id == DECLINING_PAYMENT_METHOD:
            reason = "Your card was declined."
            self.payment_settle(
                reference=reference, status="requires_payment_method", failure_reason=reason
            )
            return Charge(reference=reference, status="failed", failure_reason=reason)
        if payment_method_id == PROCESSING_PAYMENT_METHOD:
            self.payment_settle(reference=reference, status="processing")
            return Charge(reference=reference, status="processing")
        if payment_method_id == AUTHENTICATING_PAYMENT_METHOD:
            reason = "Your card was declined. This transaction requires authentication."
            self.payment_settle(
                reference=reference, status="requires_payment_method", failure_reason=reason
            )
            return Charge(
                reference=reference,
                status="failed",
                failure_reason=reason,
                needs_authentication=True,
            )
        self.payment_settle(reference=reference, status="succeeded")
        return Charge(reference=reference, status="succeeded")

    def refund_create(self, *, top_up: TopUp, amount_minor: int, idempotency_key: str) -> Refund:
        """Refunded at once, locally: the payment's stored state says how much went back."""
        self.outside_transaction()
        reference = _reference("fre", idempotency_key)
        if not top_up.payment_reference:
            raise GatewayError(detail="This top-up has no payment to refund.")
        cache.set(self.refund_key(top_up.payment_reference), amount_minor, timeout=None)
        return Refund(reference=reference, status="succeeded")

    @staticmethod
    def refund_key(payment_reference: str) -> str:
        return f"billing:fake-refund:{payment_reference}"

    def confirm_reference(self, *, top_up: TopUp) -> str:
        """The payment reference a confirmed fake checkout records."""
        return _reference("fpi", top_up.idempotency_key)
