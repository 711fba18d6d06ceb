"""Stripe through the official library: Checkout Sessions for portal top-ups, Checkout in
`setup` mode to save a card, off-session PaymentIntents for auto top-up. Each top-up's
idempotency key goes to Stripe with every request made for it.

Cards are saved with Checkout in setup mode rather than a SetupIntent and the Payment Element:
the card form is Stripe's hosted page (no Stripe.js in the portal, the vendor's PCI scope stays
SAQ A), the flow is the redirect the top-ups already use, an API client gets a URL to hand to
its user, and 3-D Secure and wallets come with the page. The session's SetupIntent carries the
tenant in its metadata; its `setup_intent.succeeded` event saves the card."""

from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.utils import timezone

from billing.exceptions import GatewayError
from billing.gateways.base import (
    Card,
    Charge,
    CheckoutSession,
    PaymentGateway,
    PaymentStatus,
    Refund,
)
from billing.gateways.stripe_contracts import StripeContracts
from billing.gateways.stripe_subscriptions import StripeSubscriptions
from billing.models import TopUp

# Stripe keeps an idempotency key for 24 hours; a call older than this looks up, not retries.
IDEMPOTENCY_KEYS_KEPT = timedelta(hours=23)


class StripeGateway(StripeContracts, StripeSubscriptions, PaymentGateway):
    name = "stripe"

    def __init__(self, http_client: stripe.HTTPClient | None = None) -> None:
        self._http_client = http_client

    @property
    def client(self) -> stripe.StripeClient:
        return stripe.StripeClient(
            settings.STRIPE_SECRET_KEY, http_client=self._http_client, max_network_retries=2
        )

    @staticmethod
    def _metadata(top_up: TopUp) -> dict[str, str]:
        # The webhook finds the top-up (and its tenant) from these.
        return {"top_up_id": str(top_up.pk), "tenant_id": str(top_up.tenant_id)}

    def checkout_create(
        self, *, top_up: TopUp, success_url: str, cancel_url: str
    ) -> CheckoutSession:
        self.outside_transaction()
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": str(top_up.pk),
            "success_url": success_url,
            "cancel_url": cancel_url,
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": top_up.currency.lower(),
                        "unit_amount": top_up.amount_minor,
                        "product_data": {"name": f"{top_up.pack.name} ({top_up.credits} credits)"},
                    },
                }
            ],
            "metadata": self._metadata(top_up),
            "payment_intent_data": {"metadata": self._metadata(top_up)},
        }
        if top_up.expires_at is not None:
            params["expires_at"] = int(top_up.expires_at.timestamp())
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout:{top_up.idempotency_key}"},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        stamp = getattr(session, "expires_at", None)
        expires_at = datetime.fromtimestamp(stamp, tz=UTC) if isinstance(stamp, int) else None
        return CheckoutSession(reference=session.id, url=session.url or "", expires_at=expires_at)

    def checkout_expire(self, *, reference: str, idempotency_key: str) -> None:
        self.outside_transaction()
        try:
            self.client.v1.checkout.sessions.expire(
                reference, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc

    def receipt_url(self, *, top_up: TopUp) -> str:
        self.outside_transaction()
        if not top_up.payment_reference.startswith("pi_"):
            return ""
        try:
            intent = self.client.v1.payment_intents.retrieve(
                top_up.payment_reference, params={"expand": ["latest_charge"]}
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        charge = intent.latest_charge
        if charge is None or isinstance(charge, str):
            return ""
        return charge.receipt_url or ""

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
        metadata = {"tenant_id": str(tenant_id)}
        params: dict[str, Any] = {
            "mode": "setup",
            "customer": customer_id,
            "payment_method_types": ["card"],
            "success_url": success_url,
            "cancel_url": cancel_url,
            "metadata": metadata,
            # The SetupIntent's event (setup_intent.succeeded) names the tenant from this.
            "setup_intent_data": {"metadata": metadata},
        }
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return CheckoutSession(reference=session.id, url=session.url or "")

    def card_get(self, *, payment_method_id: str) -> Card:
        self.outside_transaction()
        try:
            method = self.client.v1.payment_methods.retrieve(payment_method_id)
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        card = method.card
        if card is None:
            return Card(brand=method.type, last4="", exp_month=None, exp_year=None)
        return Card(
            brand=card.brand, last4=card.last4, exp_month=card.exp_month, exp_year=card.exp_year
        )

    def card_make_default(
        self, *, customer_id: str, payment_method_id: str, idempotency_key: str
    ) -> None:
        self.outside_transaction()
        try:
            self.client.v1.customers.update(
                customer_id,
                params={"invoice_settings": {"default_payment_method": payment_method_id}},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc

    def card_detach(self, *, payment_method_id: str, idempotency_key: str) -> None:
        self.outside_transaction()
        try:
            self.client.v1.payment_methods.detach(
                payment_method_id, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc

    def customer_create(self, *, tenant_id: int, name: str, idempotency_key: str) -> str:
        self.outside_transaction()
        try:
            customer = self.client.v1.customers.create(
                params={"name": name, "metadata": {"tenant_id": str(tenant_id)}},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return customer.id

    def charge_off_session(
        self, *, top_up: TopUp, customer_id: str, payment_method_id: str
    ) -> Charge:
        self.outside_transaction()
        made = top_up.created_at
        if made is not None and timezone.now() - made > IDEMPOTENCY_KEYS_KEPT:
            # Stripe forgets an idempotency key after a day: a retry with it would charge
            # again. Look for the payment an earlier attempt made instead.
            earlier = self._intent_of(top_up)
            if earlier is not None:
                return self._charge(earlier)
        try:
            intent = self.client.v1.payment_intents.create(
                params={
                    "amount": top_up.amount_minor,
                    "currency": top_up.currency.lower(),
                    "customer": customer_id,
                    "payment_method": payment_method_id,
                    "confirm": True,
                    "off_session": True,
                    "metadata": self._metadata(top_up),
                },
                options={"idempotency_key": top_up.idempotency_key},
            )
        except stripe.CardError as exc:
            # A decline: Stripe answers 402 and names the payment intent it created.
            error = exc.error
            intent_id = ""
            if error is not None and error.payment_intent is not None:
                intent_id = error.payment_intent.id
            return Charge(
                reference=intent_id,
                status="failed",
                failure_reason=str(exc.user_message or exc),
                needs_authentication=exc.code == "authentication_required",
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return self._charge(intent)

    def _intent_of(self, top_up: TopUp) -> stripe.PaymentIntent | None:
        query = (
            f"metadata['top_up_id']:'{top_up.pk}' AND metadata['tenant_id']:'{top_up.tenant_id}'"
        )
        try:
            found = self.client.v1.payment_intents.search(params={"query": query, "limit": 1})
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return found.data[0] if found.data else None

    @staticmethod
    def _charge(intent: stripe.PaymentIntent) -> Charge:
        if intent.status == "succeeded":
            return Charge(reference=intent.id, status="succeeded")
        if intent.status in ("processing", "requires_capture"):
            return Charge(reference=intent.id, status="processing")
        reason = intent.last_payment_error.message if intent.last_payment_error else ""
        return Charge(
            reference=intent.id,
            status="failed",
            failure_reason=reason or f"The payment needs action ({intent.status}).",
            needs_authentication=intent.status == "requires_action",
        )

    def invoice_of_payment(self, *, payment_intent: str) -> str | None:
        """The invoice that a PaymentIntent paid (Stripe's InvoicePayment: since API 2025-03-31
        a Charge no longer names its invoice), None when it paid none."""
        self.outside_transaction()
        params: Any = {
            "payment": {"type": "payment_intent", "payment_intent": payment_intent},
            "limit": 1,
        }
        try:
            found = self.client.v1.invoice_payments.list(params=params)
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        for payment in found.data:
            invoice = payment.invoice
            return invoice if isinstance(invoice, str) else invoice.id
        return None

    def payment_status(self, *, reference: str) -> PaymentStatus:
        self.outside_transaction()
        try:
            intent = self.client.v1.payment_intents.retrieve(reference)
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        reason = intent.last_payment_error.message if intent.last_payment_error else ""
        return PaymentStatus(reference=intent.id, status=intent.status, failure_reason=reason or "")

    def cancel_payment(self, *, reference: str, idempotency_key: str) -> PaymentStatus:
        self.outside_transaction()
        try:
            intent = self.client.v1.payment_intents.cancel(
                reference, options={"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return PaymentStatus(reference=intent.id, status=intent.status)

    def refund_create(self, *, top_up: TopUp, amount_minor: int, idempotency_key: str) -> Refund:
        self.outside_transaction()
        try:
            refund = self.client.v1.refunds.create(
                params={
                    "payment_intent": top_up.payment_reference,
                    "amount": amount_minor,
                    "metadata": self._metadata(top_up),
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return Refund(
            reference=refund.id,
            status=refund.status or "pending",
            # Stripe sends failure_reason only on a refund that failed.
            failure_reason=getattr(refund, "failure_reason", None) or "",
        )
