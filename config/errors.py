"""404 and 500 pages: JSON error bodies under /api/, HTML for the portal."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from tenants.api.errors import json_not_found, json_server_error


@csrf_exempt
def api_not_found(request: HttpRequest) -> JsonResponse:
    """Every method of every unknown path under /api/ (a POST too: no CSRF 403 first)."""
    return json_not_found(request)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if request.path.startswith("/api/"):
        return json_server_error(request)
    return defaults.server_error(request)
