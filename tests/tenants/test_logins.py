"""Portal and admin logins: django-axes locks an address out after 5 failures, for 60 s, then
120 s, 240 s... for each further lockout within a day; a locked-out client gets a 429 page with
Retry-After; production refuses the old fixed demo password."""

from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import Client

from tenants.logins import OLD_DEMO_PASSWORD

pytestmark = pytest.mark.django_db
PORTAL = "/accounts/login/"
ADMIN = "/admin/login/"
PASSWORD = "a-long-and-correct-password"


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    with time_machine.travel("2026-03-02 12:00:00+00:00", tick=False) as traveller:
        yield traveller


@pytest.fixture
def user(db: None) -> User:
    return User.objects.create_superuser("vendor", "vendor@example.com", PASSWORD)


def login(
    password: str, url: str = PORTAL, address: str = "192.0.2.10", username: str = "vendor"
) -> Any:
    return Client(REMOTE_ADDR=address).post(
        url, {"username": username, "password": password, "next": "/"}
    )


def refused(response: HttpResponse) -> bool:
    """The login page again, with its error (Django's answer to a wrong password)."""
    return response.status_code == 200 and b"didn't match" in response.content


def admin_refused(response: HttpResponse) -> bool:
    return response.status_code == 200 and b"Please enter the correct username" in response.content


def locked_out(response: HttpResponse, seconds: int) -> bool:
    minutes = -(-seconds // 60)
    text = f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    return (
        response.status_code == 429
        and response["Retry-After"] == str(seconds)
        and text in response.content.decode()
    )


def test_five_failures_lock_the_address_out_for_a_minute(
    user: User, clock: time_machine.Traveller
) -> None:
    failures = [login("wrong") for _ in range(4)]
    fifth = login("wrong")

    assert all(refused(r) for r in failures)
    assert locked_out(fifth, 60)
    clock.shift(20)
    assert locked_out(login(PASSWORD), 40)  # the right password too
    assert login(PASSWORD, address="192.0.2.99").status_code == 302  # another address
    clock.shift(41)  # the lockout ends after its last second
    ok = login(PASSWORD)
    assert (ok.status_code, ok["Location"]) == (302, "/")


def test_each_further_lockout_in_a_day_doubles(user: User, clock: time_machine.Traveller) -> None:
    for expected in (60, 120, 240, 480):
        for _ in range(4):
            assert refused(login("wrong"))
        assert locked_out(login("wrong"), expected)
        clock.shift(expected - 1)
        assert locked_out(login("wrong"), 1)  # refused while locked out, not counted
        clock.shift(2)

    clock.shift(24 * 3600)  # a day without failures: back to the first step
    for _ in range(4):
        assert refused(login("wrong"))
    assert locked_out(login("wrong"), 60)


def test_admin_and_portal_logins_share_the_count(user: User, clock: time_machine.Traveller) -> None:
    assert all(refused(login("wrong")) for _ in range(2))
    assert all(admin_refused(login("wrong", url=ADMIN)) for _ in range(2))

    assert locked_out(login("wrong", url=ADMIN), 60)
    assert locked_out(login(PASSWORD, url=ADMIN), 60)
    assert locked_out(login(PASSWORD), 60)


def test_a_successful_login_does_not_reset_the_count(
    user: User, clock: time_machine.Traveller
) -> None:
    assert all(refused(login("wrong", username="someone-else")) for _ in range(4))
    assert login(PASSWORD).status_code == 302

    assert locked_out(login("wrong", username="someone-else"), 60)


def test_guesses_at_many_usernames_count_against_the_address(
    user: User, clock: time_machine.Traveller
) -> None:
    answers = [login("password1", username=f"user{n}") for n in range(5)]

    assert [refused(r) for r in answers] == [True] * 4 + [False]
    assert locked_out(answers[-1], 60)


@pytest.mark.parametrize("url", [PORTAL, ADMIN])
def test_production_refuses_the_old_demo_password(settings: Any, url: str) -> None:
    User.objects.create_superuser("admin", "admin@example.com", OLD_DEMO_PASSWORD)
    settings.CREDITLINE_REFUSE_DEMO_PASSWORD = True

    response = login(OLD_DEMO_PASSWORD, url=url, username="admin")

    assert (refused if url == PORTAL else admin_refused)(response)
    settings.CREDITLINE_REFUSE_DEMO_PASSWORD = False
    assert login(OLD_DEMO_PASSWORD, url=url, username="admin").status_code == 302


def test_the_production_settings_refuse_it() -> None:
    from tests.subprocess_env import run_python

    probe = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CREDITLINE_REFUSE_DEMO_PASSWORD)"
    )
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DJANGO_ALLOWED_HOSTS": "billing.example.com",
        "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/creditline",
    }
    result = run_python(["-c", probe], env)

    assert (result.returncode, result.stdout.strip().splitlines()[-1]) == (0, "True")
