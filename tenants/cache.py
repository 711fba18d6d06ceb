"""In-process caches of configuration (API keys, tenants, pricing), kept honest by one stamp.

The stamp is one row in PostgreSQL (tenants.ConfigStamp), so every process sees it: web workers,
Celery workers, management commands. Each API request reads it once (the authentication does,
inside `config_stamp_scope()`), and every cache entry records the stamp it was loaded under: an
entry is served only while the stamp is still that value.

Every change to something cached calls `config_stamp_bump()` **after** the change, **in the
same transaction**. Why that is correct:
- The new value becomes visible to other processes at commit, together with the change, never
  before. A reader reads the stamp first and the rows after (READ COMMITTED: each statement
  sees everything committed before it began), so rows it loads are at least as new as its
  stamp: it may cache new rows under an old stamp (a harmless reload later), never old rows
  under the new stamp.
- Bumping on commit instead (`transaction.on_commit`) would leave a window, or forever if the
  process died between commit and bump, in which the change is visible but the stamp is not.
- The value is random (63 bits), not `value + 1`: a rollback restores the old value, and `+ 1`
  would then hand the rolled-back value out again, serving whatever the rolled-back
  transaction cached under its own stamp; a random value comes back by a 2**-63 chance.
- Within a request, a bump also moves the request's memoized stamp, so the request's own
  reads after its change are not served from entries loaded before it.

What is cached and who bumps: tenants (status, slug; `tenant_suspend` / `tenant_reactivate`,
the admin's save), API keys (`api_key_revoke`), rate cards (`ratecard_version_publish`,
`ratecard_assign`, `ratecard_set_default`, `cost_catalog_version_publish`, the admin's save).
Changes that create a new key to cache under (a new API key, a new tenant) need no bump.

Provisional entries (the API's one round trip): inside a scope opened with
`provisional=True` (TenantApiView's), an API key cached under some stamp may be served before
the request has read the stamp (`config_stamp_provisional`), so that the stamp can be read
later together with the first query the view needs (`config_stamp_confirm(companion)`, one
statement). The view confirms before it acts: if the stamp is no longer the entry's, the key is
looked up again under the new one (a revoked key is refused then), and nothing the view did
before confirming may depend on the entry being current.

The UPDATE locks the one row until commit: config changes serialize on it, and it must be the
last lock a transaction takes (ratecards and billing take theirs before the service bumps).
"""

import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from django.db import connection

K = TypeVar("K")
V = TypeVar("V")

_READ = "SELECT value FROM tenants_configstamp WHERE id = 1"
_BUMP = (
    "INSERT INTO tenants_configstamp (id, value) VALUES (1, %s)"
    " ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value RETURNING value"
)


# A read to run in the statement that reads the stamp: SQL (a SELECT) and its parameters.
Companion = tuple[str, Sequence[Any]]
# One statement: the stamp, and the companion's rows (`true` marks a row of the companion; a
# companion without rows leaves one row whose marker is NULL).
_READ_WITH = (
    "SELECT (" + _READ + "), c.* FROM (SELECT 1) AS one"  # noqa: S608
    " LEFT JOIN LATERAL (SELECT true, q.* FROM ({companion}) AS q) AS c ON true"
)


class _RequestStamp:
    __slots__ = ("allow_provisional", "provisional", "value")

    def __init__(self, *, allow_provisional: bool) -> None:
        self.value: int | None = None
        self.allow_provisional = allow_provisional
        # The stamps of the entries served before the stamp was read.
        self.provisional: set[int] = set()


_request_stamp: ContextVar[_RequestStamp | None] = ContextVar("config_stamp", default=None)


def config_stamp_read() -> int:
    """The stamp as this connection sees it now: one indexed single-row read. 0 when the row is
    missing (a test database flushed between tests; the next bump recreates it)."""
    with connection.cursor() as cursor:
        cursor.execute(_READ)
        row = cursor.fetchone()
    return int(row[0]) if row else 0


def config_stamp_read_with(companion: Companion) -> tuple[int, list[tuple[Any, ...]]]:
    """The stamp and the companion's rows, in one statement (so from one snapshot)."""
    sql, params = companion
    with connection.cursor() as cursor:
        cursor.execute(_READ_WITH.format(companion=sql), params)
        rows = cursor.fetchall()
    value = int(rows[0][0]) if rows[0][0] is not None else 0
    return value, [row[2:] for row in rows if row[1] is not None]


def config_stamp_bump() -> int:
    """A new stamp, written in the caller's transaction (required) after its change."""
    if not connection.in_atomic_block:
        raise RuntimeError(
            "config_stamp_bump() must run in the transaction of the change it announces."
        )
    with connection.cursor() as cursor:
        cursor.execute(_BUMP, [secrets.randbits(63)])
        row = cursor.fetchone()
    value = int(row[0])
    scope = _request_stamp.get()
    if scope is not None:
        scope.value = value
    return value


def config_stamp_current() -> int:
    """The request's stamp: read once per `config_stamp_scope()`, or on every call outside one."""
    scope = _request_stamp.get()
    if scope is None:
        return config_stamp_read()
    if scope.value is None:
        scope.value = config_stamp_read()
    return scope.value


@contextmanager
def config_stamp_scope(*, provisional: bool = False) -> Iterator[None]:
    """One request: the stamp is read at most once inside, by the first reader.
    `provisional`: the caller confirms entries served before the stamp was read (module
    docstring) with `config_stamp_confirm` before it acts."""
    token = _request_stamp.set(_RequestStamp(allow_provisional=provisional))
    try:
        yield
    finally:
        _request_stamp.reset(token)


def config_stamp_provisional(stamp: int) -> bool:
    """May an entry loaded under `stamp` be served now, before the stamp is read? If so, it is
    noted for `config_stamp_confirm`."""
    scope = _request_stamp.get()
    if scope is None or not scope.allow_provisional or scope.value is not None:
        return False
    scope.provisional.add(stamp)
    return True


def config_stamp_unconfirmed() -> bool:
    """Was an entry served provisionally that `config_stamp_confirm` has not confirmed yet?"""
    scope = _request_stamp.get()
    return scope is not None and bool(scope.provisional)


def config_stamp_confirm(
    companion: Companion | None = None,
) -> tuple[bool, list[tuple[Any, ...]]]:
    """Reads the request's stamp (with `companion`, in the same statement) unless it was read
    already; True if every entry served provisionally was loaded under it. The companion's rows
    come back either way ([] without one)."""
    scope = _request_stamp.get()
    if scope is None:
        raise RuntimeError("config_stamp_confirm() runs inside config_stamp_scope().")
    rows: list[tuple[Any, ...]] = []
    if scope.value is None and companion is not None:
        scope.value, rows = config_stamp_read_with(companion)
    elif companion is not None:
        # The stamp was read already (a reader before the view): the companion alone.
        sql, params = companion
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    if scope.value is None:
        scope.value = config_stamp_read()
    confirmed = scope.provisional <= {scope.value}
    scope.provisional.clear()
    return confirmed, rows


_caches: list["StampedCache[object, object]"] = []


class StampedCache(Generic[K, V]):
    """A bounded LRU map whose entries are served only under the stamp they were stored with.

    Thread-safe (one lock; every operation is a few dict steps). Values are shared between the
    requests of a process: store immutable values, or objects the callers never mutate.
    """

    def __init__(self, name: str, *, maxsize: int) -> None:
        self.name = name
        self.maxsize = maxsize
        self._entries: OrderedDict[K, tuple[int, V]] = OrderedDict()
        self._lock = threading.Lock()
        _caches.append(self)  # type: ignore[arg-type]

    def get(self, key: K, stamp: int) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != stamp:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def peek(self, key: K) -> tuple[int, V] | None:
        """The entry and the stamp it was stored under, whatever the stamp is now (for a
        provisional use, which config_stamp_confirm checks)."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, stamp: int, value: V) -> None:
        with self._lock:
            self._entries[key] = (stamp, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def config_caches_clear() -> None:
    """Empties every StampedCache of this process (tests; a shell after a manual SQL change)."""
    for cache in _caches:
        cache.clear()
