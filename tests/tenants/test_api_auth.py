import pytest
from rest_framework.test import APIClient

from tenants.models import Tenant
from tenants.services import IssuedKey, api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db


def _get(client: APIClient, header: str | None) -> tuple[int, dict]:
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/v1/tenant")
    return response.status_code, response.json()


def test_valid_key_returns_its_tenant(tenant: Tenant, api_key: IssuedKey) -> None:
    status, body = _get(APIClient(), f"Bearer {api_key.plaintext}")

    assert status == 200
    assert body["slug"] == "acme"
    assert body["name"] == "Acme Agents"
    assert body["status"] == "active"
    assert body["api_key"] == {
        "name": "test",
        "prefix": api_key.api_key.prefix,
        "scopes": ["read", "write"],
    }
    api_key.api_key.refresh_from_db()
    assert api_key.api_key.last_used_at is not None


def test_missing_key_is_401(db: None) -> None:
    response = APIClient().get("/api/v1/tenant")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == {
        "error": {
            "code": "not_authenticated",
            "message": "An API key is required: send 'Authorization: Bearer <api key>'.",
        }
    }


@pytest.mark.parametrize(
    ("header", "code", "message"),
    [
        ("Bearer cl_deadbeef_wrongsecret", "invalid_api_key", "The API key is not valid."),
        ("Bearer not-a-key", "invalid_api_key", "The API key is not valid."),
        (
            "Basic dXNlcjpwYXNz",
            "malformed_authorization",
            "The Authorization header must be 'Bearer <api key>'.",
        ),
        (
            "Bearer",
            "malformed_authorization",
            "The Authorization header must be 'Bearer <api key>'.",
        ),
        (
            "Bearer a b",
            "malformed_authorization",
            "The Authorization header must be 'Bearer <api key>'.",
        ),
    ],
)
def test_bad_keys_are_401(db: None, header: str, code: str, message: str) -> None:
    assert _get(APIClient(), header) == (401, {"error": {"code": code, "message": message}})


def test_right_prefix_wrong_secret_is_401(api_key: IssuedKey) -> None:
    forged = api_key.plaintext[:-4] + "AAAA"

    assert _get(APIClient(), f"Bearer {forged}") == (
        401,
        {"error": {"code": "invalid_api_key", "message": "The API key is not valid."}},
    )


def test_revoked_key_is_401(api_key: IssuedKey) -> None:
    api_key_revoke(api_key=api_key.api_key)

    assert _get(APIClient(), f"Bearer {api_key.plaintext}") == (
        401,
        {"error": {"code": "revoked_api_key", "message": "This API key has been revoked."}},
    )


def test_suspended_tenant_is_403(tenant: Tenant, api_key: IssuedKey) -> None:
    Tenant.objects.filter(pk=tenant.pk).update(status=Tenant.Status.SUSPENDED)

    assert _get(APIClient(), f"Bearer {api_key.plaintext}") == (
        403,
        {"error": {"code": "tenant_suspended", "message": "This tenant is suspended."}},
    )


def test_write_only_key_cannot_read(tenant: Tenant) -> None:
    issued = api_key_create(tenant=tenant, name="w", scopes=["write"])

    assert _get(APIClient(), f"Bearer {issued.plaintext}") == (
        403,
        {
            "error": {
                "code": "insufficient_scope",
                "message": "This API key lacks the 'read' scope.",
            }
        },
    )
