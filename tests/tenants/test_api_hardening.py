"""Bad requests around the views answer in the API's error shape, never Django's HTML and never
a 500: unknown routes and methods in DEBUG too, bodies over the limit, JSON nested too deep,
NUL characters and lone surrogates (which PostgreSQL refuses), oversized API keys, forged
cursors. Every API response is `Cache-Control: no-store`.

Test-only endpoints live in `urlpatterns` below, used through `@pytest.mark.urls`."""

import base64
import json
from typing import Any

import pytest
from django.test import Client
from django.urls import include, path
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.test import APIClient

from billing.models import StripeEvent
from metering.models import WorkflowRun
from ratecards.exceptions import UnknownAction
from tenants.api.base import TenantApiView
from tenants.api.errors import api_exception_handler
from tenants.api.parsers import MAX_DEPTH
from tenants.models import Tenant

pytestmark = pytest.mark.django_db
THIS_MODULE = "tests.tenants.test_api_hardening"


def _body(code: str, message: str, **details: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **details}}


SERVER_ERROR = _body("server_error", "Something went wrong on our side; it has been logged.")
NOT_FOUND = _body("not_found", "No such resource.")


class AnyJsonApi(TenantApiView):
    """Takes any JSON body and says what it received."""

    def post(self, request: Request) -> Response:
        return Response({"received": request.data})


class NameApi(TenantApiView):
    class InputSerializer(serializers.Serializer):
        name = serializers.CharField()

    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return Response({"name": data.validated_data["name"]})


class BrokenApi(TenantApiView):
    def get(self, request: Request) -> Response:
        raise RuntimeError("a bug in a view")


urlpatterns = [
    path("api/v1/any-json", AnyJsonApi.as_view()),
    path("api/v1/name", NameApi.as_view()),
    path("api/v1/broken", BrokenApi.as_view()),
    path("", include("config.urls")),
]


def _error(response: Any) -> tuple[int, dict[str, Any]]:
    assert response["Content-Type"] == "application/json", response.content[:200]
    return response.status_code, response.json()


def _post_raw(client: Client, url: str, body: str | bytes) -> Any:
    return client.post(url, data=body, content_type="application/json")


def _invalid(path: str, message: str) -> dict[str, Any]:
    first = message if path == "non_field_errors" else f"{path}: {message}"
    return _body("invalid_input", first, fields={path: [message]})


# Routes and methods: JSON in DEBUG as well.


@pytest.mark.parametrize("debug", [True, False])
@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/no-such-thing"),
        ("get", "/api/v1/tenant/"),  # a trailing slash: no redirect, no HTML
        ("post", "/api/v1/usage-events/"),
        ("post", "/api/schema"),  # Django would raise (APPEND_SLASH cannot redirect a POST)
        ("get", "/api/"),
        ("delete", "/api/v2/balance"),
    ],
)
def test_an_unknown_api_path_is_a_json_404(
    settings: Any, debug: bool, method: str, url: str
) -> None:
    settings.DEBUG = debug

    response = getattr(Client(raise_request_exception=False), method)(url)

    assert _error(response) == (404, NOT_FOUND)
    assert response["Cache-Control"] == "no-store"


@pytest.mark.parametrize("debug", [True, False])
def test_a_wrong_method_is_a_json_405_in_debug_too(
    settings: Any, debug: bool, api_client: APIClient
) -> None:
    settings.DEBUG = debug

    response = api_client.put("/api/v1/balance", {}, format="json")

    assert _error(response) == (405, _body("method_not_allowed", 'Method "PUT" not allowed.'))
    assert response["Allow"] == "GET, HEAD, OPTIONS"


@pytest.mark.urls(THIS_MODULE)
@pytest.mark.parametrize("debug", [True, False])
def test_a_bug_in_a_view_is_a_json_500_in_debug_too(
    settings: Any, debug: bool, tenant: Tenant, make_client: Any
) -> None:
    settings.DEBUG = debug
    client = make_client(tenant)
    client.raise_request_exception = False

    response = client.get("/api/v1/broken")

    assert _error(response) == (500, SERVER_ERROR)
    assert response["Cache-Control"] == "no-store"


def test_the_portal_keeps_its_html_404(settings: Any) -> None:
    settings.DEBUG = True

    response = Client().get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


# Body size and depth.


@pytest.mark.urls(THIS_MODULE)
@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/any-json",  # read by the API's JSON parser
        "/api/v1/webhooks/stripe",  # reads `request.body` itself (the signature covers it)
    ],
)
def test_a_body_over_the_limit_is_a_json_413(
    settings: Any, api_client: APIClient, url: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000

    response = _post_raw(api_client, url, json.dumps({"x": "a" * 1000}))

    assert _error(response) == (
        413,
        _body("request_too_large", "The request body is larger than the limit of 1,000 bytes."),
    )
    assert not StripeEvent.objects.exists()


@pytest.mark.urls(THIS_MODULE)
def test_a_body_at_the_limit_is_read(settings: Any, api_client: APIClient) -> None:
    body = json.dumps({"x": "a" * 100})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)

    response = _post_raw(api_client, "/api/v1/any-json", body)

    assert (response.status_code, response.json()) == (200, {"received": {"x": "a" * 100}})


@pytest.mark.urls(THIS_MODULE)
@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 5_000, 100_000])
def test_json_nested_too_deep_is_a_400(api_client: APIClient, depth: int) -> None:
    response = _post_raw(api_client, "/api/v1/any-json", "[" * depth + "]" * depth)

    assert _error(response) == (
        400,
        _body("malformed_json", "JSON nested deeper than 64 levels is refused."),
    )


@pytest.mark.urls(THIS_MODULE)
def test_json_nested_to_the_limit_is_read(api_client: APIClient) -> None:
    body: Any = {"leaf": 1}
    for _ in range(MAX_DEPTH - 1):
        body = {"a": body}

    response = _post_raw(api_client, "/api/v1/any-json", json.dumps(body))

    assert (response.status_code, response.json()) == (200, {"received": body})


def test_deep_json_on_a_real_route_is_a_400_and_writes_nothing(api_client: APIClient) -> None:
    metadata = "[" * 3_000 + "]" * 3_000
    body = f'{{"external_id": "run-1", "name": "deep", "metadata": {metadata}}}'

    response = _post_raw(api_client, "/api/v1/workflows", body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert not WorkflowRun.objects.exists()


# NUL characters and lone surrogates: PostgreSQL stores neither.


@pytest.mark.urls(THIS_MODULE)
@pytest.mark.parametrize(
    ("body", "where", "message"),
    [
        ({"name": "a\x00b"}, "name", "Null characters are not allowed."),
        (
            {"meta": {"notes": ["fine", "bad\x00"]}},
            "meta.notes[1]",
            "Null characters are not allowed.",
        ),
        (
            {"items": [{"k": "\ud800"}]},
            "items[0].k",
            "Surrogate characters are not allowed: U+D800.",
        ),
        ({"x": "tail \udfff"}, "x", "Surrogate characters are not allowed: U+DFFF."),
        ({"labels": {"a\x00": "v"}}, "labels", "Null characters are not allowed in keys."),
        (["ok", "\x00"], "[1]", "Null characters are not allowed."),
        ("\x00", "non_field_errors", "Null characters are not allowed."),
    ],
)
def test_nul_and_lone_surrogates_are_a_422_naming_where(
    api_client: APIClient, body: Any, where: str, message: str
) -> None:
    # json.dumps escapes them (\u0000, \ud800): the only way JSON can carry them.
    response = _post_raw(api_client, "/api/v1/any-json", json.dumps(body))

    assert _error(response) == (422, _invalid(where, message))


@pytest.mark.urls(THIS_MODULE)
@pytest.mark.parametrize("charset", ["utf-16", "utf-32"])
def test_a_lone_surrogate_is_found_in_any_declared_charset(
    api_client: APIClient, charset: str
) -> None:
    body = json.dumps({"k": "\ud800"}).encode(charset)

    response = api_client.post(
        "/api/v1/any-json", data=body, content_type=f"application/json; charset={charset}"
    )

    assert _error(response) == (422, _invalid("k", "Surrogate characters are not allowed: U+D800."))


@pytest.mark.urls(THIS_MODULE)
def test_every_bad_string_is_named(api_client: APIClient) -> None:
    body = {"a": "\x00", "b": ["ok", "\ud83d"], "c": "fine"}

    response = _post_raw(api_client, "/api/v1/any-json", json.dumps(body))

    assert _error(response) == (
        422,
        _body(
            "invalid_input",
            "a: Null characters are not allowed.",
            fields={
                "a": ["Null characters are not allowed."],
                "b[1]": ["Surrogate characters are not allowed: U+D83D."],
            },
        ),
    )


@pytest.mark.urls(THIS_MODULE)
@pytest.mark.parametrize(
    "text", ["\U0001f600 paired surrogates are one character", "a literal \\u0000 is text", "é"]
)
def test_escapes_that_are_not_nul_or_lone_surrogates_pass(api_client: APIClient, text: str) -> None:
    response = _post_raw(api_client, "/api/v1/any-json", json.dumps({"text": text}))

    assert (response.status_code, response.json()) == (200, {"received": {"text": text}})


def test_nul_on_a_real_route_is_a_422_and_writes_nothing(api_client: APIClient) -> None:
    body = {"external_id": "run-1", "name": "n", "metadata": {"note": "a\x00b"}}

    response = _post_raw(api_client, "/api/v1/workflows", json.dumps(body))

    assert _error(response) == (422, _invalid("metadata.note", "Null characters are not allowed."))
    assert not WorkflowRun.objects.exists()


@pytest.mark.parametrize(
    ("url", "where"),
    [
        ("/api/v1/ledger-entries?kind=%00", "kind"),
        ("/api/v1/ledger-entries?since=2026&x%00=1", "x\x00"),
        ("/api/v1/workflows?external_id=a%00b", "external_id"),
    ],
)
def test_nul_in_the_query_string_is_a_422_naming_the_parameter(
    api_client: APIClient, url: str, where: str
) -> None:
    assert _error(api_client.get(url)) == (422, _invalid(where, "Null characters are not allowed."))


def test_nul_in_the_path_is_a_404(api_client: APIClient) -> None:
    assert _error(api_client.get("/api/v1/workflows/1%00")) == (404, NOT_FOUND)


@pytest.mark.parametrize("position", ["garbage", "\x00", "2026-13-45 99:00:00+00:00"])
def test_a_forged_cursor_is_a_404(api_client: APIClient, position: str) -> None:
    cursor = base64.b64encode(f"p={position}".encode()).decode()

    response = api_client.get("/api/v1/ledger-entries", {"cursor": cursor})

    assert _error(response) == (404, _body("not_found", "Invalid cursor"))


# The API key header.


@pytest.mark.parametrize(
    "key",
    [
        "cl_abcdefgh_" + "a" * 20_000,  # a 20 KB header
        "cl_abcd\x00fgh_secret",
        "cl_abcdefgh_sec\x00ret",
        "cl_abc%efgh_secret",
    ],
)
def test_a_key_that_cannot_be_a_key_is_a_401_without_a_query(
    db: None, django_assert_num_queries: Any, key: str
) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")

    with django_assert_num_queries(0):
        response = client.get("/api/v1/tenant")

    assert _error(response) == (401, _body("invalid_api_key", "The API key is not valid."))


# The vocabulary: `fields`, everywhere.


def test_an_error_naming_one_field_carries_fields_and_the_deprecated_field() -> None:
    response = api_exception_handler(UnknownAction("No action 'x'.", action="x"), {})

    assert response is not None
    assert (response.status_code, response.data) == (
        422,
        _body(
            "unknown_action",
            "No action 'x'.",
            fields={"action": ["No action 'x'."]},
            field="action",
            action="x",
        ),
    )


# Caching.


@pytest.mark.parametrize(
    ("url", "status"),
    [("/api/v1/tenant", 200), ("/api/v1/balance", 200), ("/api/v1/nowhere", 404)],
)
def test_api_responses_are_no_store(api_client: APIClient, url: str, status: int) -> None:
    response = api_client.get(url)

    assert (response.status_code, response["Cache-Control"]) == (status, "no-store")


def test_a_refused_key_is_no_store_too(db: None) -> None:
    response = APIClient().get("/api/v1/tenant")

    assert (response.status_code, response["Cache-Control"]) == (401, "no-store")


def test_pages_outside_the_api_keep_their_own_caching(db: None) -> None:
    assert "Cache-Control" not in Client().get("/healthz")
