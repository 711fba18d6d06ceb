"""Reads of the tenant's webhook endpoints and their delivery log (the portal's webhooks page).

Kept apart from billing/selectors.py only because several people were changing that file at
once; they belong there and may move."""

from django.db.models import Prefetch, QuerySet

from billing.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenants.models import Tenant


def webhook_endpoint_list(*, tenant: Tenant) -> QuerySet[WebhookEndpoint]:
    """The tenant's endpoints that are not deleted, oldest first."""
    return WebhookEndpoint.objects.filter(tenant=tenant, deleted_at__isnull=True).order_by(
        "created_at", "pk"
    )


def webhook_endpoint_get(*, tenant: Tenant, endpoint_id: int) -> WebhookEndpoint | None:
    """One of the tenant's endpoints that is not deleted; None for another tenant's id."""
    return webhook_endpoint_list(tenant=tenant).filter(pk=endpoint_id).first()


def webhook_delivery_list(
    *, tenant: Tenant, endpoint: WebhookEndpoint, limit: int = 50
) -> list[WebhookDelivery]:
    """The endpoint's latest deliveries, newest first, each with its attempts (`log`) in order:
    two queries whatever the number of deliveries."""
    attempts = WebhookAttempt.objects.filter(tenant=tenant).order_by("number")
    return list(
        WebhookDelivery.objects.filter(tenant=tenant, endpoint=endpoint)
        .order_by("-created_at", "-pk")
        .prefetch_related(Prefetch("log", queryset=attempts))[:limit]
    )
