"""Tenant A on its own rate card: tenant B's GET /api/v1/rate-card must never show it. The card
also prices `chat`, so the walk's step body (tests/metering/isolation.py) is valid for A."""

from django.utils import timezone

from ratecards.services import (
    rate_set,
    ratecard_assign,
    ratecard_create,
    ratecard_version_create_draft,
    ratecard_version_publish,
)
from tenants.models import Tenant
from tests.isolation import MARKER, register


@register
def seed_rate_card(tenant: Tenant) -> dict[str, str]:
    card = ratecard_create(name=f"{MARKER} card", slug=f"{MARKER}-{tenant.slug}"[:63])
    draft = ratecard_version_create_draft(rate_card=card)
    rate_set(version=draft, action=f"{MARKER}-action", credits_per_unit="7.7777")
    rate_set(version=draft, action="chat", credits_per_unit="1")
    ratecard_version_publish(version=draft, effective_from=timezone.now())
    ratecard_assign(tenant=tenant, rate_card=card, mode="follow")
    return {"ratecard_slug": card.slug, "ratecard_action": f"{MARKER}-action"}
