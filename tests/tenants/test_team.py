"""The team's services: who may change whom, the last owner, and invitations: a row per
invitation (it expires, works once, may be withdrawn) behind a signed link e-mailed through the
outbox."""

import re
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.contrib.auth.models import User
from django.core import mail, signing
from django.db import IntegrityError, connection
from django.utils import timezone

from tenants.exceptions import (
    InvalidInvitation,
    InvitationExpired,
    InvitationUsed,
    InvitationWithdrawn,
    LastOwner,
    TeamChangeRefused,
)
from tenants.models import Invitation, Membership, OutboxMessage, Tenant
from tenants.selectors import invitation_pending_list
from tenants.services import (
    INVITE_SALT,
    membership_add,
    membership_invitation_accept,
    membership_invitation_read,
    membership_invitation_withdraw,
    membership_invite,
    membership_remove,
    membership_role_change,
)

pytestmark = pytest.mark.django_db
Role = Membership.Role


def member(tenant: Tenant, name: str, role: str) -> Membership:
    user = User.objects.create_user(name, email=f"{name}@acme.test")
    return membership_add(tenant=tenant, user=user, role=role)


def roles(tenant: Tenant) -> dict[str, str]:
    return dict(Membership.objects.filter(tenant=tenant).values_list("user__username", "role"))


def link(token: str) -> str:
    return f"https://portal.test/team/join/{token}/"


def test_an_owner_may_make_and_unmake_owners(tenant: Tenant) -> None:
    olive, ada = member(tenant, "olive", Role.OWNER), member(tenant, "ada", Role.ADMIN)

    membership_role_change(actor=olive, membership=ada, role=Role.OWNER)
    membership_role_change(actor=ada, membership=olive, role=Role.MEMBER)

    assert roles(tenant) == {"olive": "member", "ada": "owner"}


@pytest.mark.parametrize(
    ("target_role", "new_role"),
    [(Role.OWNER, Role.MEMBER), (Role.MEMBER, Role.OWNER), (Role.ADMIN, Role.OWNER)],
)
def test_an_admin_cannot_change_an_owner_nor_make_one(
    tenant: Tenant, target_role: str, new_role: str
) -> None:
    member(tenant, "olive", Role.OWNER)
    ada = member(tenant, "ada", Role.ADMIN)
    target = member(tenant, "tom", target_role)

    with pytest.raises(
        TeamChangeRefused, match=re.escape("Only an owner can make, change or remove an owner.")
    ):
        membership_role_change(actor=ada, membership=target, role=new_role)

    assert roles(tenant)["tom"] == target_role


def test_an_admin_manages_the_rest_of_the_team(tenant: Tenant) -> None:
    member(tenant, "olive", Role.OWNER)
    ada, tom = member(tenant, "ada", Role.ADMIN), member(tenant, "tom", Role.MEMBER)
    bill = member(tenant, "bill", Role.BILLING)

    membership_role_change(actor=ada, membership=tom, role=Role.ADMIN)
    membership_remove(actor=ada, membership=bill)

    assert roles(tenant) == {"olive": "owner", "ada": "admin", "tom": "admin"}


@pytest.mark.parametrize("role", [Role.BILLING, Role.MEMBER])
def test_billing_and_members_cannot_manage_the_team(tenant: Tenant, role: str) -> None:
    actor, tom = member(tenant, "pat", role), member(tenant, "tom", Role.MEMBER)

    with pytest.raises(
        TeamChangeRefused, match=re.escape("Only owners and admins manage the team.")
    ):
        membership_role_change(actor=actor, membership=tom, role=Role.ADMIN)
    with pytest.raises(TeamChangeRefused):
        membership_remove(actor=actor, membership=tom)


def test_the_last_owner_can_neither_be_demoted_nor_leave(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)

    with pytest.raises(LastOwner) as demoted:
        membership_role_change(actor=olive, membership=olive, role=Role.ADMIN)
    with pytest.raises(LastOwner):
        membership_remove(actor=olive, membership=olive)

    assert demoted.value.message == (
        "A tenant keeps at least one owner: make someone else an owner first."
    )
    assert roles(tenant) == {"olive": "owner"}


def test_with_a_second_owner_the_first_may_leave(tenant: Tenant) -> None:
    olive, oscar = member(tenant, "olive", Role.OWNER), member(tenant, "oscar", Role.OWNER)

    membership_remove(actor=olive, membership=olive)

    assert roles(tenant) == {"oscar": "owner"}
    with pytest.raises(LastOwner):
        membership_role_change(actor=oscar, membership=oscar, role=Role.MEMBER)


def test_anyone_may_leave(tenant: Tenant) -> None:
    member(tenant, "olive", Role.OWNER)
    tom = member(tenant, "tom", Role.MEMBER)

    membership_remove(actor=tom, membership=tom)

    assert roles(tenant) == {"olive": "owner"}


def test_a_member_of_another_tenant_is_out_of_reach(tenant: Tenant, other_tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    gus = member(other_tenant, "gus", Role.MEMBER)

    with pytest.raises(
        TeamChangeRefused, match=re.escape("That member belongs to another tenant.")
    ):
        membership_remove(actor=olive, membership=gus)


@pytest.mark.django_db(transaction=True)
def test_two_owners_demoting_each_other_at_once_leave_one_owner(tenant: Tenant) -> None:
    olive, oscar = member(tenant, "olive", Role.OWNER), member(tenant, "oscar", Role.OWNER)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(actor: Membership, target: Membership) -> None:
        try:
            barrier.wait()
            membership_role_change(actor=actor, membership=target, role=Role.MEMBER)
            outcomes.append("demoted")
        except LastOwner:
            outcomes.append("last owner")
        except TeamChangeRefused:
            outcomes.append("no longer an owner")
        finally:
            connection.close()

    threads = [
        threading.Thread(target=demote, args=(olive, Membership.objects.get(pk=oscar.pk))),
        threading.Thread(target=demote, args=(oscar, Membership.objects.get(pk=olive.pk))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # The second waits for the first's lock, then finds its actor demoted: refused.
    assert sorted(roles(tenant).values()) == ["member", "owner"]
    assert sorted(outcomes) == ["demoted", "no longer an owner"]


@time_machine.travel("2026-03-01 12:00:00+00:00", tick=False)
def test_an_invitation_is_e_mailed_once_through_the_outbox(
    tenant: Tenant, django_capture_on_commit_callbacks: Callable[..., Any]
) -> None:
    olive = member(tenant, "olive", Role.OWNER)

    with django_capture_on_commit_callbacks(execute=True):
        token = membership_invite(
            actor=olive, email="New@Example.com", role=Role.BILLING, link=link
        )

    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert (sent.to, sent.subject) == (
        ["New@Example.com"],
        "[Creditline] olive invites you to Acme Agents",
    )
    assert f"https://portal.test/team/join/{token}/" in sent.body
    assert "as Billing" in sent.body
    assert "within 3 days" in sent.body
    assert OutboxMessage.objects.get().handled_at is not None
    invitation = membership_invitation_read(token=token)
    assert (invitation.tenant, invitation.email, invitation.role) == (
        tenant,
        "new@example.com",
        "billing",
    )
    row = Invitation.objects.get()
    assert signing.loads(token, salt=INVITE_SALT) == {"i": row.pk}  # the link names the row
    assert (row.invited_by, row.status, str(row.created_at), str(row.expires_at)) == (
        olive.user,
        "pending",
        "2026-03-01 12:00:00+00:00",
        "2026-03-04 12:00:00+00:00",
    )
    assert (row.closed_at, row.closed_by) == (None, None)


def test_an_admin_cannot_invite_an_owner_nor_a_member_invite_at_all(tenant: Tenant) -> None:
    ada, tom = member(tenant, "ada", Role.ADMIN), member(tenant, "tom", Role.MEMBER)

    with pytest.raises(TeamChangeRefused):
        membership_invite(actor=ada, email="x@example.com", role=Role.OWNER, link=link)
    with pytest.raises(TeamChangeRefused):
        membership_invite(actor=tom, email="x@example.com", role=Role.MEMBER, link=link)

    assert not OutboxMessage.objects.exists()


def test_an_invitation_needs_an_address_and_a_newcomer(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)

    with pytest.raises(InvalidInvitation, match=re.escape("Enter a valid e-mail address.")):
        membership_invite(actor=olive, email="not-an-address", role=Role.MEMBER, link=link)
    with pytest.raises(InvalidInvitation, match=re.escape("olive@ACME.test is already a member.")):
        membership_invite(actor=olive, email="olive@ACME.test", role=Role.MEMBER, link=link)


def test_accepting_adds_the_signed_in_user_in_the_role_invited(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.ADMIN, link=link)
    nina = User.objects.create_user("nina", email="Nina@Example.com")

    joined = membership_invitation_accept(token=token, user=nina)
    with pytest.raises(InvitationUsed) as again:
        membership_invitation_accept(token=token, user=nina)

    assert (joined.tenant, joined.role) == (tenant, "admin")
    assert roles(tenant) == {"olive": "owner", "nina": "admin"}
    assert (again.value.status_code, again.value.message) == (
        409,
        "You have already accepted this invitation.",
    )
    row = Invitation.objects.get()
    assert (row.status, row.closed_by, row.closed_at is not None) == ("accepted", nina, True)
    assert list(invitation_pending_list(tenant=tenant)) == []


def test_a_forwarded_link_is_no_use_to_someone_else(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.ADMIN, link=link)
    eve = User.objects.create_user("eve", email="eve@example.com")

    with pytest.raises(InvalidInvitation) as refused:
        membership_invitation_accept(token=token, user=eve)

    assert refused.value.message == (
        "This invitation was sent to nina@example.com; you are signed in as eve@example.com."
    )
    assert roles(tenant) == {"olive": "owner"}


def test_an_existing_member_keeps_the_role_they_have(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.MEMBER, link=link)
    nina = member(tenant, "nina", Role.ADMIN)  # joined some other way meanwhile
    nina.user.email = "nina@example.com"

    assert membership_invitation_accept(token=token, user=nina.user).role == "admin"


def test_an_expired_or_tampered_link_adds_nobody(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    nina = User.objects.create_user("nina", email="nina@example.com")
    with time_machine.travel("2026-03-01 12:00:00+00:00", tick=False) as clock:
        token = membership_invite(
            actor=olive, email="nina@example.com", role=Role.MEMBER, link=link
        )
        tampered = token.replace(token[5], "A" if token[5] != "A" else "B", 1)
        clock.shift(timedelta(days=3, seconds=1))

        with pytest.raises(InvitationExpired) as expired:
            membership_invitation_accept(token=token, user=nina)
        with pytest.raises(InvalidInvitation) as bad:
            membership_invitation_accept(token=tampered, user=nina)

    assert (expired.value.status_code, expired.value.message) == (
        410,
        "This invitation has expired: ask for a new one.",
    )
    assert (type(bad.value), bad.value.status_code) == (InvalidInvitation, 422)
    assert bad.value.message == (
        "This invitation link is not valid: check that it was copied whole."
    )
    assert roles(tenant) == {"olive": "owner"}


def test_an_invitation_dies_with_its_inviters_right_to_send_it(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    ada = member(tenant, "ada", Role.ADMIN)
    token = membership_invite(actor=ada, email="nina@example.com", role=Role.ADMIN, link=link)
    membership_role_change(actor=olive, membership=ada, role=Role.MEMBER)
    nina = User.objects.create_user("nina", email="nina@example.com")

    with pytest.raises(InvalidInvitation, match=re.escape("can no longer invite to that role")):
        membership_invitation_accept(token=token, user=nina)


def test_a_removed_member_cannot_rejoin_with_the_link(tenant: Tenant) -> None:
    """The hole stateless links left: accepted, removed, the same link again within 3 days."""
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.ADMIN, link=link)
    nina = User.objects.create_user("nina", email="nina@example.com")
    joined = membership_invitation_accept(token=token, user=nina)
    membership_remove(actor=olive, membership=joined)
    eve = User.objects.create_user("eve", email="nina@example.com")  # or a second account

    with pytest.raises(InvitationUsed) as again:
        membership_invitation_accept(token=token, user=nina)
    with pytest.raises(InvitationUsed) as other:
        membership_invitation_accept(token=token, user=eve)

    assert again.value.message == "You have already accepted this invitation."
    assert other.value.message == "This invitation has already been accepted: a link works once."
    assert roles(tenant) == {"olive": "owner"}


def test_a_withdrawn_invitation_adds_nobody(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.MEMBER, link=link)
    invitation = Invitation.objects.get()
    nina = User.objects.create_user("nina", email="nina@example.com")

    membership_invitation_withdraw(actor=olive, invitation=invitation)
    membership_invitation_withdraw(actor=olive, invitation=invitation)  # again: nothing to do

    with pytest.raises(InvitationWithdrawn) as read:
        membership_invitation_read(token=token)
    with pytest.raises(InvitationWithdrawn) as accepted:
        membership_invitation_accept(token=token, user=nina)
    assert (accepted.value.status_code, accepted.value.message) == (
        410,
        "This invitation was withdrawn: ask the team's owner or an admin for a new one.",
    )
    assert read.value.message == accepted.value.message
    invitation.refresh_from_db()
    assert (invitation.status, invitation.closed_by) == ("withdrawn", olive.user)
    assert roles(tenant) == {"olive": "owner"}


def test_who_may_withdraw_an_invitation(tenant: Tenant, other_tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    ada, tom = member(tenant, "ada", Role.ADMIN), member(tenant, "tom", Role.MEMBER)
    membership_invite(actor=olive, email="o@example.com", role=Role.OWNER, link=link)
    membership_invite(actor=olive, email="m@example.com", role=Role.MEMBER, link=link)
    to_owner, to_member = Invitation.objects.order_by("pk")
    gus = membership_add(tenant=other_tenant, user=User.objects.create_user("gus"), role=Role.OWNER)

    refusals = []
    for actor, invitation in [(ada, to_owner), (tom, to_member), (gus, to_member)]:
        with pytest.raises(TeamChangeRefused) as refused:
            membership_invitation_withdraw(actor=actor, invitation=invitation)
        refusals.append(refused.value.message)
    membership_invitation_withdraw(actor=ada, invitation=to_member)

    assert refusals == [
        "Only an owner can make, change or remove an owner.",
        "Only owners and admins manage the team.",
        "That invitation belongs to another tenant.",
    ]
    assert [i.email for i in invitation_pending_list(tenant=tenant)] == ["o@example.com"]


def test_an_accepted_invitation_cannot_be_withdrawn(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.MEMBER, link=link)
    membership_invitation_accept(
        token=token, user=User.objects.create_user("nina", email="nina@example.com")
    )

    with pytest.raises(InvitationUsed) as refused:
        membership_invitation_withdraw(actor=olive, invitation=Invitation.objects.get())

    assert refused.value.message == (
        "nina@example.com has already accepted this invitation: remove them from the team instead."
    )
    assert Invitation.objects.get().status == "accepted"


def test_inviting_an_address_again_replaces_its_link(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    first = membership_invite(actor=olive, email="nina@example.com", role=Role.MEMBER, link=link)
    second = membership_invite(actor=olive, email="Nina@example.com", role=Role.ADMIN, link=link)
    nina = User.objects.create_user("nina", email="nina@example.com")

    with pytest.raises(InvitationWithdrawn):
        membership_invitation_accept(token=first, user=nina)
    assert membership_invitation_accept(token=second, user=nina).role == "admin"
    assert list(Invitation.objects.order_by("pk").values_list("status", "role")) == [
        ("withdrawn", "member"),
        ("accepted", "admin"),
    ]


def test_an_admin_cannot_replace_an_owners_invitation_to_be_an_owner(tenant: Tenant) -> None:
    olive, ada = member(tenant, "olive", Role.OWNER), member(tenant, "ada", Role.ADMIN)
    membership_invite(actor=olive, email="o@example.com", role=Role.OWNER, link=link)
    membership_invite(actor=olive, email="m@example.com", role=Role.MEMBER, link=link)

    with pytest.raises(InvalidInvitation) as refused:
        membership_invite(actor=ada, email="O@example.com", role=Role.MEMBER, link=link)
    membership_invite(actor=ada, email="m@example.com", role=Role.BILLING, link=link)

    assert refused.value.message == (
        "O@example.com has a pending invitation to be an owner: only an owner can replace it."
    )
    assert list(Invitation.objects.order_by("pk").values_list("email", "role", "status")) == [
        ("o@example.com", "owner", "pending"),
        ("m@example.com", "member", "withdrawn"),
        ("m@example.com", "billing", "pending"),
    ]


def test_one_pending_invitation_per_address_in_the_database(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    membership_invite(actor=olive, email="nina@example.com", role=Role.MEMBER, link=link)
    now = timezone.now()

    with pytest.raises(IntegrityError, match="invitation_one_pending_uniq"):
        Invitation.objects.create(
            tenant=tenant,
            email="nina@example.com",
            role=Role.MEMBER,
            created_at=now,
            expires_at=now + timedelta(days=1),
        )


def test_a_stateless_link_from_before_the_rows_is_refused(tenant: Tenant) -> None:
    olive = member(tenant, "olive", Role.OWNER)
    old = signing.dumps(
        {"t": tenant.pk, "e": "nina@example.com", "r": "admin", "by": olive.user_id},
        salt=INVITE_SALT,
        compress=True,
    )
    nina = User.objects.create_user("nina", email="nina@example.com")

    with pytest.raises(InvalidInvitation) as refused:
        membership_invitation_accept(token=old, user=nina)

    assert (refused.value.status_code, refused.value.message) == (
        422,
        "This invitation link is no longer valid: ask for a new one.",
    )
    assert roles(tenant) == {"olive": "owner"}


@pytest.mark.django_db(transaction=True)
def test_a_withdrawal_and_an_acceptance_at_once_one_wins(tenant: Tenant) -> None:
    """Both lock the invitation's row: the second sees what the first did."""
    olive = member(tenant, "olive", Role.OWNER)
    token = membership_invite(actor=olive, email="nina@example.com", role=Role.MEMBER, link=link)
    invitation = Invitation.objects.get()
    nina = User.objects.create_user("nina", email="nina@example.com")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def run(name: str, act: Callable[[], object]) -> None:
        try:
            barrier.wait()
            act()
            outcomes.append(name)
        except InvalidInvitation as exc:
            outcomes.append(type(exc).__name__)
        finally:
            connection.close()

    threads = [
        threading.Thread(
            target=run,
            args=("accepted", lambda: membership_invitation_accept(token=token, user=nina)),
        ),
        threading.Thread(
            target=run,
            args=(
                "withdrawn",
                lambda: membership_invitation_withdraw(actor=olive, invitation=invitation),
            ),
        ),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    invitation.refresh_from_db()
    if invitation.status == "accepted":
        assert sorted(outcomes) == ["InvitationUsed", "accepted"]
        assert roles(tenant) == {"olive": "owner", "nina": "member"}
    else:
        assert sorted(outcomes) == ["InvitationWithdrawn", "withdrawn"]
        assert roles(tenant) == {"olive": "owner"}
