"""`Authorization: Bearer <api key>` and the read / write scopes."""

import hmac
import re
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from tenants.api.throttling import auth_failure_record, auth_failures_check
from tenants.cache import config_stamp_current, config_stamp_provisional
from tenants.models import ApiKey
from tenants.selectors import api_key_cache, api_key_get_cached
from tenants.services import api_key_hash, api_key_parse, api_key_touch

# What api_key_create issues (`cl_<8 hex>_<43 url-safe>`), with room to spare. A header that
# cannot hold such a key is refused before anything is looked up.
_KEY_FORMAT = re.compile(r"cl_[0-9A-Za-z]{8}_[0-9A-Za-z_-]{1,128}")
_MAX_HEADER_BYTES = 256


def _cached_provisionally(key_hash: str) -> ApiKey | None:
    """The cached key whose SHA-256 is `key_hash`, served before the request has read the
    config stamp where the request allows that (TenantApiView, which confirms the stamp before
    it acts: tenants.cache, "Provisional entries"); None otherwise, or if none is cached."""
    found = api_key_cache.peek(key_hash)
    if found is None:
        return None
    stamp, api_key = found
    if not hmac.compare_digest(key_hash, api_key.key_hash):
        return None
    return api_key if config_stamp_provisional(stamp) else None


class ApiKeyAuthentication(BaseAuthentication):
    """Resolves the key to its tenant; `request.auth` is the ApiKey, `request.user` is None.

    Warm, this is one query: the config stamp (tenants/cache.py), which the request's pricing
    reuses; the key and its tenant come from the process's cache while the stamp is unchanged.
    Under TenantApiView no query at all: the key is served from the cache provisionally and the
    view reads the stamp, with the first query its handler needs, before it acts
    (TenantApiView.initial); api_key_touch waits for that too.
    """

    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        # An address over its failed-authentication limit is refused before a key this process
        # has not cached is queried for (ApiKeyRateThrottle refuses it for a cached key, in the
        # round trip that counts the key's requests), and every failure counts against it
        # (tenants/api/throttling.py).
        if not get_authorization_header(request):
            return None
        try:
            return self._authenticate(request)
        except exceptions.AuthenticationFailed:
            auth_failures_check(request)  # already over its limit: 429, as for a right key
            auth_failure_record(request)
            raise

    def _authenticate(self, request: Request) -> tuple[Any, ApiKey] | None:
        raw = get_authorization_header(request)
        if len(raw) > _MAX_HEADER_BYTES:
            raise self._invalid()
        header = raw.split()
        if not header:
            return None
        if header[0].lower() != self.keyword or len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "The Authorization header must be 'Bearer <api key>'.",
                code="malformed_authorization",
            )
        try:
            plaintext = header[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(
                "The API key contains characters an API key never has.",
                code="malformed_authorization",
            ) from None
        if not _KEY_FORMAT.fullmatch(plaintext):
            raise self._invalid()
        key_hash = api_key_hash(plaintext)
        api_key = _cached_provisionally(key_hash)
        provisional = api_key is not None
        if api_key is None:
            api_key = self._lookup(plaintext, key_hash, request)
        if api_key.is_revoked:  # never undone, so a provisional entry may say it too
            raise exceptions.AuthenticationFailed(
                "This API key has been revoked.", code="revoked_api_key"
            )
        if not provisional:
            api_key_touch(api_key=api_key)
        return (None, api_key)

    def _lookup(self, plaintext: str, key_hash: str, request: Request) -> ApiKey:
        prefix = api_key_parse(plaintext)
        api_key = api_key_get_cached(
            key_hash=key_hash,
            prefix=prefix,
            stamp=config_stamp_current(),
            before_query=lambda: auth_failures_check(request),
        )
        if api_key is None:
            raise self._invalid()
        return api_key

    @staticmethod
    def _invalid() -> exceptions.AuthenticationFailed:
        return exceptions.AuthenticationFailed("The API key is not valid.", code="invalid_api_key")

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class HasScope(BasePermission):
    """Safe methods need the `read` scope, the others `write`; a view that names a
    `required_scope` (`billing` on the routes that move money) needs that one as well."""

    def has_permission(self, request: Request, view: Any) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(
                "An API key is required: send 'Authorization: Bearer <api key>'."
            )
        method_scope = ApiKey.Scope.READ if request.method in SAFE_METHODS else ApiKey.Scope.WRITE
        for scope in (method_scope, getattr(view, "required_scope", None)):
            if scope and not api_key.has_scope(scope):
                raise exceptions.PermissionDenied(
                    f"This API key lacks the '{scope}' scope.", code="insufficient_scope"
                )
        return True
