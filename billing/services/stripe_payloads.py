"""What a validly signed Stripe delivery says, read defensively.

A signature proves who sent the bytes, not that they are the event we expect. Whatever they
hold, the delivery is stored and answered 200 (a 4xx would only make Stripe retry it and then
disable the endpoint): an envelope that cannot be read is stored with its error and never
processed; an object whose fields have the wrong shape stops its handler with
`MalformedEvent`, which is recorded as the event's error and not retried (the same bytes would
fail the same way). The vendor sees both in the admin (StripeEvent, filtered by problem).
"""

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from tenants.api.fields import BIGINT_MAX

MAX_DEPTH = 32  # Stripe's events nest a few levels; deeper is not an event.
MAX_RAW_CHARS = 65_536  # of an unreadable body, kept for the admin
ID_MAX_LENGTH = 255  # StripeEvent.event_id
TYPE_MAX_LENGTH = 100  # StripeEvent.type
REFERENCE_MAX_LENGTH = 255  # TopUp.gateway_reference, BillingCustomer ids
MALFORMED = "Malformed: "  # how a malformed event's error begins


class MalformedEvent(Exception):
    """The event's shape is not what its type promises."""


@dataclass(frozen=True)
class StripeEnvelope:
    event_id: str
    type: str
    payload: dict[str, Any]
    error: str  # empty when the envelope is sound


def _clean_text(value: str) -> str:
    # PostgreSQL's text and jsonb hold neither NUL nor lone surrogates.
    return value.encode("utf-8", "replace").decode("utf-8").replace("\x00", "\ufffd")


def _clean(value: Any, depth: int = 0) -> Any:
    """A copy that the database can store; MalformedEvent when nested past MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise MalformedEvent(f"the event nests deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, dict):
        return {_clean_text(k): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        # NaN, or a number too large for a double (1e400 parses to infinity): jsonb holds
        # neither, and Stripe never sends one; stored as null.
        return None
    return value


_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}


def _type_name(value: Any) -> str:
    """The JSON type of a parsed value, with its article: `an object`, `null`."""
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "a number")


def _unreadable(payload: bytes, error: str, body: dict[str, Any] | None = None) -> StripeEnvelope:
    """Stored under an id made from the bytes, so a redelivery of them is a duplicate."""
    digest = hashlib.sha256(payload).hexdigest()[:32]
    if body is None:
        body = {"unparsed": _clean_text(payload.decode("utf-8", "replace"))[:MAX_RAW_CHARS]}
    return StripeEnvelope(f"malformed_{digest}", "", body, error)


def _json_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def stripe_envelope_read(payload: bytes) -> StripeEnvelope:
    """The event's id, type and body, or, for a body that is not a Stripe event, the error."""
    try:
        body = json.loads(payload, parse_constant=_json_constant)
    except RecursionError:
        return _unreadable(payload, MALFORMED + f"the event nests deeper than {MAX_DEPTH} levels.")
    except ValueError:
        return _unreadable(payload, MALFORMED + "the body is not JSON.")
    if not isinstance(body, dict):
        return _unreadable(
            payload, MALFORMED + f"the body is {_type_name(body)}, not an event object."
        )
    try:
        body = _clean(body)
    except MalformedEvent as exc:
        return _unreadable(payload, MALFORMED + f"{exc}")
    event_id, event_type = body.get("id"), body.get("type")
    if not isinstance(event_id, str):
        message = MALFORMED + f"id is {_type_name(event_id)}, not a string."
        return _unreadable(payload, message, body)
    if not 0 < len(event_id) <= ID_MAX_LENGTH:
        message = MALFORMED + f"id is empty or longer than {ID_MAX_LENGTH} characters."
        return _unreadable(payload, message, body)
    problem = ""
    if not isinstance(event_type, str):
        problem = MALFORMED + f"type is {_type_name(event_type)}, not a string."
        event_type = ""
    elif not event_type:
        problem = MALFORMED + "type is empty."
    elif len(event_type) > TYPE_MAX_LENGTH:
        problem = MALFORMED + f"type is longer than {TYPE_MAX_LENGTH} characters."
        event_type = event_type[:TYPE_MAX_LENGTH]
    else:
        data = body.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            problem = MALFORMED + "data.object is missing or not an object."
    return StripeEnvelope(event_id, event_type, body, problem)


class ObjectReader:
    """Typed reads of an event's `data.object`; a field of the wrong type or out of range is a
    MalformedEvent naming it. Absent optional fields read as None."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.obj = obj

    @classmethod
    def of_event(cls, payload: dict[str, Any]) -> "ObjectReader":
        data = payload.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise MalformedEvent("data.object is missing or not an object.")
        return cls(obj)

    def _get(self, key: str, kind: type, expected: str, required: bool) -> Any:
        value = self.obj.get(key)
        if value is None:
            if required:
                raise MalformedEvent(f"data.object.{key} is missing.")
            return None
        if not isinstance(value, kind) or isinstance(value, bool):
            raise MalformedEvent(f"data.object.{key} is {_type_name(value)}, not {expected}.")
        return value

    def text(self, key: str, *, required: bool = False) -> str | None:
        value: str | None = self._get(key, str, "a string", required)
        if value is not None and len(value) > REFERENCE_MAX_LENGTH:
            raise MalformedEvent(f"data.object.{key} is longer than {REFERENCE_MAX_LENGTH}.")
        return value

    def amount(self, key: str) -> int | None:
        value: int | None = self._get(key, int, "an integer", False)
        if value is not None and not 0 <= value <= BIGINT_MAX:
            raise MalformedEvent(f"data.object.{key} is out of range.")
        return value

    def mapping(self, key: str) -> dict[str, Any]:
        value: dict[str, Any] | None = self._get(key, dict, "an object", False)
        return value or {}

    def metadata_id(self, key: str) -> int | None:
        """An id we wrote into the metadata (a decimal string); None when absent or not ours."""
        value = self.mapping("metadata").get(key)
        if isinstance(value, bool) or not isinstance(value, str | int):
            return None
        text = str(value)
        if not text.isascii() or not text.isdigit() or not 0 < int(text) <= BIGINT_MAX:
            return None
        return int(text)
