"""Reads of tenants and keys."""

from django.contrib.auth.models import User
from django.db.models import QuerySet

from tenants.exceptions import TenantNotFound
from tenants.models import ApiKey, Membership, Tenant


def tenant_get(*, slug: str) -> Tenant:
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist:
        raise TenantNotFound(f"No tenant has the slug '{slug}'.", slug=slug) from None


def api_key_get_by_prefix(*, prefix: str) -> ApiKey | None:
    return ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()


def tenant_list_for_user(*, user: User) -> QuerySet[Tenant]:
    tenant_ids = Membership.objects.filter(user=user).values("tenant_id")
    return Tenant.objects.filter(pk__in=tenant_ids).order_by("slug")
