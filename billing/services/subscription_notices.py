"""What a subscription's outgoing webhooks say (`subscription.activated`, `.past_due`,
`.canceled`, `.renewed`). The services that change a subscription publish them as domain events
(tenants.events.publish) in the transaction of the change, so billing's receiver writes the
webhook fan-out to the outbox with it: a change that rolls back announces nothing."""

from datetime import datetime
from typing import Any

from billing.models import Subscription


def _when(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def subscription_data(sub: Subscription, **extra: Any) -> dict[str, Any]:
    """The subscription as its webhooks show it (no gateway ids), with the event's own fields."""
    return {
        "subscription_id": sub.pk,
        "plan": sub.plan.slug,
        "seats": sub.seats,
        "status": sub.status,
        "currency": sub.currency,
        "current_period_start": _when(sub.current_period_start),
        "current_period_end": _when(sub.current_period_end),
        "cancel_at_period_end": sub.cancel_at_period_end,
        **{k: _when(v) if isinstance(v, datetime) else v for k, v in extra.items()},
    }
