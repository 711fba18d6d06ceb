"""The team: members and their roles, invitations by e-mail (a link to an Invitation row,
which expires, works once and may be withdrawn), role changes, removal and leaving. The rules
live in tenants' services (the last owner stays; only an owner touches owners); this page
offers only what the member's role may do."""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views import View

from portal.access import Capability
from portal.base import SESSION_KEY, PortalView
from tenants.exceptions import InvalidInvitation, LastOwner, TeamChangeRefused
from tenants.models import Membership
from tenants.selectors import invitation_get, invitation_pending_list, membership_list
from tenants.services import (
    INVITE_MAX_AGE,
    membership_invitation_accept,
    membership_invitation_read,
    membership_invitation_withdraw,
    membership_invite,
    membership_remove,
    membership_role_change,
)

Role = Membership.Role


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)


class TeamPage(PortalView):
    template_name = "portal/team.html"
    section = "team"
    requires = {"POST": Capability.MANAGE}

    def get(self, request: HttpRequest) -> HttpResponse:
        return self.team(InviteForm())

    def post(self, request: HttpRequest) -> HttpResponse:
        """An invitation."""
        form = InviteForm(request.POST)
        if not form.is_valid():
            return self.team(form, status=422)
        email, role = form.cleaned_data["email"], form.cleaned_data["role"]
        try:
            membership_invite(
                actor=self.membership,
                email=email,
                role=role,
                link=lambda token: request.build_absolute_uri(
                    reverse("portal:team-join", args=[token])
                ),
            )
        except TeamChangeRefused as exc:
            raise PermissionDenied(exc.message) from None
        except InvalidInvitation as exc:
            form.add_error("email", exc.message)
            return self.team(form, status=422)
        messages.success(request, f"Invitation sent to {email} as {Role(role).label}.")
        return HttpResponseRedirect(reverse("portal:team"))

    def team(self, form: InviteForm, *, status: int = 200, **extra: Any) -> HttpResponse:
        return self.page(
            {**team_context(self.membership, self.access.own), "form": form, **extra}, status=status
        )


def team_context(me: Membership, owner: bool) -> dict[str, Any]:
    """The rows with what `me` may do to each (the services decide; this only hides what they
    would refuse)."""
    members = list(membership_list(tenant=me.tenant))
    owners = sum(1 for m in members if m.role == Role.OWNER)
    manager = me.role in (Role.OWNER, Role.ADMIN)
    grantable = [(v, label) for v, label in Role.choices if owner or v != Role.OWNER]
    rows = []
    for m in members:
        last_owner = m.role == Role.OWNER and owners == 1
        touchable = manager and (owner or m.role != Role.OWNER) and not last_owner
        rows.append(
            {
                "m": m,
                "is_me": m.pk == me.pk,
                "last_owner": last_owner,
                "can_change": touchable,
                "can_remove": touchable and m.pk != me.pk,
            }
        )
    invitations = (
        [
            {"i": i, "can_withdraw": owner or i.role != Role.OWNER}
            for i in invitation_pending_list(tenant=me.tenant)
        ]
        if manager
        else []
    )
    return {
        "rows": rows,
        "invitations": invitations,
        "grantable": grantable,
        "invite_days": INVITE_MAX_AGE.days,
        "can_leave": not (me.role == Role.OWNER and owners == 1),
    }


class _MemberView(PortalView):
    section = "team"
    template_name = "portal/team.html"

    def target(self, membership_id: int) -> Membership:
        found = membership_list(tenant=self.tenant).filter(pk=membership_id).first()
        if found is None:
            raise Http404("No member of your team has that id.")
        return found

    def change(self, apply: Callable[[], object], *, done: str, to: str = "") -> HttpResponse:
        """Run a team service: a refusal for the role is the 403 page, the last owner's is the
        team page saying why (409)."""
        try:
            apply()
        except TeamChangeRefused as exc:
            raise PermissionDenied(exc.message) from None
        except LastOwner as exc:
            return self.refused(exc.message, 409)
        if to == "/":
            self.request.session.pop(SESSION_KEY, None)  # left: the portal picks another tenant
        messages.success(self.request, done)
        return HttpResponseRedirect(to or reverse("portal:team"))

    def refused(self, message: str, status: int) -> HttpResponse:
        messages.error(self.request, message)
        context = {**team_context(self.membership, self.access.own), "form": InviteForm()}
        return self.page(context, status=status)


class TeamRolePage(_MemberView):
    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, membership_id: int) -> HttpResponse:
        target = self.target(membership_id)
        role = request.POST.get("role", "")
        if role not in Role.values:
            return self.refused("Choose one of the roles.", 422)
        return self.change(
            lambda: membership_role_change(actor=self.membership, membership=target, role=role),
            done=f"{target.user.get_username()} is now {Role(role).label}.",
        )


class TeamRemovePage(_MemberView):
    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, membership_id: int) -> HttpResponse:
        target = self.target(membership_id)
        if target.pk == self.membership.pk:
            return self.refused("To leave the team, use Leave.", 422)
        return self.change(
            lambda: membership_remove(actor=self.membership, membership=target),
            done=f"{target.user.get_username()} was removed from the team.",
        )


class TeamLeavePage(_MemberView):
    def post(self, request: HttpRequest) -> HttpResponse:
        me = self.membership
        return self.change(
            lambda: membership_remove(actor=me, membership=me),
            done=f"You left {self.tenant.name}.",
            to="/",
        )


class TeamWithdrawPage(_MemberView):
    """POST: withdraw a pending invitation (its link stops working)."""

    requires = {"POST": Capability.MANAGE}

    def post(self, request: HttpRequest, invitation_id: int) -> HttpResponse:
        invitation = invitation_get(tenant=self.tenant, invitation_id=invitation_id)
        if invitation is None:
            raise Http404("No invitation of your team has that id.")
        try:
            membership_invitation_withdraw(actor=self.membership, invitation=invitation)
        except TeamChangeRefused as exc:
            raise PermissionDenied(exc.message) from None
        except InvalidInvitation as exc:
            return self.refused(exc.message, exc.status_code)
        messages.success(request, f"The invitation to {invitation.email} was withdrawn.")
        return HttpResponseRedirect(reverse("portal:team"))


class TeamJoinPage(LoginRequiredMixin, View):
    """An invitation's link. Not a PortalView: the invited user is not a member yet (maybe of
    no tenant at all). GET shows the invitation; POST accepts it."""

    template_name = "portal/join.html"

    def get(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            invitation = membership_invitation_read(token=token, user=request.user)  # type: ignore[arg-type]
        except InvalidInvitation as exc:
            return self._refused(exc)
        addressed = (request.user.email or "").lower() == invitation.email  # type: ignore[union-attr]
        context = {"invitation": invitation, "addressed": addressed}
        return render(request, self.template_name, context)

    def post(self, request: HttpRequest, token: str) -> HttpResponse:
        try:
            membership = membership_invitation_accept(token=token, user=request.user)  # type: ignore[arg-type]
        except InvalidInvitation as exc:
            return self._refused(exc)
        request.session[SESSION_KEY] = membership.tenant.slug
        messages.success(
            request, f"You are in {membership.tenant.name} as {membership.get_role_display()}."
        )
        return HttpResponseRedirect("/")

    def _refused(self, exc: InvalidInvitation) -> HttpResponse:
        return render(
            self.request, self.template_name, {"error": exc.message}, status=exc.status_code
        )
