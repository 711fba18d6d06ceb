"""The API's JSON parser: DRF's, with the limits a public endpoint needs.

- A body over `DATA_UPLOAD_MAX_MEMORY_SIZE` is refused (413) before it is read: DRF's own
  parser reads the stream and skips Django's check, which only `request.body` makes.
- JSON nested deeper than `MAX_DEPTH` is refused (400), so no later step (a serializer, the
  encoder of a JSONField) recurses into it; thousands of levels would be a RecursionError.
- A NUL character or a lone surrogate in any string or key is refused (422, naming where):
  PostgreSQL stores neither in text or jsonb, and psycopg refuses them with an error.
  JSON can carry them only as `\\u0000` and `\\udXXX` escapes, so a body without such an
  escape skips that walk.
"""

import json
import re
from collections.abc import Iterator, Mapping
from typing import IO, Any

from django.conf import settings
from rest_framework import exceptions, parsers, renderers
from rest_framework.utils.json import strict_constant

from tenants.api.errors import RequestTooLarge
from tenants.api.fields import text_problem

MAX_DEPTH = 64
MAX_REPORTED = 20  # how many bad strings one error body names at most

_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89abcdefABCDEF])")


def _path(parts: tuple[str | int, ...]) -> str:
    """`events[2].labels.note`; the top of the body is `non_field_errors`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "non_field_errors"


def _nodes(data: Any) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every value of the body with its path, in document order, without recursion."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            stack.extend(((*path, key), item) for key, item in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend(((*path, i), item) for i, item in reversed(list(enumerate(value))))


def _too_deep(data: Any) -> bool:
    """Level by level over the containers only (a batch of 1,000 events: ~0.5 ms)."""
    level, depth = [data], 1
    while level:
        if depth > MAX_DEPTH:
            return True
        below: list[Any] = []
        for value in level:
            items = value.values() if type(value) is dict else value
            below += [item for item in items if type(item) is dict or type(item) is list]
        level, depth = below, depth + 1
    return False


def _bad_text(data: Any) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path, value in _nodes(data):
        if isinstance(value, str):
            problem = text_problem(value)
        elif isinstance(value, dict):
            problem = next((p for p in map(text_problem, value) if p), "")
            problem = problem.replace(" are not allowed", " are not allowed in keys")
        else:
            continue
        if problem:
            found.setdefault(_path(path), []).append(problem)
            if len(found) == MAX_REPORTED:
                break
    return found


class JSONParser(parsers.BaseParser):
    media_type = "application/json"
    renderer_class = renderers.JSONRenderer
    refuse_bad_text = True

    def parse(
        self,
        stream: IO[Any] | None,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        body = self._read(stream, parser_context or {})
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            # Checked on the text, not the bytes: the request may declare another charset.
            text = body.decode(encoding)
            data = json.loads(text, parse_constant=strict_constant)
        except RecursionError:
            raise self._too_deep_error() from None
        except json.JSONDecodeError as exc:
            raise exceptions.ParseError(
                f"The body is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."
            ) from None
        except (ValueError, LookupError):
            # Not JSON's own complaint (a number too long to read, an unknown charset): no
            # internals in the answer.
            raise exceptions.ParseError("The body is not valid JSON.") from None
        # Cheap counts first: a body with fewer brackets than MAX_DEPTH cannot be too deep.
        if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(data):
            raise self._too_deep_error()
        if self.refuse_bad_text and _SUSPECT_ESCAPE.search(text):
            bad = _bad_text(data)
            if bad:
                raise exceptions.ValidationError(bad)
        return data

    @staticmethod
    def _read(stream: IO[Any] | None, parser_context: Mapping[str, Any]) -> bytes:
        if stream is None:
            return b""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is None:
            return bytes(stream.read())
        request = parser_context.get("request")
        meta = request.META if request is not None else {}
        try:
            declared = int(meta.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        # Django's stream stops at Content-Length; one byte past the limit bounds what any
        # other stream can make us hold.
        body = b"" if declared > limit else bytes(stream.read(limit + 1))
        if declared > limit or len(body) > limit:
            raise RequestTooLarge()
        return body

    @staticmethod
    def _too_deep_error() -> exceptions.ParseError:
        return exceptions.ParseError(f"JSON nested deeper than {MAX_DEPTH} levels is refused.")


class ItemCheckedJSONParser(JSONParser):
    """For a route whose service checks every string of every item itself and answers per
    item (the usage batch: one event with a NUL is refused in its own slot, the rest are
    recorded). The size and depth limits still apply."""

    refuse_bad_text = False
