"""The OpenAPI schema and its browsable docs, served only when `CREDITLINE_API_DOCS` allows it
(read at each request: off, both are a JSON 404). Apart from tenants/api/schema.py, which DRF
imports while it loads `APIView` (the schema class setting): these views import `APIView`."""

from typing import Any

from django.conf import settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.exceptions import NotFound
from rest_framework.request import Request


class _ServedWhenAllowed:
    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if not settings.CREDITLINE_API_DOCS:
            raise NotFound("No such resource.")
        super().initial(request, *args, **kwargs)  # type: ignore[misc]


class SchemaApi(_ServedWhenAllowed, SpectacularAPIView):
    pass


class DocsApi(_ServedWhenAllowed, SpectacularSwaggerView):
    pass
