"""Tenant A's own identity for the isolation walk: a member, an API key and an invitation (its
link's token fills the portal's join page) B must never see."""

from django.contrib.auth.models import User

from tenants.models import Membership, Tenant
from tenants.services import api_key_create, membership_add, membership_invite
from tests.isolation import MARKER, register


@register
def seed_tenants(tenant: Tenant) -> dict[str, str]:
    user = User.objects.create_user(username=f"{MARKER}-owner", email=f"{MARKER}@example.com")
    owner = membership_add(tenant=tenant, user=user, role=Membership.Role.OWNER)
    issued = api_key_create(tenant=tenant, name=f"{MARKER} key")
    token = membership_invite(
        actor=owner,
        email=f"{MARKER}-invited@example.com",
        role=Membership.Role.MEMBER,
        link=lambda token: token,
    )
    return {
        "tenant_slug": tenant.slug,
        "api_key_prefix": issued.api_key.prefix,
        "api_key_plaintext": issued.plaintext,
        "token": token,
    }
