"""Rate limits on the API: per API key, and per client address on failed authentication (a
key-guessing client is throttled, its right guesses too), with the address taken from
X-Forwarded-For only behind a proxy that settings name. 429 in the error shape, Retry-After."""

import gc
from collections.abc import Iterator
from typing import Any
from unittest import mock

import pytest
import redis
import time_machine
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.test import RequestFactory
from rest_framework.test import APIClient

from tenants.api import throttling
from tenants.api.throttling import rate_parse
from tenants.clients import client_address, client_key
from tenants.models import Tenant
from tenants.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db
URL = "/api/v1/tenant"
WRONG = "Bearer cl_00000000_" + "x" * 43


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    # Counted in the cache, which tests/conftest.py clears around every test.
    settings.CREDITLINE_API_KEY_RATE = "3/min"
    settings.CREDITLINE_AUTH_FAILURE_RATE = "2/min"
    settings.CREDITLINE_TRUSTED_PROXIES = []


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    # 30 s into a minute: every window here has 30 s left.
    with time_machine.travel("2026-03-02 12:00:30+00:00", tick=False) as traveller:
        yield traveller


def throttled(message: str, wait: int = 30) -> dict[str, Any]:
    return {
        "error": {
            "code": "rate_limited",
            "message": f"{message} Expected available in {wait} seconds.",
        }
    }


GUESSING = "Too many failed authentication attempts from this address (2 a minute)."
INVALID = {"error": {"code": "invalid_api_key", "message": "The API key is not valid."}}


def call(authorization: str | None = None, **meta: Any) -> Any:
    if authorization is not None:
        meta["HTTP_AUTHORIZATION"] = authorization
    return APIClient(**meta).get(URL)


@pytest.fixture
def key(tenant: Tenant) -> str:
    return "Bearer " + api_key_create(tenant=tenant, name="limits").plaintext


def test_a_key_over_its_rate_gets_429_until_the_window_ends(
    tenant: Tenant, key: str, clock: time_machine.Traveller
) -> None:
    answers = [call(key).status_code for _ in range(3)]
    over = call(key)

    assert answers == [200, 200, 200]
    assert over.status_code == 429
    assert over.json() == throttled("This API key is limited to 3 requests a minute.")
    assert over["Retry-After"] == "30"
    other_key = "Bearer " + api_key_create(tenant=tenant, name="other").plaintext
    assert call(other_key).status_code == 200  # counted per key, not per tenant
    clock.shift(29)
    assert call(key)["Retry-After"] == "1"
    clock.shift(1)
    assert call(key).status_code == 200


def test_an_empty_rate_turns_the_key_limit_off(key: str, settings: Any) -> None:
    settings.CREDITLINE_API_KEY_RATE = ""

    assert {call(key).status_code for _ in range(5)} == {200}


def test_a_key_guessing_address_is_throttled_right_guesses_too(
    key: str, clock: time_machine.Traveller
) -> None:
    first, second = call(WRONG), call(WRONG)
    third = call(WRONG)
    right = call(key)

    assert [(r.status_code, r.json()) for r in (first, second)] == [(401, INVALID)] * 2
    assert (third.status_code, third.json(), third["Retry-After"]) == (
        429,
        throttled(GUESSING),
        "30",
    )
    assert (right.status_code, right.json()) == (429, throttled(GUESSING))
    assert call(key, REMOTE_ADDR="198.51.100.9").status_code == 200  # another address
    clock.shift(30)
    assert call(key).status_code == 200


@pytest.mark.parametrize(
    "failure",
    [
        "Basic dXNlcjpwYXNz",  # not a bearer token
        "Bearer not-a-key",
        "Bearer cl_0000_x",
        "Bearer " + "k" * 300,  # longer than a header with a key can be
    ],
)
def test_every_kind_of_failed_authentication_counts(
    key: str, clock: time_machine.Traveller, failure: str
) -> None:
    assert [call(failure).status_code for _ in range(2)] == [401, 401]

    assert call(key).json() == throttled(GUESSING)


def test_a_revoked_key_counts_as_a_failure(
    tenant: Tenant, key: str, clock: time_machine.Traveller
) -> None:
    issued = api_key_create(tenant=tenant, name="old")
    api_key_revoke(api_key=issued.api_key)
    revoked = f"Bearer {issued.plaintext}"

    assert [call(revoked).json()["error"]["code"] for _ in range(2)] == ["revoked_api_key"] * 2
    assert call(key).status_code == 429


def test_requests_without_a_key_are_not_failed_authentications(
    key: str, clock: time_machine.Traveller
) -> None:
    assert {call().status_code for _ in range(5)} == {401}

    assert call(key).status_code == 200


def test_forwarded_for_is_ignored_without_trusted_proxies(clock: time_machine.Traveller) -> None:
    statuses = [call(WRONG, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code for n in range(1, 4)]

    assert statuses == [401, 401, 429]  # all counted against REMOTE_ADDR


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    key: str, settings: Any, clock: time_machine.Traveller
) -> None:
    settings.CREDITLINE_TRUSTED_PROXIES = ["10.0.0.0/8"]
    via_proxy = {"REMOTE_ADDR": "10.1.2.3"}
    guesser = via_proxy | {"HTTP_X_FORWARDED_FOR": "203.0.113.7"}
    # The guesser writes a fake address of its own at the left: the proxy appends the real one.
    spoofing = via_proxy | {"HTTP_X_FORWARDED_FOR": "198.51.100.1, 203.0.113.7"}

    assert [call(WRONG, **guesser).status_code, call(WRONG, **spoofing).status_code] == [401, 401]
    assert call(key, **guesser).status_code == 429
    assert call(key, **via_proxy, HTTP_X_FORWARDED_FOR="203.0.113.8").status_code == 200
    assert call(key, **via_proxy, HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 200


def test_an_ipv6_client_is_counted_by_its_64(key: str, clock: time_machine.Traveller) -> None:
    assert call(WRONG, REMOTE_ADDR="2001:db8:1:2::1").status_code == 401
    assert call(WRONG, REMOTE_ADDR="2001:db8:1:2::ffff").status_code == 401

    assert call(key, REMOTE_ADDR="2001:db8:1:2::abcd").status_code == 429
    assert call(key, REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


@pytest.mark.parametrize(
    ("trusted", "remote", "forwarded", "address"),
    [
        ([], "192.0.2.1", "203.0.113.7", "192.0.2.1"),
        (["10.0.0.0/8"], "192.0.2.1", "203.0.113.7", "192.0.2.1"),  # peer is no proxy of ours
        (["10.0.0.0/8"], "10.0.0.1", "203.0.113.7", "203.0.113.7"),
        (["10.0.0.0/8"], "10.0.0.1", "198.51.100.1, 203.0.113.7", "203.0.113.7"),
        (["10.0.0.0/8"], "10.0.0.1", "203.0.113.7, 10.0.0.2", "203.0.113.7"),  # two proxies
        (["10.0.0.0/8"], "10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),  # all ours
        (["10.0.0.0/8"], "10.0.0.1", "", "10.0.0.1"),
        (["10.0.0.0/8"], "10.0.0.1", "junk, 10.0.0.2", "10.0.0.2"),
        (["10.0.0.1", "2001:db8::/32"], "2001:db8::5", " 2001:db8:ffff::9 ", "2001:db8:ffff::9"),
        (["2001:db8::/32"], "2001:db8::5", "203.0.113.7", "203.0.113.7"),
    ],
)
def test_the_client_address(
    settings: Any, trusted: list[str], remote: str, forwarded: str, address: str
) -> None:
    settings.CREDITLINE_TRUSTED_PROXIES = trusted
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request) == address


@pytest.mark.parametrize(
    ("remote", "key"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::"),
        ("not an address", "unknown"),
    ],
)
def test_the_client_key(remote: str, key: str) -> None:
    assert client_key(RequestFactory().get("/", REMOTE_ADDR=remote)) == key


def test_rates_are_read_and_a_wrong_one_is_refused() -> None:
    assert rate_parse("10/s") == (10, 1, "second")
    assert rate_parse("6000/min") == (6000, 60, "minute")
    assert rate_parse("10/hour") == (10, 3600, "hour")
    assert rate_parse("  ") is None
    with pytest.raises(ImproperlyConfigured, match="A rate is N/s, N/min, N/h or N/day"):
        rate_parse("ten/min")


@pytest.fixture
def redis_cache(settings: Any) -> Iterator[None]:
    """The production cache: Django's RedisCache, on a database of the shared Redis that only
    this test uses (emptied before and after)."""
    location = "redis://127.0.0.1:6379/12"
    redis.Redis.from_url(location).flushdb()
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": location}
    }
    yield
    redis.Redis.from_url(location).flushdb()


@pytest.mark.usefixtures("redis_cache")
def test_on_redis_a_key_is_counted_in_one_round_trip_and_refused_over_its_rate(
    tenant: Tenant, key: str, clock: time_machine.Traveller
) -> None:
    answers = [call(key).status_code for _ in range(3)]
    over = call(key)

    assert (answers, over.status_code) == ([200, 200, 200], 429)
    assert over.json() == throttled("This API key is limited to 3 requests a minute.")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/12")
    (counter,) = [k for k in client.keys("*") if b"throttle:key:" in k]
    assert (int(client.get(counter) or 0), 0 < client.ttl(counter) <= 61) == (4, True)


@pytest.mark.usefixtures("redis_cache")
def test_on_redis_a_guessing_address_is_refused_a_cached_right_key_too(
    key: str, clock: time_machine.Traveller
) -> None:
    assert call(key).status_code == 200  # the key is now in this process's cache
    assert [call(WRONG).status_code for _ in range(3)] == [401, 401, 429]

    right = call(key)  # no query for it: refused in the round trip that counts its requests

    assert (right.status_code, right.json()) == (429, throttled(GUESSING))
    assert call(key, REMOTE_ADDR="198.51.100.9").status_code == 200


@pytest.mark.usefixtures("redis_cache")
def test_on_redis_a_cached_key_is_counted_through_one_client_of_the_backend(
    key: str, clock: time_machine.Traveller
) -> None:
    """Django's RedisCache makes a redis.Redis per operation; the throttle keeps one per cache
    backend, so a request with a key already cached makes none."""
    assert call(key).status_code == 200  # the key is cached, the backend's client made
    made: list[redis.Redis] = []
    original = redis.Redis.__init__

    def init(self: redis.Redis, *args: Any, **kwargs: Any) -> None:
        made.append(self)
        original(self, *args, **kwargs)

    with mock.patch.object(redis.Redis, "__init__", init):
        answers = [call(key).status_code for _ in range(2)]

    assert (answers, made) == ([200, 200], [])


def test_the_throttles_client_goes_with_its_cache_backend() -> None:
    backend = RedisCache("redis://127.0.0.1:6379/12", {})
    before = len(throttling._clients)

    client = throttling._redis_client(backend)

    assert throttling._redis_client(backend) is client
    assert len(throttling._clients) == before + 1
    del backend, client
    gc.collect()
    assert len(throttling._clients) == before
