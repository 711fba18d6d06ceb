import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from rest_framework.test import APIClient

from tenants.logins import OLD_DEMO_PASSWORD
from tenants.models import ApiKey, Membership, Tenant

pytestmark = pytest.mark.django_db
# seed_demo subscribes the demo tenant through the payment gateway, whose calls refuse to run
# inside a database transaction: its tests commit.
SEEDS = pytest.mark.django_db(transaction=True)
KEY = re.compile(r"cl_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
PRINTED_LOGIN = re.compile(r"^  login     admin / ([A-Za-z0-9_-]{16})$", re.M)
KEPT_LOGIN = (
    "  login     admin (the password printed when it was made; "
    "seed_demo --reset-admin-password prints a new one)"
)


def _run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def _tenant_for(plaintext: str) -> str:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    response = client.get("/api/v1/tenant")
    assert response.status_code == 200, response.content
    return str(response.json()["slug"])


def test_tenant_create_prints_slug_and_a_working_key() -> None:
    out = _run("tenant_create", "--name", "Initech Agents")

    lines = out.strip().splitlines()
    assert lines[0] == "tenant: initech-agents"
    assert KEY.fullmatch(lines[1].removeprefix("api key: "))
    assert _tenant_for(lines[1].removeprefix("api key: ")) == "initech-agents"
    assert Tenant.objects.get(slug="initech-agents").name == "Initech Agents"


def test_tenant_create_with_a_slug() -> None:
    assert _run("tenant_create", "--name", "X", "--slug", "x-corp").startswith("tenant: x-corp\n")


def test_apikey_create_issues_a_key_with_the_given_scopes(tenant: Tenant) -> None:
    plaintext = _run("apikey_create", "--tenant", "acme", "--name", "ci", "--scopes", "read")

    assert KEY.fullmatch(plaintext.strip())
    key = ApiKey.objects.get(tenant=tenant, name="ci")
    assert key.scopes == ["read"]
    assert _tenant_for(plaintext.strip()) == "acme"


def test_apikey_create_unknown_tenant_fails() -> None:
    with pytest.raises(CommandError, match=r"No tenant has the slug 'nope'\."):
        _run("apikey_create", "--tenant", "nope")


def test_apikey_create_unknown_scope_fails(tenant: Tenant) -> None:
    with pytest.raises(CommandError, match="Scopes must be a non-empty subset of"):
        _run("apikey_create", "--tenant", "acme", "--scopes", "admin")


def _password(out: str) -> str:
    [password] = PRINTED_LOGIN.findall(out)
    return str(password)


def _logs_in(password: str, username: str = "admin") -> bool:
    response = Client().post(
        "/accounts/login/", {"username": username, "password": password, "next": "/"}
    )
    return response.status_code == 302 and response["Location"] == "/"


@SEEDS
def test_seed_demo_twice_keeps_one_tenant_and_retires_the_old_key() -> None:
    first = KEY.findall(_run("seed_demo"))[0]
    second_out = _run("seed_demo")
    second = KEY.findall(second_out)[0]

    assert Tenant.objects.filter(slug="demo").count() == 1
    demo_keys = ApiKey.objects.filter(tenant__slug="demo", name="seed_demo")
    assert demo_keys.count() == 2
    assert demo_keys.filter(revoked_at__isnull=True).get().prefix == second.split("_")[1]
    assert _tenant_for(second) == "demo"
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {first}")
    assert client.get("/api/v1/tenant").json()["error"]["code"] == "revoked_api_key"
    assert "  portal    http://127.0.0.1:8000/" in second_out


@SEEDS
def test_seed_demo_key_can_buy_credits() -> None:
    out = _run("seed_demo")

    key = ApiKey.objects.get(tenant__slug="demo", name="seed_demo", revoked_at__isnull=True)
    assert key.scopes == ["billing", "read", "write"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {KEY.findall(out)[0]}")
    assert client.get("/api/v1/top-ups").status_code == 200


@SEEDS
def test_seed_demo_prints_a_random_admin_password_once_and_keeps_it() -> None:
    first_out = _run("seed_demo")
    password = _password(first_out)
    second_out = _run("seed_demo")

    assert password != OLD_DEMO_PASSWORD
    assert PRINTED_LOGIN.findall(second_out) == []
    assert KEPT_LOGIN in second_out
    assert _logs_in(password)


@SEEDS
def test_seed_demo_reset_admin_password_prints_a_new_one() -> None:
    old = _password(_run("seed_demo"))

    new = _password(_run("seed_demo", "--reset-admin-password"))

    assert new != old
    assert (_logs_in(old), _logs_in(new)) == (False, True)
    assert KEPT_LOGIN in _run("seed_demo")


@SEEDS
def test_seed_demo_replaces_the_old_fixed_demo_password() -> None:
    get_user_model().objects.create_superuser("admin", "a@example.com", OLD_DEMO_PASSWORD)

    password = _password(_run("seed_demo"))

    admin = get_user_model().objects.get(username="admin")
    assert (admin.check_password(OLD_DEMO_PASSWORD), admin.check_password(password)) == (
        False,
        True,
    )


@SEEDS
def test_seed_demo_admin_can_log_in_to_the_portal() -> None:
    password = _password(_run("seed_demo"))
    admin = get_user_model().objects.get(username="admin")

    assert (admin.is_staff, admin.is_superuser) == (True, True)
    assert Membership.objects.get(user=admin).role == Membership.Role.OWNER
    client = Client()
    login = client.post("/accounts/login/", {"username": "admin", "password": password})
    assert login.status_code == 302
    response = client.get("/")
    assert response.status_code == 200
    assert b"Demo Tenant" in response.content
