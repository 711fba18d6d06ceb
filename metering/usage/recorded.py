"""Usage events as the hot path reads and writes them, without model instances: RecordedEvent
rows, and the lookup of the events already recorded with some keys (a replay is answered from
it, so it reads every column the API shows).

The lookup is one statement (`usage_prior_query`), which the API runs together with the
request's config stamp (TenantApiView.stamp_companion): a replayed key is then answered after
one round trip. `PriorEvents` says for which tenant and keys it was read, so that the recording
uses it only for those.
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from metering.models import UsageEvent
from ratecards.models import RateCardVersion


@dataclass(frozen=True, slots=True)
class VersionRef:
    """The rate card version an event was priced by, as the event's row names it."""

    pk: int
    number: int


@dataclass(slots=True)
class RecordedEvent:
    """A usage event as it was written: the attributes of a UsageEvent row that the API and
    workflows read, without building the model."""

    pk: int
    idempotency_key: str
    request_hash: str
    action: str
    model_class: str
    quantity: Decimal
    occurred_at: datetime
    outcome: str
    labels: dict[str, Any]
    workflow_run_id: int | None
    step_index: int | None
    credits: Decimal
    rate_card_version: RateCardVersion | VersionRef
    ledger_transaction_id: int | None
    buckets: list[dict[str, Any]]
    input_tokens: int
    output_tokens: int
    tool_calls: int
    vector_reads: int
    orchestration_runs: int
    gpu_seconds: Decimal
    cogs_minor: Decimal
    cogs_currency: str
    revenue_minor: Decimal
    revenue_currency: str
    available_after: Decimal
    created_at: datetime


Event = UsageEvent | RecordedEvent

# RecordedEvent's fields in the order _PRIOR reads them, the version's two apart.
_BEFORE_VERSION = (
    "pk",
    "idempotency_key",
    "request_hash",
    "action",
    "model_class",
    "quantity",
    "occurred_at",
    "outcome",
    "labels",
    "workflow_run_id",
    "step_index",
    "credits",
)
_AFTER_VERSION = (
    "ledger_transaction_id",
    "buckets",
    "input_tokens",
    "output_tokens",
    "tool_calls",
    "vector_reads",
    "orchestration_runs",
    "gpu_seconds",
    "cogs_minor",
    "cogs_currency",
    "revenue_minor",
    "revenue_currency",
    "available_after",
    "created_at",
)


# metering/sql/record_v2.sql: a plain `= ANY` on the unique (tenant, key) index
# (docs/architecture.md, "Indexes") in a function, so that it is planned once per connection;
# its columns are PRIOR_COLUMNS.
_PRIOR = "SELECT * FROM metering_usage_prior(%s, %s::varchar[])"
PRIOR_COLUMNS = (
    *("id" if name == "pk" else name for name in _BEFORE_VERSION),
    "rate_card_version_id",
    "version_number",
    *_AFTER_VERSION,
)


def json_value(value: Any) -> Any:
    """A jsonb column as a raw query returns it: text under Django's connections."""
    return json.loads(value) if isinstance(value, str) else value


@dataclass(frozen=True)
class PriorEvents:
    """The events recorded with `keys` for the tenant, as one statement read them."""

    tenant_id: int
    keys: frozenset[str]
    events: dict[str, RecordedEvent]

    def covers(self, *, tenant_id: int, keys: Iterable[str]) -> bool:
        return tenant_id == self.tenant_id and self.keys.issuperset(keys)


def usage_prior_query(*, tenant_id: int, keys: Sequence[str]) -> tuple[str, list[Any]]:
    """The statement that reads the events recorded with `keys` (clean text only: validated
    keys, or ones the caller checked with metering.usage.inputs.clean_text)."""
    return _PRIOR, [tenant_id, list(keys)]


def usage_prior_read(
    *, tenant_id: int, keys: Sequence[str], rows: Iterable[Sequence[Any]]
) -> PriorEvents:
    """PriorEvents from the rows of usage_prior_query(tenant_id, keys)."""
    events = {}
    split = len(_BEFORE_VERSION)
    for row in rows:
        event = RecordedEvent(
            **dict(zip(_BEFORE_VERSION, row[:split], strict=True)),
            rate_card_version=VersionRef(pk=row[split], number=row[split + 1]),
            **dict(zip(_AFTER_VERSION, row[split + 2 :], strict=True)),
        )
        # Django reads jsonb as text (JSONField parses it itself).
        event.labels = json_value(event.labels)
        event.buckets = json_value(event.buckets)
        events[event.idempotency_key] = event
    return PriorEvents(tenant_id=tenant_id, keys=frozenset(keys), events=events)
