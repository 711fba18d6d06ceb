"""Stripe through the official library: Checkout Sessions for portal top-ups, SetupIntents to
save a card, off-session PaymentIntents for auto top-up. Each top-up's idempotency key goes to
Stripe with every request made for it."""

from typing import Any

import stripe
from django.conf import settings

from billing.exceptions import GatewayError
from billing.gateways.base import (
    Charge,
    CheckoutSession,
    PaymentGateway,
    PaymentStatus,
    SetupSession,
)
from billing.models import TopUp


class StripeGateway(PaymentGateway):
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
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": f"checkout:{top_up.idempotency_key}"},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return CheckoutSession(reference=session.id, url=session.url or "")

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

    def setup_intent_create(
        self, *, tenant_id: int, customer_id: str, idempotency_key: str
    ) -> SetupSession:
        self.outside_transaction()
        try:
            intent = self.client.v1.setup_intents.create(
                params={
                    "customer": customer_id,
                    "usage": "off_session",
                    "metadata": {"tenant_id": str(tenant_id)},
                },
                options={"idempotency_key": idempotency_key},
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        return SetupSession(reference=intent.id, client_secret=intent.client_secret or "")

    def charge_off_session(
        self, *, top_up: TopUp, customer_id: str, payment_method_id: str
    ) -> Charge:
        self.outside_transaction()
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
                reference=intent_id, status="failed", failure_reason=str(exc.user_message or exc)
            )
        except stripe.StripeError as exc:
            raise GatewayError(detail=str(exc.user_message or exc)) from exc
        if intent.status == "succeeded":
            return Charge(reference=intent.id, status="succeeded")
        if intent.status in ("processing", "requires_capture"):
            return Charge(reference=intent.id, status="processing")
        reason = intent.last_payment_error.message if intent.last_payment_error else ""
        return Charge(
            reference=intent.id,
            status="failed",
            failure_reason=reason or f"The payment needs action ({intent.status}).",
        )

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
