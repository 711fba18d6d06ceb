"""Everything under /api/ answers JSON in the error shape, whatever happens around the views.

DRF renders what its views raise (tenants/api/errors.py). This middleware, first in the list,
covers the rest: Django's own 404 and 500 pages (the HTML debug pages under DEBUG too), a body
too large for `request.body`, a database that went away mid-request, and a NUL in the URL,
which would otherwise reach PostgreSQL. Every API response is also marked `no-store`: balances
and keys are never cached by a proxy or a browser.
"""

import logging
from collections.abc import Callable

import psycopg
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from tenants.api.errors import api_error_response, request_too_large_message

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Seconds a client should wait before retrying after the database went away: a reconnect
# (or a failover) usually takes this long.
DATABASE_RETRY_AFTER = 1
_NUL = "Null characters are not allowed."


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


def _database_gone(exception: Exception) -> bool:
    """The connection failed (killed, restarted, network): retrying later may well work. Errors
    in a statement (IntegrityError, DataError, ...) are the request's own and stay 500s."""
    return isinstance(
        exception,
        OperationalError | InterfaceError | psycopg.OperationalError | psycopg.InterfaceError,
    )


def _drop_broken_connections() -> None:
    """Close every connection that failed outside a transaction so the next request (of this
    thread) reconnects. Django does this itself at the end of a request, unless a caller
    (the test client, a worker loop) serves requests without those signals."""
    for connection in connections.all(initialized_only=True):
        if connection.errors_occurred and not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()


class ApiErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not _is_api(request):
            return self.get_response(request)
        response = self._refuse_nul(request) or self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith(
            "application/json"
        ):
            response = self._as_json(response)
        response["Cache-Control"] = "no-store"
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not _is_api(request):
            return None
        if isinstance(exception, RequestDataTooBig):
            return api_error_response(413, message=request_too_large_message())
        if _database_gone(exception):
            logger.warning(
                "The database connection failed during %s %s",
                request.method,
                request.path,
                exc_info=exception,
            )
            _drop_broken_connections()
            response = api_error_response(503)
            response["Retry-After"] = str(DATABASE_RETRY_AFTER)
            return response
        return None

    @staticmethod
    def _refuse_nul(request: HttpRequest) -> HttpResponse | None:
        if "\x00" in request.path_info:
            return api_error_response(404)
        bad = [name for name, values in request.GET.lists() if "\x00" in name + "".join(values)]
        if not bad:
            return None
        return api_error_response(
            422, "invalid_input", f"{bad[0]}: {_NUL}", fields={name: [_NUL] for name in bad}
        )

    @staticmethod
    def _as_json(response: HttpResponseBase) -> HttpResponseBase:
        replacement = api_error_response(response.status_code)
        for header in ("Allow", "Retry-After", "WWW-Authenticate"):
            if header in response:
                replacement[header] = response[header]
        return replacement
