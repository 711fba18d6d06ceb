"""Every API error as `{"error": {"code": ..., "message": ..., ...details}}`.

`api_exception_handler` renders what a DRF view raises; `api_error_response` is the same body
for what happens around the views (tenants/api/middleware.py). The codes are listed in the
README ("Error codes").
"""

from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpRequest, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from tenants.exceptions import CreditlineError

_CODES: dict[type[exceptions.APIException], tuple[int, str]] = {
    exceptions.ParseError: (status.HTTP_400_BAD_REQUEST, "malformed_json"),
    exceptions.NotAuthenticated: (status.HTTP_401_UNAUTHORIZED, "not_authenticated"),
    exceptions.NotFound: (status.HTTP_404_NOT_FOUND, "not_found"),
    exceptions.MethodNotAllowed: (status.HTTP_405_METHOD_NOT_ALLOWED, "method_not_allowed"),
    exceptions.NotAcceptable: (status.HTTP_406_NOT_ACCEPTABLE, "not_acceptable"),
    exceptions.UnsupportedMediaType: (
        status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    ),
    exceptions.Throttled: (status.HTTP_429_TOO_MANY_REQUESTS, "rate_limited"),
}

# The body of a status that no view chose (Django's own 404, 500, ...), by status.
_STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("bad_request", "The request could not be understood."),
    403: ("forbidden", "You may not do this."),
    404: ("not_found", "No such resource."),
    413: ("request_too_large", "The request body is too large."),
    500: ("server_error", "Something went wrong on our side; it has been logged."),
    503: ("service_unavailable", "The service is briefly unavailable; retry in a moment."),
}


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_code = "request_too_large"

    def __init__(self) -> None:
        super().__init__(request_too_large_message())


def request_too_large_message() -> str:
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return f"The request body is larger than the limit of {limit:,} bytes."


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The error body. An error about one input field names it in `fields`, as validation
    errors do; the older singular `field` is kept beside it for one release (deprecated)."""
    field = details.get("field")
    if isinstance(field, str) and field and "fields" not in details:
        details = {"fields": {field: [message]}, **details}
    return {"error": {"code": code, "message": message, **details}}


def api_error_response(
    status_code: int, code: str = "", message: str = "", **details: Any
) -> JsonResponse:
    """A JSON error for `status_code`; code and message default to the status's own."""
    default_code, default_message = _STATUS_ERRORS.get(status_code, ("", ""))
    if not default_code:
        phrase = HTTPStatus(status_code).phrase
        default_code = phrase.lower().replace(" ", "_").replace("-", "_")
        default_message = f"{phrase}."
    body = error_body(code or default_code, message or default_message, **details)
    # Compact, as DRF renders: one error looks the same from a view and from around one.
    return JsonResponse(body, status=status_code, json_dumps_params={"separators": (",", ":")})


def _message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _message(detail[0])
    if isinstance(detail, dict) and detail:
        return _message(next(iter(detail.values())))
    return str(detail)


def _field_errors(detail: Any, path: str = "") -> dict[str, list[str]]:
    """DRF's nested errors as one flat map from a field's path to its messages: a nested
    field is `lines[0].monthly_count`, an item of a list `alert_thresholds[0]` (the notation
    the JSON parser uses too), so `fields` has one shape whatever the input's."""
    if isinstance(detail, dict):
        found: dict[str, list[str]] = {}
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY and path:
                step = ""  # an error about the nested object as a whole: its own path
            elif isinstance(key, int):
                step = f"[{key}]"
            else:
                step = f".{key}" if path else str(key)
            found |= _field_errors(value, path + step)
        return found
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        found = {}
        for index, item in enumerate(detail):
            found |= _field_errors(item, f"{path}[{index}]")
        return found
    messages = detail if isinstance(detail, list) else [detail]
    return {path or "non_field_errors": [str(m) for m in messages]} if messages else {}


def _validation_body(exc: exceptions.ValidationError) -> dict[str, Any]:
    detail = exc.detail
    if isinstance(detail, dict):
        fields = _field_errors(detail)
        first = next(iter(fields), "")
        message = f"{first}: {_message(fields[first])}" if first else "Invalid input."
        if first == "non_field_errors":
            message = _message(fields[first])
        return error_body("invalid_input", message, fields=fields)
    return error_body("invalid_input", _message(detail))


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    headers: dict[str, str] = {}
    if isinstance(exc, CreditlineError):
        return Response(error_body(exc.code, exc.message, **exc.details), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
    if isinstance(exc, exceptions.ValidationError):
        return Response(
            _validation_body(exc), status=status.HTTP_422_UNPROCESSABLE_ENTITY, headers=headers
        )
    status_code, code = _CODES.get(type(exc), (exc.status_code, ""))
    if not code:
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
    if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
        status_code = status.HTTP_401_UNAUTHORIZED
    return Response(error_body(code, _message(exc.detail)), status=status_code, headers=headers)


def json_not_found(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return api_error_response(404)


def json_server_error(request: HttpRequest) -> JsonResponse:
    return api_error_response(500)
