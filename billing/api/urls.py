from django.urls import path

from billing.api.views import (
    AlertSettingsApi,
    AutoTopUpApi,
    EstimateCreateApi,
    StripeWebhookApi,
    TopUpsApi,
    WebhookEndpointDetailApi,
    WebhookEndpointsApi,
)

urlpatterns = [
    path("top-ups", TopUpsApi.as_view(), name="top-ups"),
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
