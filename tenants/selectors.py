"""Reads of tenants and keys."""

import hmac
from collections.abc import Callable

from django.contrib.auth.models import User
from django.db.models import Case, F, IntegerField, QuerySet, When
from django.utils import timezone

from tenants.cache import StampedCache
from tenants.exceptions import TenantNotFound
from tenants.models import ApiKey, Invitation, Membership, Tenant

# SHA-256 of a presented key (never the key) → the ApiKey row with its tenant, as loaded under
# the stamp (tenants/cache.py). A hit costs no query; its instances are shared by the requests
# of this process, and api_key_touch's throttle lives on them (last_used_at).
api_key_cache: StampedCache[str, ApiKey] = StampedCache("api_keys", maxsize=4096)

# Compared against when no key matched, so a miss and a wrong secret take the same time.
_NO_KEY_HASH = "0" * 64


def tenant_get(*, slug: str) -> Tenant:
    try:
        return Tenant.objects.get(slug=slug)
    except Tenant.DoesNotExist:
        raise TenantNotFound(f"No tenant has the slug '{slug}'.", slug=slug) from None


def api_key_get_by_prefix(*, prefix: str) -> ApiKey | None:
    return ApiKey.objects.select_related("tenant").filter(prefix=prefix).first()


def api_key_get_cached(
    *,
    key_hash: str,
    prefix: str | None,
    stamp: int,
    before_query: Callable[[], None] | None = None,
) -> ApiKey | None:
    """The key (revoked or not) whose SHA-256 is `key_hash`, with its tenant; None if none is.

    Served from api_key_cache while `stamp` is the one the entry was loaded under; otherwise one
    query by the key's (unique) prefix, after `before_query` (which may raise to prevent it).
    Either way the stored hash is compared in constant time. Misses are not cached: a new key
    needs no bump to work at once.
    """
    api_key = api_key_cache.get(key_hash, stamp)
    hit = api_key is not None
    if not hit:
        if before_query is not None:
            before_query()
        api_key = api_key_get_by_prefix(prefix=prefix) if prefix else None
    if not hmac.compare_digest(key_hash, api_key.key_hash if api_key else _NO_KEY_HASH):
        return None
    if not hit and api_key is not None:
        api_key_cache.put(key_hash, stamp, api_key)
    return api_key


def tenant_list_for_user(*, user: User) -> QuerySet[Tenant]:
    tenant_ids = Membership.objects.filter(user=user).values("tenant_id")
    return Tenant.objects.filter(pk__in=tenant_ids).order_by("slug")


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    """The tenant's keys: live ones first, newest first within each."""
    return ApiKey.objects.filter(tenant=tenant).order_by(
        F("revoked_at").desc(nulls_first=True), "-created_at", "-pk"
    )


def membership_list(*, tenant: Tenant) -> QuerySet[Membership]:
    """The tenant's members with their users, owners first, then by when they joined."""
    order = Case(
        *(When(role=role, then=rank) for rank, role in enumerate(Membership.Role.values)),
        output_field=IntegerField(),
    )
    return (
        Membership.objects.filter(tenant=tenant)
        .select_related("user")
        .order_by(order, "created_at", "pk")
    )


def invitation_pending_list(*, tenant: Tenant) -> QuerySet[Invitation]:
    """The tenant's invitations that a link could still accept, oldest first, with who sent
    them (tenants.models.Invitation)."""
    return (
        Invitation.objects.filter(
            tenant=tenant, status=Invitation.Status.PENDING, expires_at__gt=timezone.now()
        )
        .select_related("invited_by")
        .order_by("created_at", "pk")
    )


def invitation_get(*, tenant: Tenant, invitation_id: int) -> Invitation | None:
    return Invitation.objects.filter(tenant=tenant, pk=invitation_id).first()
