"""Rate limits on the API, counted in the cache every process shares (CACHES["default"]: Redis
in production) in fixed windows (a window's counter is one key that expires with it):

- per API key, `CREDITLINE_API_KEY_RATE` (default 6000/min): ApiKeyRateThrottle, the DRF
  throttle of every API view;
- per client address (tenants.clients) on failed authentication,
  `CREDITLINE_AUTH_FAILURE_RATE` (default 30/min): once an address has failed that often, every
  request from it that presents a key is refused until the window ends, a right key as well as
  a wrong one, so the answer tells a key-guessing client nothing.

Both answer 429 `rate_limited` with `Retry-After` (tenants.api.errors). A rate is `N/s`,
`N/min`, `N/h` or `N/day`; an empty rate turns its limit off.
"""

import math
import time
import weakref
from typing import Any

from django.conf import settings
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from tenants.clients import client_key
from tenants.models import ApiKey

_PERIODS = {"s": (1, "second"), "m": (60, "minute"), "h": (3600, "hour"), "d": (86400, "day")}


def rate_parse(rate: str) -> tuple[int, int, str] | None:
    """ "600/min" → (600, 60, "minute"); "" → None (no limit)."""
    if not rate.strip():
        return None
    count, _, period = rate.partition("/")
    unit = _PERIODS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or unit is None:
        raise ImproperlyConfigured(f"A rate is N/s, N/min, N/h or N/day, not {rate!r}.")
    return int(count), unit[0], unit[1]


def _window(name: str, period: int) -> tuple[str, float]:
    """The current window's counter key and the seconds until it ends."""
    now = time.time()
    index = int(now // period)
    return f"throttle:{name}:{period}:{index}", (index + 1) * period - now


def _count(key: str, period: int, *, peek: str = "") -> tuple[int, int]:
    """Add one to the window's counter `key` (made on first use, expiring with the window) and
    read the counter `peek` (0 when missing or not asked for). Every API request does this: on
    Redis in one round trip (SET NX EX, INCR and GET pipelined; Django's add(), incr() and
    get() would be four)."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        name = backend.make_and_validate_key(key)
        pipe = _redis_client(backend).pipeline(transaction=False)
        pipe.set(name, 0, ex=period + 1, nx=True)
        pipe.incr(name)
        if peek:
            pipe.get(backend.make_and_validate_key(peek))
        answers = pipe.execute()
        return int(answers[1]), int(answers[2] or 0) if peek else 0
    # add() creates the counter only if it is missing; incr() is atomic where the cache is.
    cache.add(key, 0, timeout=period + 1)
    try:
        counted = int(cache.incr(key))
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=period + 1)
        counted = 1
    return counted, int(cache.get(peek, 0)) if peek else 0


# One Redis client per cache backend (Django's caches are per thread: so per thread). Django's
# RedisCache makes a new redis.Redis for every operation (get_client), and each one copies
# redis-py's ~170 response callbacks into a dict of its own: more CPU than the round trip, on
# every API request. A client keeps nothing but its connection pool, so one serves every count
# of its backend. Keyed weakly by the backend's client, which the Redis client does not point
# back to: the entry goes with the backend.
_clients: "weakref.WeakKeyDictionary[Any, Any]" = weakref.WeakKeyDictionary()


def _redis_client(backend: RedisCache) -> Any:
    cache_client: Any = backend._cache
    client = _clients.get(cache_client)
    if client is None:
        try:
            pool = cache_client._get_connection_pool(True)  # writes go to the first server
            make = cache_client._client
        except AttributeError:  # Django's internals moved: its public call, a client each time
            return cache_client.get_client(write=True)
        client = _clients[cache_client] = make(connection_pool=pool)
    return client


def _refuse(message: str, wait: float) -> exceptions.Throttled:
    return exceptions.Throttled(wait=max(1, math.ceil(wait)), detail=message)


class ApiKeyRateThrottle(BaseThrottle):
    """At most `CREDITLINE_API_KEY_RATE` requests per key and window, whatever the route; and
    none from an address over its failed-authentication limit, a right key's included (the
    authentication checks that limit before it queries for a key it has not cached, and this
    for the cached ones). Both in one round trip on Redis."""

    def allow_request(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            return True
        limit = rate_parse(getattr(settings, "CREDITLINE_API_KEY_RATE", ""))
        failures = _failure_limit()
        failure_key, failure_wait = (
            _window(f"authfail:{client_key(request)}", failures[1]) if failures else ("", 0.0)
        )
        if limit is None:
            failed = int(cache.get(failure_key, 0)) if failures else 0
            used, key, wait, count, unit = 0, "", 0.0, 0, ""
        else:
            count, period, unit = limit
            key, wait = _window(f"key:{api_key.pk}", period)
            used, failed = _count(key, period, peek=failure_key)
        if failures and failed >= failures[0]:
            raise _refuse(_guessing_message(failures), failure_wait)
        if limit is not None and used > count:
            raise _refuse(f"This API key is limited to {count:,} requests a {unit}.", wait)
        return True


def _failure_limit() -> tuple[int, int, str] | None:
    return rate_parse(getattr(settings, "CREDITLINE_AUTH_FAILURE_RATE", ""))


def _guessing_message(limit: tuple[int, int, str]) -> str:
    count, _, unit = limit
    return f"Too many failed authentication attempts from this address ({count:,} a {unit})."


def auth_failures_check(request: HttpRequest) -> None:
    """Throttled while this client's address is over its failed-authentication limit."""
    limit = _failure_limit()
    if limit is None:
        return
    key, wait = _window(f"authfail:{client_key(request)}", limit[1])
    if int(cache.get(key, 0)) >= limit[0]:
        raise _refuse(_guessing_message(limit), wait)


def auth_failure_record(request: HttpRequest) -> None:
    limit = _failure_limit()
    if limit is not None:
        key, _ = _window(f"authfail:{client_key(request)}", limit[1])
        _count(key, limit[1])
