"""Every API error is `{"error": {"code", "message", ...details}}`: DRF's own, Django's 404 and
our validation errors. Two test-only endpoints live here (see `urlpatterns`), used through
`@pytest.mark.urls`, so no production route exists just for tests."""

from typing import Any

import pytest
from django.http import Http404
from django.test import Client
from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient

from tenants.api.base import TenantApiView
from tenants.models import ApiKey
from tenants.services import api_key_create

pytestmark = pytest.mark.django_db
THIS_MODULE = "tests.tenants.test_api_errors"


class EchoApi(TenantApiView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=10)
        credits = serializers.DecimalField(max_digits=18, decimal_places=4, min_value=0)

    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response({"name": serializer.validated_data["name"]}, status=201)


class KeyDetailApi(TenantApiView):
    def get(self, request: Request, prefix: str) -> Response:
        if prefix == "django-404":
            raise Http404("a Django 404 raised inside a view")
        api_key = self.get_scoped_or_404(ApiKey, prefix=prefix)
        return Response({"prefix": api_key.prefix})


urlpatterns = [
    path("api/v1/echo", EchoApi.as_view()),
    path("api/v1/keys/<str:prefix>", KeyDetailApi.as_view()),
    path("", include("config.urls")),
]


def _error(response: Any) -> tuple[int, dict[str, Any]]:
    return response.status_code, response.json()


def test_missing_key_is_401(db: None) -> None:
    assert _error(APIClient().get("/api/v1/tenant")) == (
        401,
        {
            "error": {
                "code": "not_authenticated",
                "message": "An API key is required: send 'Authorization: Bearer <api key>'.",
            }
        },
    )


def test_method_not_allowed_is_405(api_client: APIClient) -> None:
    response = api_client.delete("/api/v1/tenant")

    assert _error(response) == (
        405,
        {"error": {"code": "method_not_allowed", "message": 'Method "DELETE" not allowed.'}},
    )
    assert response["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.urls(THIS_MODULE)
def test_read_only_key_cannot_write_403(tenant: Any, make_client: Any) -> None:
    client = make_client(tenant, scopes=("read",))

    assert _error(client.post("/api/v1/echo", {"name": "x", "credits": "1"}, format="json")) == (
        403,
        {
            "error": {
                "code": "insufficient_scope",
                "message": "This API key lacks the 'write' scope.",
            }
        },
    )


@pytest.mark.urls(THIS_MODULE)
def test_another_tenants_object_is_404(api_client: APIClient, other_tenant: Any) -> None:
    theirs = api_key_create(tenant=other_tenant, name="theirs").api_key

    assert _error(api_client.get(f"/api/v1/keys/{theirs.prefix}")) == (
        404,
        {"error": {"code": "not_found", "message": "No api key with that id."}},
    )


@pytest.mark.urls(THIS_MODULE)
def test_django_http404_in_a_view_is_404(api_client: APIClient) -> None:
    assert _error(api_client.get("/api/v1/keys/django-404")) == (
        404,
        {"error": {"code": "not_found", "message": "Not found."}},
    )


@pytest.mark.urls(THIS_MODULE)
def test_unsupported_media_type_is_415(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/echo", data="name=x", content_type="text/plain")

    assert _error(response) == (
        415,
        {
            "error": {
                "code": "unsupported_media_type",
                "message": 'Unsupported media type "text/plain" in request.',
            }
        },
    )


@pytest.mark.urls(THIS_MODULE)
def test_malformed_json_is_400(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/echo", data='{"name": ', content_type="application/json")

    assert _error(response) == (
        400,
        {
            "error": {
                "code": "malformed_json",
                "message": "The body is not valid JSON: Expecting value (line 1, column 10).",
            }
        },
    )


@pytest.mark.urls(THIS_MODULE)
def test_invalid_input_is_422_with_fields(api_client: APIClient) -> None:
    response = api_client.post(
        "/api/v1/echo", {"name": "far too long a name", "credits": "-1"}, format="json"
    )

    assert _error(response) == (
        422,
        {
            "error": {
                "code": "invalid_input",
                "message": "name: Ensure this field has no more than 10 characters.",
                "fields": {
                    "name": ["Ensure this field has no more than 10 characters."],
                    "credits": ["Ensure this value is greater than or equal to 0."],
                },
            }
        },
    )


@pytest.mark.urls(THIS_MODULE)
def test_missing_fields_are_422(api_client: APIClient) -> None:
    assert _error(api_client.post("/api/v1/echo", {}, format="json")) == (
        422,
        {
            "error": {
                "code": "invalid_input",
                "message": "name: This field is required.",
                "fields": {
                    "name": ["This field is required."],
                    "credits": ["This field is required."],
                },
            }
        },
    )


@pytest.mark.urls(THIS_MODULE)
def test_valid_input_passes(api_client: APIClient) -> None:
    response = api_client.post("/api/v1/echo", {"name": "ok", "credits": "1.5"}, format="json")

    assert (response.status_code, response.json()) == (201, {"name": "ok"})


def test_unknown_api_path_is_json_404(settings: Any) -> None:
    settings.DEBUG = False

    response = Client().get("/api/v1/no-such-thing")

    assert response["Content-Type"] == "application/json"
    assert _error(response) == (
        404,
        {"error": {"code": "not_found", "message": "No such resource."}},
    )


def test_unknown_portal_path_is_html_404(settings: Any) -> None:
    settings.DEBUG = False

    response = Client().get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
