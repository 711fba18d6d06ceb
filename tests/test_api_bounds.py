"""Every integer an API request can carry (a body field, at any depth, or a query parameter)
has a minimum and a maximum in the OpenAPI schema, that is a `min_value` and a `max_value` on
its serializer field: a number its column cannot hold is a 422 naming the field, never a
database error. Read from the live schema, so a new field without bounds fails here."""

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def _integers(
    schema: dict[str, Any], where: str, components: dict[str, Any]
) -> Iterator[tuple[str, dict[str, Any]]]:
    if "$ref" in schema:
        yield from _integers(components[schema["$ref"].rsplit("/", 1)[1]], where, components)
        return
    for part in schema.get("allOf", []) + schema.get("oneOf", []) + schema.get("anyOf", []):
        yield from _integers(part, where, components)
    if schema.get("type") == "integer":
        yield where, schema
    for name, field in schema.get("properties", {}).items():
        yield from _integers(field, f"{where}.{name}", components)
    if isinstance(schema.get("items"), dict):
        yield from _integers(schema["items"], f"{where}[]", components)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _integers(schema["additionalProperties"], f"{where}{{}}", components)


def _request_integers() -> Iterator[tuple[str, dict[str, Any]]]:
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    components = schema["components"]["schemas"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            name = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    yield from _integers(
                        parameter["schema"], f"{name} ?{parameter['name']}", components
                    )
            for content in operation.get("requestBody", {}).get("content", {}).values():
                yield from _integers(content["schema"], f"{name} body", components)


def test_every_integer_in_a_request_is_bounded() -> None:
    found = list(_request_integers())
    unbounded = [
        where for where, schema in found if "minimum" not in schema or "maximum" not in schema
    ]

    assert found, "the walk found no integer at all: is it still reading the schema?"
    assert unbounded == []
