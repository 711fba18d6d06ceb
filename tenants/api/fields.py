"""What PostgreSQL's columns can hold, for input checks everywhere (API serializers, metering's
event validation, Stripe payloads): a value its column cannot hold is a 422 naming the field,
not a database error. The ranges of the integer columns (narrower bounds where the meaning is
narrower: a percentage, 1 to 99), and the text that text and jsonb columns refuse."""

import re

SMALLINT_MAX = 2**15 - 1  # smallint: PositiveSmallIntegerField, SmallIntegerField
INTEGER_MAX = 2**31 - 1  # integer: IntegerField, PositiveIntegerField
BIGINT_MAX = 2**63 - 1  # bigint: BigIntegerField, PositiveBigIntegerField, the ids

_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(text: str) -> str:
    """Why PostgreSQL cannot store `text` ("" when it can): a NUL (text and jsonb hold none) or
    a lone surrogate (not encodable in UTF-8). In DRF's own wording, as a CharField says it."""
    if "\x00" in text:
        return "Null characters are not allowed."
    if text.isascii():
        return ""
    surrogate = _SURROGATE.search(text)
    if surrogate:
        return f"Surrogate characters are not allowed: U+{ord(surrogate.group()):X}."
    return ""
