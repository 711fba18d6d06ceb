"""A usage event as the integration reports it: its fields, their validation and the request
hash that tells a replay from a conflict."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone

from ledger.services import quantize_credits
from metering.exceptions import InvalidUsage
from metering.models import UsageEvent, WorkflowRun

COMPONENTS = ("input_tokens", "output_tokens", "tool_calls", "vector_reads", "orchestration_runs")
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_QUANTITY = Decimal("99999999999999.9999")  # NUMERIC(18, 4)
MAX_COMPONENT = 2**63 - 1


@dataclass(frozen=True)
class UsageInput:
    """One usage event as the integration reports it. `occurred_at` None means now."""

    idempotency_key: str
    action: str
    quantity: Decimal
    model_class: str = ""
    occurred_at: datetime | None = None
    outcome: str = UsageEvent.Outcome.SUCCESS
    labels: dict[str, Any] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    tool_calls: int = 0
    vector_reads: int = 0
    orchestration_runs: int = 0

    def components(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COMPONENTS}


def usage_input_validate(*, data: UsageInput, now: datetime) -> None:
    """Raises InvalidUsage naming the first bad field."""
    key = data.idempotency_key
    if not isinstance(key, str) or not key.strip() or len(key) > 255:
        raise InvalidUsage("idempotency_key", "Must be 1 to 255 characters.")
    if not data.action or len(data.action) > 64:
        raise InvalidUsage("action", "Must be 1 to 64 characters.")
    if len(data.model_class or "") > 64:
        raise InvalidUsage("model_class", "Must be at most 64 characters.")
    quantity = data.quantity
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise InvalidUsage("quantity", "A valid number is required.")
    if quantity <= 0:
        raise InvalidUsage("quantity", "Must be greater than 0.")
    if quantity != quantize_credits(quantity):
        raise InvalidUsage("quantity", "Ensure that there are no more than 4 decimal places.")
    if quantity > MAX_QUANTITY:
        raise InvalidUsage("quantity", f"Must be at most {MAX_QUANTITY}.")
    if data.outcome not in UsageEvent.Outcome.values:
        raise InvalidUsage("outcome", f"Must be one of {UsageEvent.Outcome.values}.")
    for name in COMPONENTS:
        value = getattr(data, name)
        if type(value) is not int or value < 0 or value > MAX_COMPONENT:
            raise InvalidUsage(name, "Must be a non-negative integer.")
    if not isinstance(data.labels, dict):
        raise InvalidUsage("labels", "Must be a JSON object.")
    occurred_at = data.occurred_at
    if occurred_at is not None:
        if timezone.is_naive(occurred_at):
            raise InvalidUsage("occurred_at", "Must carry a time zone.")
        if occurred_at > now + FUTURE_TOLERANCE:
            raise InvalidUsage("occurred_at", "Must not be more than 5 minutes in the future.")
        days = settings.CREDITLINE_BACKDATE_DAYS
        if occurred_at < now - timedelta(days=days):
            raise InvalidUsage(
                "occurred_at", f"Must not be older than the backdating window of {days} days."
            )


def usage_request_hash(
    *, data: UsageInput, workflow_run: WorkflowRun | None = None, step_index: int | None = None
) -> str:
    """SHA-256 of the canonical body: the same event spelled differently (1 vs 1.0000, +02:00
    vs Z, a component 0 vs left out) hashes the same. Call after usage_input_validate."""
    occurred_at = data.occurred_at
    canonical = {
        "action": data.action,
        "model_class": data.model_class or "",
        "quantity": str(quantize_credits(data.quantity)),
        "occurred_at": occurred_at.astimezone(UTC).isoformat() if occurred_at else None,
        "outcome": data.outcome,
        "labels": data.labels,
        "workflow_run": workflow_run.pk if workflow_run is not None else None,
        "step_index": step_index,
        **data.components(),
    }
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()
