"""The team page: members and roles, invitations by e-mail and the page that accepts them,
role changes, removal, leaving; the last owner stays; an admin leaves owners alone."""

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client

from tenants.models import Invitation, Membership, OutboxMessage, Tenant
from tenants.services import membership_add
from tests.portal.conftest import Login

pytestmark = pytest.mark.django_db
Role = Membership.Role


def roles(tenant: Tenant) -> dict[str, str]:
    return dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))


def me(client: Client, tenant: Tenant) -> Membership:
    return Membership.objects.get(tenant=tenant, user_id=client.session["_auth_user_id"])


def join(tenant: Tenant, name: str, role: str) -> Membership:
    user = User.objects.create_user(name, email=f"{name}@acme.test")
    return membership_add(tenant=tenant, user=user, role=role)


def signed_in_as(name: str, email: str) -> Client:
    client = Client()
    client.force_login(User.objects.create_user(name, email=email))
    return client


def _path_from_outbox() -> str:
    """The invitation's link, read from its outbox message (the e-mail goes after commit)."""
    link = OutboxMessage.objects.get(task="tenants.invite_email_send").kwargs["link"]
    return str(link).removeprefix("http://testserver")


def test_an_owner_invites_and_the_invited_user_joins(
    login: Login, tenant: Tenant, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    owner = login(tenant)

    with django_capture_on_commit_callbacks(execute=True):
        sent = owner.post("/team/", {"email": "nina@example.com", "role": "billing"}, follow=True)

    assert sent.redirect_chain == [("/team/", 302)]
    assert "Invitation sent to nina@example.com as Billing." in sent.content.decode()
    (message,) = mail.outbox
    (path,) = re.findall(r"http://testserver(/team/join/[^/\s]+/)", str(message.body))
    nina = signed_in_as("nina", "nina@example.com")
    shown = nina.get(path)
    assert shown.status_code == 200
    assert "Join Acme Agents" in shown.content.decode()
    assert "nina" not in roles(tenant)

    joined = nina.post(path, follow=True)

    assert joined.redirect_chain == [("/", 302)]
    assert "You are in Acme Agents as Billing." in joined.content.decode()
    assert roles(tenant)["nina"] == "billing"
    assert "nina@example.com" in owner.get("/team/").content.decode()


def test_the_link_asks_a_stranger_to_sign_in_first(login: Login, tenant: Tenant) -> None:
    answer = Client().get("/team/join/anything/")

    assert (answer.status_code, answer["Location"]) == (
        302,
        "/accounts/login/?next=/team/join/anything/",
    )


def test_an_expired_or_tampered_link_is_refused(login: Login, tenant: Tenant) -> None:
    owner = login(tenant)
    nina = signed_in_as("nina", "nina@example.com")
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        owner.post("/team/", {"email": "nina@example.com", "role": "member"})
        path = _path_from_outbox()
        tampered = path[:-6] + ("x" if path[-6] != "x" else "y") + path[-5:]
        bad = nina.post(tampered)
        clock.shift(timedelta(days=3, seconds=1))
        expired = nina.post(path)
        expired_get = nina.get(path)

    assert bad.status_code == 422
    assert "This invitation link is not valid" in bad.content.decode()
    assert (expired.status_code, expired_get.status_code) == (410, 410)
    assert "This invitation has expired: ask for a new one." in expired.content.decode()
    assert "nina" not in roles(tenant)


def test_someone_else_cannot_use_the_link(login: Login, tenant: Tenant) -> None:
    login(tenant).post("/team/", {"email": "nina@example.com", "role": "admin"})
    eve = signed_in_as("eve", "eve@example.com")

    refused = eve.post(_path_from_outbox())

    assert refused.status_code == 422
    assert (
        "This invitation was sent to nina@example.com; you are signed in as eve@example.com."
    ) in refused.content.decode()
    assert "eve" not in roles(tenant)


@pytest.mark.parametrize(
    ("role", "status"), [("owner", 302), ("admin", 302), ("billing", 403), ("member", 403)]
)
def test_who_may_invite(login: Login, tenant: Tenant, role: str, status: int) -> None:
    client = login(tenant, role=role)

    answer = client.post("/team/", {"email": "nina@example.com", "role": "member"})

    assert answer.status_code == status


def test_an_admin_is_offered_no_owner_role_and_cannot_touch_owners(
    login: Login, tenant: Tenant
) -> None:
    olive = join(tenant, "olive", Role.OWNER)
    tom = join(tenant, "tom", Role.MEMBER)
    admin = login(tenant, role="admin")

    page = admin.get("/team/").content.decode()
    answers = [
        admin.post("/team/", {"email": "x@example.com", "role": "owner"}).status_code,
        admin.post(f"/team/{tom.pk}/role/", {"role": "owner"}).status_code,
        admin.post(f"/team/{olive.pk}/role/", {"role": "member"}).status_code,
        admin.post(f"/team/{olive.pk}/remove/").status_code,
        admin.post(f"/team/{tom.pk}/role/", {"role": "billing"}).status_code,
    ]

    assert '<option value="owner"' not in page
    assert f'action="/team/{olive.pk}/remove/"' not in page
    assert f'action="/team/{tom.pk}/remove/"' in page
    assert answers == [403, 403, 403, 403, 302]
    assert roles(tenant) == {"olive": "owner", "tom": "billing", "admin1": "admin"}


def test_the_last_owner_can_neither_be_demoted_nor_leave(login: Login, tenant: Tenant) -> None:
    owner = login(tenant)
    mine = me(owner, tenant)

    page = owner.get("/team/").content.decode()
    demoted = owner.post(f"/team/{mine.pk}/role/", {"role": "admin"})
    left = owner.post("/team/leave/")

    assert "(the only owner)" in page
    assert "Leave this team" not in page
    assert (demoted.status_code, left.status_code) == (409, 409)
    said = "A tenant keeps at least one owner: make someone else an owner first."
    assert said in demoted.content.decode()
    assert said in left.content.decode()
    assert roles(tenant) == {"owner1": "owner"}


def test_with_a_second_owner_an_owner_may_step_down(login: Login, tenant: Tenant) -> None:
    join(tenant, "oscar", Role.OWNER)
    owner = login(tenant)

    answer = owner.post(f"/team/{me(owner, tenant).pk}/role/", {"role": "admin"})

    assert answer.status_code == 302
    assert roles(tenant) == {"oscar": "owner", "owner1": "admin"}


@pytest.mark.parametrize("role", ["billing", "member"])
def test_a_reader_sees_the_team_may_leave_and_nothing_else(
    login: Login, tenant: Tenant, role: str
) -> None:
    olive = join(tenant, "olive", Role.OWNER)
    client = login(tenant, role=role)

    page = client.get("/team/").content.decode()
    answers = [
        client.post(f"/team/{olive.pk}/remove/").status_code,
        client.post(f"/team/{olive.pk}/role/", {"role": "member"}).status_code,
    ]
    left = client.post("/team/leave/")

    assert "olive@acme.test" in page
    for offered in ("Invite someone", "Remove", '<select id="role-'):
        assert offered not in page
    assert "Leave this team" in page
    assert answers == [403, 403]
    assert left.status_code == 302
    assert roles(tenant) == {"olive": "owner"}


def test_another_tenants_member_is_a_friendly_404(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    gus = join(other_tenant, "gus", Role.MEMBER)
    owner = login(tenant)

    answers = [
        owner.post(f"/team/{gus.pk}/remove/"),
        owner.post(f"/team/{gus.pk}/role/", {"role": "admin"}),
    ]

    assert [a.status_code for a in answers] == [404, 404]
    assert "No member of your team has that id." in answers[0].content.decode()
    assert roles(other_tenant) == {"gus": "member"}


def _invite(client: Client, email: str, role: str) -> str:
    """Invite through the page; the link's path (the newest invitation's)."""
    assert client.post("/team/", {"email": email, "role": role}).status_code == 302
    message = OutboxMessage.objects.filter(task="tenants.invite_email_send").latest("pk")
    return str(message.kwargs["link"]).removeprefix("http://testserver")


def test_pending_invitations_are_listed_and_one_is_withdrawn(login: Login, tenant: Tenant) -> None:
    owner = login(tenant)
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False):
        nina_link = _invite(owner, "Nina@Example.com", "billing")
        _invite(owner, "otto@example.com", "owner")
        page = owner.get("/team/").content.decode()
        nina_id, otto_id = Invitation.objects.order_by("pk").values_list("pk", flat=True)

        withdrawn = owner.post(f"/team/invitations/{nina_id}/withdraw/", follow=True)
        after = owner.get("/team/").content.decode()
        nina = signed_in_as("nina", "nina@example.com")
        shown, accepted = nina.get(nina_link), nina.post(nina_link)

    assert "Pending invitations" in page
    assert "<td>nina@example.com<br>" in page
    assert "<td>otto@example.com<br>" in page
    assert "Billing · sent 2026-03-01 by owner1 · expires 2026-03-04 12:00 UTC" in page
    assert f'action="/team/invitations/{nina_id}/withdraw/"' in page
    assert f'action="/team/invitations/{otto_id}/withdraw/"' in page
    assert withdrawn.redirect_chain == [("/team/", 302)]
    assert "The invitation to nina@example.com was withdrawn." in withdrawn.content.decode()
    assert "<td>nina@example.com<br>" not in after
    assert "<td>otto@example.com<br>" in after
    said = "This invitation was withdrawn: ask the team&#x27;s owner or an admin for a new one."
    assert (shown.status_code, accepted.status_code) == (410, 410)
    assert said in shown.content.decode()
    assert said in accepted.content.decode()
    assert "nina" not in roles(tenant)


def test_an_admin_cannot_withdraw_an_owners_invitation(login: Login, tenant: Tenant) -> None:
    owner = login(tenant)
    _invite(owner, "otto@example.com", "owner")
    _invite(owner, "mia@example.com", "member")
    otto_id, mia_id = Invitation.objects.order_by("pk").values_list("pk", flat=True)
    admin = login(tenant, role="admin")

    page = admin.get("/team/").content.decode()
    answers = [
        admin.post(f"/team/invitations/{otto_id}/withdraw/").status_code,
        admin.post(f"/team/invitations/{mia_id}/withdraw/").status_code,
    ]

    assert "<td>otto@example.com<br>" in page
    assert f'action="/team/invitations/{otto_id}/withdraw/"' not in page
    assert f'action="/team/invitations/{mia_id}/withdraw/"' in page
    assert answers == [403, 302]
    assert list(Invitation.objects.order_by("pk").values_list("status", flat=True)) == [
        "pending",
        "withdrawn",
    ]


@pytest.mark.parametrize("role", ["billing", "member"])
def test_a_reader_sees_no_invitations_and_cannot_withdraw(
    login: Login, tenant: Tenant, role: str
) -> None:
    _invite(login(tenant), "nina@example.com", "member")
    invitation = Invitation.objects.get()
    reader = login(tenant, role=role)

    page = reader.get("/team/").content.decode()
    answer = reader.post(f"/team/invitations/{invitation.pk}/withdraw/")

    assert "Pending invitations" not in page
    assert "nina@example.com" not in page
    assert answer.status_code == 403
    assert Invitation.objects.get().status == "pending"


def test_another_tenants_invitation_is_a_friendly_404(
    login: Login, tenant: Tenant, other_tenant: Tenant
) -> None:
    _invite(login(other_tenant), "nina@example.com", "member")
    owner = login(tenant)

    answer = owner.post(f"/team/invitations/{Invitation.objects.get().pk}/withdraw/")

    assert answer.status_code == 404
    assert "No invitation of your team has that id." in answer.content.decode()
    assert Invitation.objects.get().status == "pending"


def test_a_link_works_once(login: Login, tenant: Tenant) -> None:
    """Accepted, removed, the same link again: a page that says so, not a way back in."""
    owner = login(tenant)
    path = _invite(owner, "nina@example.com", "admin")
    nina = signed_in_as("nina", "nina@example.com")
    assert nina.post(path).status_code == 302
    owner_page = owner.get("/team/").content.decode()
    again = nina.get(path)
    owner.post(f"/team/{Membership.objects.get(user__username='nina').pk}/remove/")

    rejoin = nina.post(path)
    rejoin_page = nina.get(path)
    other = signed_in_as("nina2", "nina@example.com").post(path)

    assert "No invitation is waiting to be accepted." in owner_page
    assert again.status_code == 409
    assert "You have already accepted this invitation." in again.content.decode()
    assert (rejoin.status_code, rejoin_page.status_code, other.status_code) == (409, 409, 409)
    assert "You have already accepted this invitation." in rejoin.content.decode()
    assert "This invitation has already been accepted: a link works once." in (
        other.content.decode()
    )
    assert "Back to the portal" in rejoin.content.decode()
    assert "nina" not in roles(tenant)


def test_an_accepted_invitation_cannot_be_withdrawn_from_the_page(
    login: Login, tenant: Tenant
) -> None:
    owner = login(tenant)
    path = _invite(owner, "nina@example.com", "member")
    invitation = Invitation.objects.get()
    signed_in_as("nina", "nina@example.com").post(path)

    answer = owner.post(f"/team/invitations/{invitation.pk}/withdraw/")

    assert answer.status_code == 409
    assert (
        "nina@example.com has already accepted this invitation: remove them from the team "
        "instead." in answer.content.decode()
    )
