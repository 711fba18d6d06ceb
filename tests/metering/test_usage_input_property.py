"""Whatever JSON an event is, parsing and validating it either succeed or raise InvalidUsage:
nothing else escapes, so a batch can always put the refusal in the event's own slot. No
database: this is the pure front of the path."""

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from metering.exceptions import InvalidUsage
from metering.usage.inputs import (
    FIELDS,
    clean_json,
    clean_text,
    usage_input_parse,
    usage_input_validate,
    usage_request_hash,
)

# Every string, lone surrogates and NULs included (what a JSON body can carry).
_text = st.text(st.characters(codec=None, categories=None), max_size=300)
_scalars = st.none() | st.booleans() | st.integers() | st.floats() | _text
_json = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text, children, max_size=4),
    max_leaves=12,
)
_numbers_as_text = st.from_regex(r"\A[-+ _0-9.eE]{0,30}\Z") | st.sampled_from(
    ["1e24", "1e309", "1" + "0" * 400, "NaN", "Infinity", "1_000", " 1 ", "0.00001", "1e-999"]
)
_datetimes_as_text = st.from_regex(
    r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})?\Z"
)
_values = {
    "quantity": _json | _numbers_as_text,
    "occurred_at": _json | _datetimes_as_text,
    "idempotency_key": _json,
    "action": _json,
}
_events = st.fixed_dictionaries(
    {},
    optional={name: _values.get(name, _json) for name in sorted(FIELDS | {"tokens", "Quantity"})},
)


@settings(max_examples=400, deadline=None)
@given(_events | _json)
def test_parse_and_validate_raise_nothing_but_invalid_usage(raw: Any) -> None:
    try:
        data = usage_input_parse(raw)
        usage_input_validate(data=data)
    except InvalidUsage as exc:
        # The error itself can always be rendered as UTF-8 JSON.
        json.dumps(exc.details, ensure_ascii=False).encode("utf-8")
        return
    # What passes is what the database stores: clean text, clean JSON, a hashable body.
    assert clean_text(data.idempotency_key)
    assert clean_text(data.action)
    assert clean_json(data.labels)
    usage_request_hash(data=data)
