"""How the OpenAPI schema describes the API: our API key authentication (Bearer <key>), the
component names, the cursor pagination of every list, and the errors each operation can answer
(every one in the error body's shape). tests/test_schemathesis.py holds the schema to it."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from tenants.api.pagination import CreatedCursorPagination


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tenants.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: AutoSchema) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "cl_<prefix>_<secret>",
            "description": "An API key from `tenant_create`, `apikey_create` or the admin.",
        }


class _NamedAutoSchema(AutoSchema):
    """Names a view's nested serializers after the view (`EntryListApi.OutputSerializer` ->
    `EntryListOutput`), so every app's `InputSerializer` / `OutputSerializer` gets its own
    OpenAPI component instead of colliding on `Output`. An explicit `component_name` wins."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, name = cls.__qualname__.partition(".")
        if not name or "<locals>" in cls.__qualname__:
            return str(super().get_serializer_name(serializer, direction))
        return outer.removesuffix("Api") + cls.__name__


# Every error: `{"error": {"code", "message", "fields"?, ...details}}` (tenants/api/errors.py).
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "Stable; listed in the README."},
                "message": {"type": "string", "description": "For people; may change."},
                "field": {
                    "type": "string",
                    "deprecated": True,
                    "description": "Deprecated: the one field an error is about; see `fields`.",
                },
                "fields": {
                    "type": "object",
                    "description": "Per input field (a dotted path for a nested one), what "
                    "is wrong with it.",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
            },
            "additionalProperties": True,
        }
    },
}
_ERROR = ResolvedComponent(
    name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA
)


# What any operation may answer, and what one that reads input may answer besides.
_ANY = {
    401: "No API key, or one that is not valid (`not_authenticated`).",
    403: "The key lacks the scope, or the tenant is suspended.",
    429: "Too many requests for this key (`rate_limited`, with Retry-After).",
    503: "The database is briefly unreachable; retry (`service_unavailable`).",
}
_INPUT = {
    400: "The body is not JSON, or JSON this API refuses (too deep, NUL characters).",
    413: "The body is larger than the limit (`request_too_large`).",
    422: "An input field is not valid: `fields` names each one.",
}
_NOT_FOUND = {404: "No such object of this tenant, or an invalid cursor."}


class CreditlineAutoSchema(_NamedAutoSchema):
    """Lists are cursor-paginated (`{next, previous, results}`, `cursor` and `limit`), and
    every operation lists the error statuses it can answer, with the error body. A view adds
    its own with `error_statuses = {"POST": {402: "...", 409: "..."}}`."""

    def _get_paginator(self) -> Any:
        # Every list this API serves is paged by CreatedCursorPagination.
        return getattr(self.view, "pagination_class", None) or CreatedCursorPagination()

    def _get_response_bodies(self, direction: Any = "response") -> Any:
        responses = super()._get_response_bodies(direction)
        if not self.path.startswith("/api/v1/"):
            return responses
        statuses: dict[int, str] = {}
        if self.get_auth():
            statuses |= _ANY
        if self.method in {"POST", "PUT", "PATCH"} or self._get_parameters():
            statuses |= _INPUT
        if "{" in self.path or self._is_list_view() or self.method != "GET":
            statuses |= _NOT_FOUND
        statuses |= getattr(self.view, "error_statuses", {}).get(self.method, {})
        self.registry.register_on_missing(_ERROR)
        for status, description in sorted(statuses.items()):
            responses.setdefault(
                str(status),
                {
                    "content": {"application/json": {"schema": _ERROR.ref}},
                    "description": description,
                },
            )
        return responses
