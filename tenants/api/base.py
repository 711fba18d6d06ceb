"""The one base of every tenant API view: it resolves `self.tenant` once, from the API key.

Subclasses cannot override the hooks that authenticate, authorize or scope (a TypeError at
import time says so), and they reach rows only through `scoped()` / `get_scoped_or_404()`.
"""

from typing import Any, TypeVar

from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponseBase
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.views import APIView

from tenants.cache import config_stamp_scope
from tenants.exceptions import TenantSuspended
from tenants.models import ApiKey, Tenant

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
        # The config stamp is read once per request, by the authentication; pricing reuses it.
        with config_stamp_scope():
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        api_key = request.auth
        if not isinstance(api_key, ApiKey):  # HasScope already refuses this; belt and braces.
            raise exceptions.NotAuthenticated()
        if not api_key.tenant.is_active:
            raise TenantSuspended()
        self._tenant = api_key.tenant

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
