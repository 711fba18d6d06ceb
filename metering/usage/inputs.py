"""A usage event as the integration reports it: its parsing from JSON, its validation and the
request hash that tells a replay from a conflict.

Parsing and validation refuse with InvalidUsage naming the field, and raise nothing else
whatever the JSON, so that every bad event of a batch gets its own answer in its own slot and
nothing the database would refuse (a NUL, a lone surrogate, a number past its column) reaches
it. Neither needs a query or the clock: the occurred_at window is checked after the key lookup
(usage_window_check), so that an event recorded before the window closed still replays.
"""

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ledger.services import quantize_credits
from metering.exceptions import InvalidUsage
from metering.models import UsageEvent, WorkflowRun
from tenants.api.fields import BIGINT_MAX, INTEGER_MAX, text_problem

COMPONENTS = (
    "input_tokens",
    "output_tokens",
    "tool_calls",
    "vector_reads",
    "orchestration_runs",
    "gpu_seconds",
)
# In SQL over metering_usageevent aliased `e`: the event was reported without any cost
# component, so its COGS is unknown, not zero (the rollups count such events apart).
WITHOUT_COST_SQL = "(" + " AND ".join(f"e.{name} = 0" for name in COMPONENTS) + ")"
# The one component measured, not counted: seconds to the millisecond.
GPU_SECONDS = "gpu_seconds"
GPU_SECONDS_QUANTUM = Decimal("0.001")
FIELDS = frozenset(
    {
        "idempotency_key",
        "action",
        "quantity",
        "model_class",
        "occurred_at",
        "outcome",
        "labels",
        *COMPONENTS,
    }
)
FUTURE_TOLERANCE = timedelta(minutes=5)


def _decimal_max(name: str) -> Decimal:
    """The largest value UsageEvent's NUMERIC column `name` holds."""
    column = UsageEvent._meta.get_field(name)
    if not isinstance(column, models.DecimalField):
        raise TypeError(f"UsageEvent.{name} is not a DecimalField.")
    places = column.decimal_places or 0
    return Decimal(10) ** ((column.max_digits or 0) - places) - Decimal(10) ** -places


MAX_QUANTITY = _decimal_max("quantity")  # 99999999999999.9999
MAX_CREDITS = _decimal_max("credits")
MAX_COGS = _decimal_max("cogs_minor")  # 999999999999.99999999 minor units

# The largest count of each cost component: what its column holds (integer or bigint), and for
# the bigint ones less, so that the event's cost fits `cogs_minor` too: at every bound at once,
# priced up to one minor unit per unit (a cent a token or a read, far above such prices), the
# five counts together cost at most MAX_COGS. GPU seconds came later and are bounded at a year
# of GPU time per event: an event at every bound at once, like one under a dearer catalog, is
# refused on its cost (metering.usage.pricing), never stored wrong.
_COUNTS = tuple(name for name in COMPONENTS if name != GPU_SECONDS)
_COST_SHARE = int(MAX_COGS) // len(_COUNTS)  # 199,999,999,999
COMPONENT_LIMITS = {
    "input_tokens": min(BIGINT_MAX, _COST_SHARE),
    "output_tokens": min(BIGINT_MAX, _COST_SHARE),
    "tool_calls": min(INTEGER_MAX, _COST_SHARE),
    "vector_reads": min(BIGINT_MAX, _COST_SHARE),
    "orchestration_runs": min(INTEGER_MAX, _COST_SHARE),
}
MAX_GPU_SECONDS = Decimal(366 * 24 * 3600)

NOT_A_NUMBER = "A valid number is required."
NOT_A_DATETIME = "Must be an ISO 8601 date and time with a time zone."
NOT_CLEAN_TEXT = "Must not contain NUL characters or unpaired surrogates."
NOT_CLEAN_JSON = (
    "Must be a JSON object of JSON values, without NUL characters, unpaired surrogates or "
    "non-finite numbers."
)
NOT_A_COUNT = "Must be a non-negative integer."
NOT_SECONDS = "Must be a non-negative number of seconds with at most 3 decimal places."
UNKNOWN_FIELD = "Unknown field."

# A quantity given as a string: plain decimal notation in ASCII digits. Decimal() alone would
# also read "1_000", " 1 ", "NaN" and other scripts' digits.
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


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
    gpu_seconds: Decimal = Decimal(0)

    def components(self) -> dict[str, int | Decimal]:
        return {name: getattr(self, name) for name in COMPONENTS}


# ---------------------------------------------------------------------------------------------
# Text and JSON the database can store


def clean_text(value: str) -> bool:
    """No NUL (PostgreSQL text cannot hold it) and no lone surrogate (not encodable)."""
    return not text_problem(value)


def clean_json(value: Any) -> bool:
    """JSON values only (what a JSON body parses to), whose strings and keys are clean_text and
    whose numbers are finite (jsonb has no NaN or Infinity). Iterative: any depth, no
    recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if not clean_text(item):
                return False
        elif isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str) or not clean_text(key):
                    return False
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return False
        elif item is not None and not isinstance(item, int):  # bool is an int
            return False
    return True


def printable(name: str) -> str:
    """A field name as an error may echo it: lone surrogates escaped (the JSON renderer writes
    UTF-8 and cannot encode them)."""
    return name.encode("utf-8", "backslashreplace").decode("utf-8")


# ---------------------------------------------------------------------------------------------
# Parsing


def usage_input_parse(raw: Any) -> UsageInput:
    """A JSON object → UsageInput, or InvalidUsage naming the first bad field (types and
    syntax; usage_input_validate checks the values). Fields it does not know are refused, not
    ignored: a misspelt count would otherwise be charged as 0."""
    if not isinstance(raw, dict):
        raise InvalidUsage("non_field_errors", "Each event must be a JSON object.")
    for name in raw:
        if name not in FIELDS:
            raise InvalidUsage(printable(str(name)), UNKNOWN_FIELD)
    labels = raw.get("labels")
    if labels is None:
        labels = {}
    elif not isinstance(labels, dict):
        raise InvalidUsage("labels", "Must be a JSON object.")
    return UsageInput(
        idempotency_key=_text(raw, "idempotency_key", required=True),
        action=_text(raw, "action", required=True),
        quantity=_quantity(raw.get("quantity", 1)),
        model_class=_text(raw, "model_class"),
        occurred_at=_occurred_at(raw.get("occurred_at")),
        outcome=_text(raw, "outcome") or UsageEvent.Outcome.SUCCESS,
        labels=labels,
        **{name: _count(raw, name) for name in _COUNTS},
        gpu_seconds=_seconds(raw.get(GPU_SECONDS)),
    )


def _text(raw: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = raw.get(name)
    if value is None:
        if required:
            raise InvalidUsage(name, "This field is required.")
        return ""
    if not isinstance(value, str):
        raise InvalidUsage(name, "Not a valid string.")
    return value


def _quantity(value: Any) -> Decimal:
    """A JSON number or a string in plain decimal notation; the range is usage_input_validate's
    (a Decimal holds 10^400 exactly, so nothing is lost before it is checked)."""
    return _number(value, "quantity", NOT_A_NUMBER)


def _seconds(value: Any) -> Decimal:
    """GPU seconds: left out or null is 0, otherwise read as a quantity is."""
    return Decimal(0) if value is None else _number(value, GPU_SECONDS, NOT_SECONDS)


def _number(value: Any, name: str, message: str) -> Decimal:
    if isinstance(value, bool):
        raise InvalidUsage(name, message)
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):  # 1e309 parses to inf
            raise InvalidUsage(name, message)
        return Decimal(repr(value))
    if not isinstance(value, str) or not _NUMBER.fullmatch(value):
        raise InvalidUsage(name, message)
    try:
        return Decimal(value)
    except InvalidOperation:  # an exponent beyond what Decimal can hold
        raise InvalidUsage(name, message) from None


def _occurred_at(value: Any) -> datetime | None:
    """An aware datetime in UTC. Impossible ones (February 30th, 24:00, a 60th second, an
    offset of a day or more) and ones UTC cannot hold (year 1 at +01:00) are refused."""
    if value is None:
        return None
    try:
        # fromisoformat, which parse_datetime tries first, stops reading at a NUL.
        parsed = parse_datetime(value) if isinstance(value, str) and clean_text(value) else None
    except ValueError:
        parsed = None
    if parsed is None:
        raise InvalidUsage("occurred_at", NOT_A_DATETIME)
    return _utc(parsed)


def _utc(value: datetime) -> datetime:
    if timezone.is_naive(value):
        raise InvalidUsage("occurred_at", "Must carry a time zone.")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidUsage("occurred_at", "Must lie between the years 1 and 9999 in UTC.") from None


def _count(raw: dict[str, Any], name: str) -> int:
    value = raw.get(name, 0)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidUsage(name, NOT_A_COUNT)
    return value


# ---------------------------------------------------------------------------------------------
# Validation


def usage_input_validate(*, data: UsageInput) -> None:
    """Raises InvalidUsage naming the first bad field; no query, no clock (see the module
    docstring)."""
    key = data.idempotency_key
    if not isinstance(key, str) or not key.strip() or len(key) > 255:
        raise InvalidUsage("idempotency_key", "Must be 1 to 255 characters.")
    _check_text("idempotency_key", key)
    if not isinstance(data.action, str) or not data.action or len(data.action) > 64:
        raise InvalidUsage("action", "Must be 1 to 64 characters.")
    _check_text("action", data.action)
    model_class = data.model_class or ""
    if not isinstance(model_class, str) or len(model_class) > 64:
        raise InvalidUsage("model_class", "Must be at most 64 characters.")
    _check_text("model_class", model_class)
    _check_quantity(data.quantity)
    if data.outcome not in UsageEvent.Outcome.values:
        raise InvalidUsage("outcome", f"Must be one of {UsageEvent.Outcome.values}.")
    for name, limit in COMPONENT_LIMITS.items():
        value = getattr(data, name)
        if type(value) is not int or value < 0:
            raise InvalidUsage(name, NOT_A_COUNT)
        if value > limit:
            raise InvalidUsage(name, f"Must be at most {limit}.")
    _check_seconds(data.gpu_seconds)
    if not isinstance(data.labels, dict):
        raise InvalidUsage("labels", "Must be a JSON object.")
    if not clean_json(data.labels):
        raise InvalidUsage("labels", NOT_CLEAN_JSON)
    if data.occurred_at is not None:
        if not isinstance(data.occurred_at, datetime):
            raise InvalidUsage("occurred_at", NOT_A_DATETIME)
        _utc(data.occurred_at)


def _check_text(name: str, value: str) -> None:
    if not clean_text(value):
        raise InvalidUsage(name, NOT_CLEAN_TEXT)


def _check_seconds(value: Any) -> None:
    """Finite, not negative, within its limit, to the millisecond."""
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        raise InvalidUsage(GPU_SECONDS, NOT_SECONDS)
    if value > MAX_GPU_SECONDS:  # before quantizing, which past 10^25 would raise
        raise InvalidUsage(GPU_SECONDS, f"Must be at most {MAX_GPU_SECONDS}.")
    if value != value.quantize(GPU_SECONDS_QUANTUM):
        raise InvalidUsage(GPU_SECONDS, NOT_SECONDS)


def _check_quantity(quantity: Any) -> None:
    """The range before the places: quantizing 1e24 to 4 places needs more digits than the
    decimal context has and would raise."""
    if not isinstance(quantity, Decimal) or not quantity.is_finite():
        raise InvalidUsage("quantity", NOT_A_NUMBER)
    if quantity <= 0:
        raise InvalidUsage("quantity", "Must be greater than 0.")
    if quantity > MAX_QUANTITY:
        raise InvalidUsage("quantity", f"Must be at most {MAX_QUANTITY}.")
    if quantity != quantize_credits(quantity):
        raise InvalidUsage("quantity", "Ensure that there are no more than 4 decimal places.")


def usage_window_check(*, data: UsageInput, now: datetime) -> None:
    """occurred_at at most 5 minutes ahead and at most CREDITLINE_BACKDATE_DAYS back. Checked
    for new events only, after the key lookup: a replay answers whatever its age."""
    occurred_at = data.occurred_at
    if occurred_at is None:
        return
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
        **_hashed_components(data),
    }
    body = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _hashed_components(data: UsageInput) -> dict[str, int | str]:
    """The counts as they are, and GPU seconds as canonical text only when there are some: an
    event hashed before the component existed hashes the same today, so it still replays."""
    hashed: dict[str, int | str] = {name: getattr(data, name) for name in COMPONENT_LIMITS}
    if data.gpu_seconds:
        hashed[GPU_SECONDS] = f"{data.gpu_seconds.quantize(GPU_SECONDS_QUANTUM):f}"
    return hashed
