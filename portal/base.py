"""The portal's one base view: it resolves the signed-in user's tenant and role once per
request, and checks the role against what the page asks for (as `TenantApiView` does for the
API). Pages may not override how that is done.

The tenant is the one named by `?tenant=<slug>` (remembered in the session), else the one
remembered, else the user's first. A slug the user is not a member of, and a user with no
membership at all, get the portal's 404 page: it never tells whether a tenant exists.
"""

from collections.abc import Mapping
from typing import Any, ClassVar

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.views import View

from portal.access import Access, Capability
from portal.nav import nav_for
from tenants.models import Membership, Tenant

SESSION_KEY = "portal_tenant"
_SEALED = ("dispatch", "setup_membership")


def membership_resolve(request: HttpRequest) -> Membership:
    """The membership the request acts through, tenant included, in one query."""
    memberships = Membership.objects.filter(user_id=int(request.user.pk or 0)).select_related(
        "tenant"
    )
    asked = request.GET.get("tenant")
    if asked is not None:
        # PostgreSQL compares no text holding a NUL (it raises): no slug holds one.
        membership = None if "\x00" in asked else memberships.filter(tenant__slug=asked).first()
        if membership is None:
            raise Http404("You are not a member of that tenant.")
    else:
        remembered = request.session.get(SESSION_KEY)
        membership = (
            memberships.filter(tenant__slug=remembered).first() if remembered else None
        ) or memberships.order_by("tenant__slug").first()
        if membership is None:
            raise Http404("You are not a member of any tenant yet.")
    request.session[SESSION_KEY] = membership.tenant.slug
    return membership


class PortalView(LoginRequiredMixin, View):
    """Subclasses set `template_name` and `section` (the nav entry they belong to), ask for a
    capability per method in `requires` (READ when unlisted), and call `self.page(...)`."""

    template_name: ClassVar[str] = ""
    section: ClassVar[str] = ""
    requires: ClassVar[Mapping[str, Capability]] = {}
    _membership: Membership | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = [name for name in _SEALED if name in cls.__dict__]
        if overridden:
            raise TypeError(
                f"{cls.__name__} may not override {overridden}: the tenant and the role are "
                "resolved in PortalView alone."
            )

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        self.setup_membership(request)
        needed = self.requires.get(request.method or "GET", Capability.READ)
        if not self.access.allows(needed):
            role = self.membership.get_role_display()
            raise PermissionDenied(f"Your role ({role}) cannot do this.")
        return super().dispatch(request, *args, **kwargs)

    def setup_membership(self, request: HttpRequest) -> None:
        self._membership = membership_resolve(request)

    @property
    def membership(self) -> Membership:
        if self._membership is None:
            raise RuntimeError("The membership is read before dispatch resolved it.")
        return self._membership

    @property
    def tenant(self) -> Tenant:
        return self.membership.tenant

    @property
    def access(self) -> Access:
        return Access(role=self.membership.role)

    def page(self, context: Mapping[str, Any] | None = None, *, status: int = 200) -> HttpResponse:
        """The page in the portal's layout: the tenant, the role's answers and the nav come
        with every page."""
        return render(
            self.request,
            self.template_name,
            {
                "tenant": self.tenant,
                "membership": self.membership,
                "access": self.access,
                "nav": nav_for(self.access, current=self.section),
                # The tenant switcher: every tenant the user belongs to (one query, in the layout).
                "memberships": Membership.objects.filter(user_id=int(self.request.user.pk or 0))
                .select_related("tenant")
                .order_by("tenant__slug"),
                **(context or {}),
            },
            status=status,
        )
