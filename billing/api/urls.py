from django.urls import path

from billing.api.contract_invoices import ContractInvoicesApi
from billing.api.purchases import (
    CreditPacksApi,
    PaymentMethodApi,
    TopUpCancelApi,
    TopUpDetailApi,
    TopUpsApi,
)
from billing.api.subscriptions import SubscriptionApi
from billing.api.views import (
    AlertSettingsApi,
    AutoTopUpApi,
    EstimateCreateApi,
    StripeWebhookApi,
    WebhookEndpointDetailApi,
    WebhookEndpointsApi,
)

urlpatterns = [
    path("credit-packs", CreditPacksApi.as_view(), name="credit-packs"),
    path("top-ups", TopUpsApi.as_view(), name="top-ups"),
    path("top-ups/<int:top_up_id>", TopUpDetailApi.as_view(), name="top-up-detail"),
    path("top-ups/<int:top_up_id>/cancel", TopUpCancelApi.as_view(), name="top-up-cancel"),
    path("payment-method", PaymentMethodApi.as_view(), name="payment-method"),
    path("subscription", SubscriptionApi.as_view(), name="subscription"),
    path("contract-invoices", ContractInvoicesApi.as_view(), name="contract-invoices"),
    path("auto-top-up", AutoTopUpApi.as_view(), name="auto-top-up"),
    path("alert-settings", AlertSettingsApi.as_view(), name="alert-settings"),
    path("webhook-endpoints", WebhookEndpointsApi.as_view(), name="webhook-endpoints"),
    path(
        "webhook-endpoints/<int:endpoint_id>",
        WebhookEndpointDetailApi.as_view(),
        name="webhook-endpoint-detail",
    ),
    path("estimates", EstimateCreateApi.as_view(), name="estimates"),
    path("webhooks/stripe", StripeWebhookApi.as_view(), name="stripe-webhook"),
]
