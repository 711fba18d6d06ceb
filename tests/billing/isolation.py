"""Tenant A's billing rows for the isolation walk: B must never see A's top-ups, auto top-up
settings or webhook endpoints."""

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from billing.models import Contract, ContractInvoice, CreditPack
from billing.services import (
    auto_topup_policy_update,
    billing_customer_save,
    topup_create,
    webhook_endpoint_create,
)
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.isolation import MARKER, register, register_bodies


@register
def seed_billing(tenant: Tenant) -> dict[str, str]:
    # Packs are the vendor's catalogue, which every tenant sees: no MARKER in this one.
    pack, _ = CreditPack.objects.get_or_create(
        slug="isolation-pack",
        defaults={"name": "Isolation pack", "credits": Decimal(100), "price_minor": 1000},
    )
    top_up = topup_create(tenant=tenant, pack=pack, gateway="fake")
    endpoint = webhook_endpoint_create(tenant=tenant, url=f"https://{MARKER}.example/hooks")
    billing_customer_save(
        tenant=tenant, gateway="fake", customer_id=f"{MARKER}-cus", payment_method_id="pm_x"
    )
    auto_topup_policy_update(
        tenant=tenant,
        enabled=False,
        threshold=Decimal("12345"),
        pack=pack,
        monthly_cap_minor=987654,
    )
    _contract_invoice(tenant)
    return {
        "top_up_key": top_up.idempotency_key,
        "top_up_id": str(top_up.pk),
        "webhook_secret": endpoint.secret,
        "endpoint_id": str(endpoint.pk),
        "auto_topup_cap": "987654",
    }


@register_bodies
def billing_bodies(values: Mapping[str, str]) -> dict[str, Any]:
    # Cancelling takes no body: tenant A's pending top-up is cancelled, B's attempt is a 404.
    return {"top-up-cancel": {}}


@register
def seed_subscription(tenant: Tenant) -> dict[str, str]:
    """A subscription with an invoice, so that /api/v1/subscription has something to show."""
    from billing.models import Plan, PlanPrice, SubscriptionInvoice
    from billing.services.subscriptions import subscription_start

    plan, _ = Plan.objects.get_or_create(
        slug="isolation-plan",
        defaults={"name": "Isolation plan", "price_minor": 1000, "included_credits": Decimal(10)},
    )
    PlanPrice.objects.get_or_create(plan=plan, currency="USD", defaults={"base_minor": 1000})
    sub = subscription_start(tenant=tenant, plan=plan)
    SubscriptionInvoice.objects.create(
        tenant=tenant,
        subscription=sub,
        kind=SubscriptionInvoice.Kind.PERIOD,
        status=SubscriptionInvoice.Status.PAID,
        gateway="fake",
        gateway_reference=f"fin_{MARKER}",
        idempotency_key=f"invoice:fin_{MARKER}",
        period_index=0,
        plan=plan,
        seats=1,
        currency="USD",
        created_at=sub.created_at,
    )
    return {}


def _contract_invoice(tenant: Tenant) -> None:
    """An issued contract invoice of tenant A (GET /api/v1/contract-invoices)."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    contract = Contract.objects.create(
        tenant=tenant,
        name=f"{MARKER} contract",
        price_per_1000_minor=800,
        committed_credits=Decimal(1000),
        start_at=start,
        end_at=datetime(2027, 1, 1, tzinfo=UTC),
        rate_card=ratecard_seed_example(),
    )
    ContractInvoice.objects.create(
        tenant=tenant,
        contract=contract,
        kind=ContractInvoice.Kind.COMMITMENT,
        period_index=0,
        status=ContractInvoice.Status.OPEN,
        gateway="fake",
        gateway_reference=f"{MARKER}-invoice",
        number=f"{MARKER}-0001",
        idempotency_key=f"isolation:{tenant.pk}",
        description=f"{MARKER} commitment",
        credits=Decimal(1000),
        amount_minor=800,
        currency="USD",
        period_start=start,
        period_end=contract.end_at,
        created_at=start,
    )
