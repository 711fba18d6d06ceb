"""Every write of usage events, as metering's callers import them. The code lives in the
metering.usage package: inputs (UsageInput, validation, the request hash), pricing (prices and
costs, before any lock), record (the debit and the row, one event or a batch) and refund (a
staff refund of an event's debit); workflow runs are in metering.workflows."""

from metering.usage.inputs import (
    COMPONENT_LIMITS,
    COMPONENTS,
    GPU_SECONDS,
    GPU_SECONDS_QUANTUM,
    MAX_GPU_SECONDS,
    UsageInput,
    clean_text,
    usage_input_parse,
    usage_input_validate,
    usage_request_hash,
    usage_window_check,
)
from metering.usage.record import (
    BATCH_LIMIT,
    BatchItemResult,
    Event,
    RecordedEvent,
    RecordResult,
    usage_event_record,
    usage_event_record_batch,
)
from metering.usage.recorded import PriorEvents, usage_prior_query, usage_prior_read
from metering.usage.refund import Refundable, usage_event_refund, usage_event_refundable_get

__all__ = [
    "BATCH_LIMIT",
    "COMPONENTS",
    "COMPONENT_LIMITS",
    "GPU_SECONDS",
    "GPU_SECONDS_QUANTUM",
    "MAX_GPU_SECONDS",
    "BatchItemResult",
    "Event",
    "PriorEvents",
    "RecordResult",
    "RecordedEvent",
    "Refundable",
    "UsageInput",
    "clean_text",
    "usage_event_record",
    "usage_event_record_batch",
    "usage_event_refund",
    "usage_event_refundable_get",
    "usage_input_parse",
    "usage_input_validate",
    "usage_prior_query",
    "usage_prior_read",
    "usage_request_hash",
    "usage_window_check",
]
