"""Every write to tenants, memberships and API keys."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants.cache import config_stamp_bump
from tenants.models import ApiKey, Membership, Tenant

API_KEY_PREFIX_LEN = 8
DEFAULT_SCOPES = (ApiKey.Scope.READ.value, ApiKey.Scope.WRITE.value)


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its plaintext, which exists only here and is never stored."""

    api_key: ApiKey
    plaintext: str


def api_key_hash(plaintext: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no stretching needed).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_parse(plaintext: str) -> str | None:
    """The prefix of a well-formed key (`cl_<prefix>_<secret>`), or None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != "cl" or len(parts[1]) != API_KEY_PREFIX_LEN or not parts[2]:
        return None
    return parts[1]


def tenant_create(*, name: str, slug: str | None = None) -> Tenant:
    base = slug or slugify(name)[:50] or "tenant"
    candidate, n = base, 1
    while Tenant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Tenant.objects.create(name=name, slug=candidate)


def tenant_suspend(*, tenant: Tenant) -> Tenant:
    """Its API keys are refused (403 tenant_suspended) from the next request of every process."""
    return _tenant_set_status(tenant=tenant, status=Tenant.Status.SUSPENDED)


def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    return _tenant_set_status(tenant=tenant, status=Tenant.Status.ACTIVE)


def _tenant_set_status(*, tenant: Tenant, status: str) -> Tenant:
    with transaction.atomic():
        changed = Tenant.objects.filter(pk=tenant.pk).exclude(status=status).update(status=status)
        if changed:
            config_stamp_bump()  # cached keys carry their tenant's status
    tenant.status = status
    return tenant


def tenant_runs_refused_set(*, tenant_id: int, at: datetime | None) -> bool:
    """Refuse new workflow runs of the tenant from `at` (None: refuse none). Billing's call:
    a past-due subscription past its grace days. Returns whether anything changed."""
    with transaction.atomic():
        changed = (
            Tenant.objects.filter(pk=tenant_id)
            .exclude(runs_refused_from=at)
            .update(runs_refused_from=at)
        )
        if changed:
            config_stamp_bump()  # cached keys carry their tenant
    return bool(changed)


def membership_add(*, tenant: Tenant, user: User, role: str = Membership.Role.MEMBER) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    return membership


def api_key_create(
    *, tenant: Tenant, name: str, scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES
) -> IssuedKey:
    valid = set(ApiKey.Scope.values)
    unknown = [s for s in scopes if s not in valid]
    if unknown or not scopes:
        raise ValueError(f"Scopes must be a non-empty subset of {sorted(valid)}; got {scopes}.")
    prefix = secrets.token_hex(API_KEY_PREFIX_LEN // 2)
    plaintext = f"cl_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(plaintext),
        scopes=sorted(set(scopes)),
    )
    return IssuedKey(api_key=api_key, plaintext=plaintext)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            config_stamp_bump()  # every process refuses the key from its next request
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use at most once a minute, so the hot path rarely writes. The throttle is the
    instance's last_used_at, which the API key cache keeps between requests (tenants.selectors)."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < 60:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now
