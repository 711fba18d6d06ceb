"""Factories and helpers for usage events. Events are made through the services (the only way
one gets its price, COGS and debit); credits come from the ledger's own grant."""

from decimal import Decimal
from typing import Any

import factory

from ledger.models import CreditBucket
from ledger.services import ledger_grant
from metering.services import UsageInput
from tenants.models import Tenant


class UsageInputFactory(factory.Factory):
    class Meta:
        model = UsageInput

    idempotency_key = factory.Sequence(lambda n: f"evt-{n}")
    action = "chat"
    quantity = Decimal("1")


def fund(
    tenant: Tenant,
    credits: int | str,
    *,
    price_minor: int = 0,
    reference: str = "pack-1",
    policy: str = CreditBucket.Policy.PERMANENT,
    source: str = CreditBucket.Source.TOPUP,
    **kwargs: Any,
) -> CreditBucket:
    """Grant `credits` to the tenant (a top-up pack by default, `price_minor` paid for it)."""
    return ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=policy,
        source=source,
        external_reference=reference,
        price_minor=price_minor,
        **kwargs,
    ).bucket


def event_json(**fields: Any) -> dict[str, Any]:
    """A POST body for /api/v1/usage-events: `chat` x1 unless told otherwise."""
    return {"idempotency_key": "evt-1", "action": "chat", "quantity": "1", **fields}


def invalid_input(field: str, message: str) -> dict[str, Any]:
    """The 422 body that names one bad field."""
    return {
        "error": {
            "code": "invalid_input",
            "message": f"{field}: {message}",
            "fields": {field: [message]},
        }
    }
