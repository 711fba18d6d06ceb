from tenants.exceptions import CreditlineError


class PlanNotFound(CreditlineError):
    status_code = 404
    code = "plan_not_found"
    message = "No active plan has that slug."


class PackNotFound(CreditlineError):
    status_code = 422
    code = "pack_not_found"
    message = "No active credit pack has that slug."


class TopUpNotPending(CreditlineError):
    status_code = 409
    code = "topup_not_pending"
    message = "This top-up is no longer waiting for payment."


class NoPaymentMethod(CreditlineError):
    status_code = 409
    code = "no_payment_method"
    message = "Save a payment method before turning on auto top-up."


class InvalidWebhookSignature(CreditlineError):
    status_code = 400
    code = "invalid_signature"
    message = "The Stripe-Signature header does not match the payload."


class InvalidContract(CreditlineError):
    status_code = 422
    code = "invalid_contract"
    message = "The contract cannot be activated as it stands."


class GatewayError(CreditlineError):
    status_code = 502
    code = "payment_gateway_error"
    message = "The payment gateway could not be reached; nothing was charged."


class TopUpIdempotencyConflict(CreditlineError):
    status_code = 409
    code = "idempotency_conflict"
    message = "This Idempotency-Key was used for a different top-up."


class CurrencyNotOffered(CreditlineError):
    status_code = 422
    code = "currency_not_offered"
    message = "Packs are sold in the tenant's billing currency only."


class PaymentMethodNotFound(CreditlineError):
    status_code = 404
    code = "payment_method_not_found"
    message = "No card is saved."


class PaymentMethodInUse(CreditlineError):
    status_code = 409
    code = "payment_method_in_use"
    message = "Auto top-up charges this card: turn auto top-up off before removing it."


class GatewayRefused(GatewayError):
    """The gateway answered and refused the request (an invalid request, a key it does not
    take): it made nothing, so the intent can be closed. A plain GatewayError may hide a request
    that reached it (a timeout): its intent waits for a retry with the same idempotency key."""


class InvalidWebhookUrl(CreditlineError):
    status_code = 422
    code = "invalid_webhook_url"
    message = "A webhook endpoint URL must be https."


class InvalidWebhookEventTypes(CreditlineError):
    status_code = 422
    code = "invalid_webhook_event_types"
    message = "An endpoint can subscribe only to the event types that are published."


class EstimateTooLarge(CreditlineError):
    status_code = 422
    code = "estimate_too_large"
    message = "These actions would cost more credits than an estimate covers."


class InvalidAlertThresholds(CreditlineError):
    status_code = 422
    code = "invalid_alert_thresholds"
    message = "Alert thresholds are whole percentages from 1 to 99."


class SubscriptionNotFound(CreditlineError):
    status_code = 404
    code = "subscription_not_found"
    message = "The tenant has no subscription."


class SubscriptionExists(CreditlineError):
    status_code = 409
    code = "subscription_exists"
    message = "The tenant already has a subscription: change its plan or seats instead."


class SubscriptionNotActive(CreditlineError):
    """Details: `status`."""

    status_code = 409
    code = "subscription_not_active"
    message = "The subscription can change only while it is active and linked to the gateway."


class InvalidSubscriptionInput(CreditlineError):
    """One field of a subscription request is wrong (an unknown plan, no price in the
    currency, fewer than one seat): 422 naming it in `fields`."""

    status_code = 422
    code = "invalid_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", fields={field: [message]})


class TopUpNotRefundable(CreditlineError):
    status_code = 409
    code = "topup_not_refundable"
    message = "Only a paid top-up with a recorded payment can be refunded."


class InvalidCreditDisplay(CreditlineError):
    status_code = 422
    code = "invalid_credit_display"
    message = "Showing money instead of credits needs a price per credit above zero."
