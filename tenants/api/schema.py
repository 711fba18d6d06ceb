"""How the OpenAPI schema describes our API key authentication (Bearer <key>)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema


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


class CreditlineAutoSchema(AutoSchema):
    """Names a view's nested serializers after the view (`EntryListApi.OutputSerializer` ->
    `EntryListOutput`), so every app's `InputSerializer` / `OutputSerializer` gets its own
    OpenAPI component instead of colliding on `Output`. An explicit `component_name` wins."""

    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        cls = serializer if isinstance(serializer, type) else type(serializer)
        outer, _, name = cls.__qualname__.partition(".")
        if not name or "<locals>" in cls.__qualname__:
            return str(super().get_serializer_name(serializer, direction))
        return outer.removesuffix("Api") + cls.__name__
