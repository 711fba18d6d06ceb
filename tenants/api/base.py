"""The one base of every tenant API view: it resolves `self.tenant` once, from the API key.

Subclasses cannot override the hooks that authenticate, authorize or scope (a TypeError at
import time says so), and they reach rows only through `scoped()` / `get_scoped_or_404()`.

A warm request reads the database once before its handler: the authentication serves the
API key from the process's cache provisionally, and `initial()` confirms it by reading the
config stamp (tenants/cache.py), together with the one read the view names in
`stamp_companion()` (metering's usage API: the events already recorded with the keys it was
sent), before anything else happens. If the stamp moved, the key is looked up again.
"""

from collections.abc import Sequence
from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from tenants.cache import (
    Companion,
    config_stamp_confirm,
    config_stamp_scope,
    config_stamp_unconfirmed,
)
from tenants.exceptions import TenantSuspended
from tenants.models import ApiKey, Tenant
from tenants.services import api_key_touch

M = TypeVar("M", bound=Model)

_SEALED = (
    "dispatch",
    "initial",
    "get_authenticators",
    "get_permissions",
    "check_permissions",
    "check_object_permissions",
    "perform_authentication",
    "get_queryset",
    "get_object",
)


class TenantApiView(APIView):
    required_scope: str | None = None
    _tenant: Tenant | None = None
    # What the view's stamp_companion() read with the stamp; None if it did not run.
    companion_rows: Sequence[tuple[Any, ...]] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = [name for name in _SEALED if name in cls.__dict__]
        if overridden:
            raise TypeError(
                f"{cls.__name__} may not override {overridden}: tenant scoping lives in "
                "TenantApiView alone."
            )
        for attr in ("authentication_classes", "permission_classes"):
            if attr in cls.__dict__:
                raise TypeError(f"{cls.__name__} may not set {attr}.")

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        # The config stamp is read once per request, by initial() (or by the authentication of
        # a key not cached); pricing reuses it.
        with config_stamp_scope(provisional=True):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            super().initial(request, *args, **kwargs)  # authentication, scopes, rate limits
        except exceptions.APIException:
            # A refusal under a provisional key: the key first (a revoked one is a 401).
            self._stamp_confirm(request, companion=False)
            raise
        self._stamp_confirm(request, companion=True)
        api_key = request.auth
        if not isinstance(api_key, ApiKey):  # HasScope already refuses this; belt and braces.
            raise exceptions.NotAuthenticated()
        if not api_key.tenant.is_active:
            raise TenantSuspended()
        self._tenant = api_key.tenant

    def stamp_companion(self, request: Request, *, tenant_id: int) -> Companion | None:
        """A read the handler will need (a SELECT and its parameters), run in the statement
        that reads the config stamp; its rows land in `companion_rows`. Runs after the
        authentication, scopes and rate limits, before the handler, only when the key came
        from the cache. An error it raises (a body that does not parse) is raised once the
        key is confirmed. The handler must check that the rows are for what it was sent."""
        return None

    def _stamp_confirm(self, request: Request, *, companion: bool) -> None:
        if not config_stamp_unconfirmed():
            return
        api_key = request.auth
        deferred: Exception | None = None
        query = None
        if companion and isinstance(api_key, ApiKey):
            try:
                query = self.stamp_companion(request, tenant_id=api_key.tenant_id)
            except Exception as exc:
                deferred = exc
        confirmed, rows = config_stamp_confirm(query)
        if query is not None:
            self.companion_rows = rows
        if confirmed:
            if isinstance(api_key, ApiKey):
                api_key_touch(api_key=api_key)
        else:
            # Served from an entry older than the stamp: the key again, under this stamp (the
            # same key is the same tenant, so the companion's rows still hold).
            self._authenticate_again(request)
            self.check_permissions(request)
        if deferred is not None:
            raise deferred

    def _authenticate_again(self, request: Request) -> None:
        """What DRF's first access to `request.user` does, once more."""
        for authenticator in self.get_authenticators():
            found = authenticator.authenticate(request)
            if found is not None:
                request.user, request.auth = found
                return
        raise exceptions.NotAuthenticated()

    @property
    def tenant(self) -> Tenant:
        if self._tenant is None:
            raise RuntimeError("self.tenant is read before the request was authenticated.")
        return self._tenant

    @property
    def api_key(self) -> ApiKey:
        api_key = self.request.auth
        assert isinstance(api_key, ApiKey)
        return api_key

    def scoped(self, model: type[M]) -> QuerySet[M]:
        return model._default_manager.filter(tenant=self.tenant)

    def get_scoped_or_404(self, model: type[M], **lookup: Any) -> M:
        try:
            return self.scoped(model).get(**lookup)
        except (model.DoesNotExist, ValueError, TypeError):  # type: ignore[attr-defined]
            raise exceptions.NotFound(f"No {model._meta.verbose_name} with that id.") from None
