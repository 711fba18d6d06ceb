"""Cursor pagination for every list, with `next` / `previous` links and stable order."""

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Field, Model, QuerySet
from rest_framework.exceptions import NotFound
from rest_framework.pagination import Cursor, CursorPagination
from rest_framework.request import Request
from rest_framework.views import APIView


class CreatedCursorPagination(CursorPagination):
    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 500
    _model: type[Model] | None = None

    def get_ordering(
        self, request: Request, queryset: QuerySet[Any], view: APIView
    ) -> tuple[str, ...]:
        self._model = queryset.model  # DRF asks for the ordering before it decodes the cursor
        return super().get_ordering(request, queryset, view)

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        """DRF's `cursor` and `limit`, with the page size's range (a limit outside it is
        clamped, not refused)."""
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = (
                    f"Page size, 1 to {self.max_page_size} (default {self.page_size})."
                )
        return parameters

    def decode_cursor(self, request: Request) -> Cursor | None:
        """DRF's, and the cursor's position must be a value of the ordering's field: a forged
        one (`p=garbage`, a NUL) is an invalid cursor (404), not an error in the query."""
        cursor = super().decode_cursor(request)
        position: Any = cursor.position if cursor is not None else None
        if position is None or self._model is None:
            return cursor
        field = self._model._meta.get_field(self.ordering[0].lstrip("-"))
        try:
            if not isinstance(field, Field) or "\x00" in position:
                raise ValidationError("not a position")
            field.to_python(position)
        except ValidationError:
            raise NotFound(self.invalid_cursor_message) from None
        return cursor
