"""Every write to tenants, memberships and API keys."""

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from tenants.cache import config_stamp_bump
from tenants.exceptions import (
    InvalidInvitation,
    InvitationExpired,
    InvitationUsed,
    InvitationWithdrawn,
    LastOwner,
    TeamChangeRefused,
)
from tenants.locks import invitation_lock, owners_lock
from tenants.models import ApiKey, Invitation, Membership, Tenant
from tenants.outbox import outbox_claim, outbox_enqueue

API_KEY_PREFIX_LEN = 8
DEFAULT_SCOPES = (ApiKey.Scope.READ.value, ApiKey.Scope.WRITE.value)


@dataclass(frozen=True)
class IssuedKey:
    """A new key and its plaintext, which exists only here and is never stored."""

    api_key: ApiKey
    plaintext: str


def api_key_hash(plaintext: str) -> str:
    # Keys carry 256 bits of randomness, so a fast hash is enough (no stretching needed).
    return hashlib.sha256(plaintext.encode()).hexdigest()


def api_key_parse(plaintext: str) -> str | None:
    """The prefix of a well-formed key (`cl_<prefix>_<secret>`), or None."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != "cl" or len(parts[1]) != API_KEY_PREFIX_LEN or not parts[2]:
        return None
    return parts[1]


def tenant_create(*, name: str, slug: str | None = None) -> Tenant:
    base = slug or slugify(name)[:50] or "tenant"
    candidate, n = base, 1
    while Tenant.objects.filter(slug=candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return Tenant.objects.create(name=name, slug=candidate)


def tenant_suspend(*, tenant: Tenant) -> Tenant:
    """Its API keys are refused (403 tenant_suspended) from the next request of every process."""
    return _tenant_set_status(tenant=tenant, status=Tenant.Status.SUSPENDED)


def tenant_reactivate(*, tenant: Tenant) -> Tenant:
    return _tenant_set_status(tenant=tenant, status=Tenant.Status.ACTIVE)


def _tenant_set_status(*, tenant: Tenant, status: str) -> Tenant:
    with transaction.atomic():
        changed = Tenant.objects.filter(pk=tenant.pk).exclude(status=status).update(status=status)
        if changed:
            config_stamp_bump()  # cached keys carry their tenant's status
    tenant.status = status
    return tenant


def tenant_runs_refused_set(*, tenant_id: int, at: datetime | None) -> bool:
    """Refuse new workflow runs of the tenant from `at` (None: refuse none). Billing's call:
    a past-due subscription past its grace days. Returns whether anything changed."""
    with transaction.atomic():
        changed = (
            Tenant.objects.filter(pk=tenant_id)
            .exclude(runs_refused_from=at)
            .update(runs_refused_from=at)
        )
        if changed:
            config_stamp_bump()  # cached keys carry their tenant
    return bool(changed)


def membership_add(*, tenant: Tenant, user: User, role: str = Membership.Role.MEMBER) -> Membership:
    membership, _ = Membership.objects.update_or_create(
        tenant=tenant, user=user, defaults={"role": role}
    )
    return membership


def api_key_create(
    *, tenant: Tenant, name: str, scopes: tuple[str, ...] | list[str] = DEFAULT_SCOPES
) -> IssuedKey:
    valid = set(ApiKey.Scope.values)
    unknown = [s for s in scopes if s not in valid]
    if unknown or not scopes:
        raise ValueError(f"Scopes must be a non-empty subset of {sorted(valid)}; got {scopes}.")
    prefix = secrets.token_hex(API_KEY_PREFIX_LEN // 2)
    plaintext = f"cl_{prefix}_{secrets.token_urlsafe(32)}"
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=prefix,
        key_hash=api_key_hash(plaintext),
        scopes=sorted(set(scopes)),
    )
    return IssuedKey(api_key=api_key, plaintext=plaintext)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    with transaction.atomic():
        revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if revoked:
            config_stamp_bump()  # every process refuses the key from its next request
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use at most once a minute, so the hot path rarely writes. The throttle is the
    instance's last_used_at, which the API key cache keeps between requests (tenants.selectors)."""
    now = timezone.now()
    if api_key.last_used_at and (now - api_key.last_used_at).total_seconds() < 60:
        return
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    api_key.last_used_at = now


# The team ----------------------------------------------------------------------------------
#
# Owners and admins manage the team; only an owner makes, changes or removes an owner; anyone
# may leave; a tenant always keeps one owner. These rules are checked here, whoever calls; the
# portal's roles (portal/access.py) only decide what it offers.

Role = Membership.Role
TEAM_MANAGERS = (Role.OWNER, Role.ADMIN)
INVITE_SALT = "tenants.invitation"
# How long an invitation's link works. The link's signed token only names the invitation's row,
# which decides (tenants.models.Invitation): once, until it expires, unless withdrawn.
INVITE_MAX_AGE = timedelta(days=3)
INVITE_EMAIL_SEND = "tenants.invite_email_send"


def _team_change_check(*, actor: Membership, target_role: str, new_role: str | None) -> None:
    if actor.role not in TEAM_MANAGERS:
        raise TeamChangeRefused("Only owners and admins manage the team.")
    if actor.role != Role.OWNER and Role.OWNER in (target_role, new_role):
        raise TeamChangeRefused("Only an owner can make, change or remove an owner.")


def _role_check(role: str) -> None:
    if role not in Role.values:
        raise InvalidInvitation(
            f"Unknown role '{role}'; the roles are: {', '.join(Role.values)}.",
            fields={"role": ["Unknown role."]},
        )


def _team_locked(
    *, actor: Membership, membership_id: int
) -> tuple[list[int], Membership, Membership]:
    """Inside the change's transaction: the tenant's owners (locked), then the actor and the
    target as they are now (either may have been changed by a change this one waited for)."""
    owners = list(owners_lock(tenant_id=actor.tenant_id).values_list("pk", flat=True))
    now = Membership.objects.in_bulk([actor.pk, membership_id])
    if actor.pk not in now:
        raise TeamChangeRefused("You are no longer a member of this team.")
    if membership_id not in now:
        raise TeamChangeRefused("That member has left the team.")
    return owners, now[actor.pk], now[membership_id]


def membership_role_change(*, actor: Membership, membership: Membership, role: str) -> Membership:
    """`actor` (a membership of the same tenant) gives `membership` the role `role`."""
    _role_check(role)
    if actor.tenant_id != membership.tenant_id:
        raise TeamChangeRefused("That member belongs to another tenant.")
    with transaction.atomic():
        owners, actor, current = _team_locked(actor=actor, membership_id=membership.pk)
        _team_change_check(actor=actor, target_role=current.role, new_role=role)
        if current.role == Role.OWNER and role != Role.OWNER and owners == [current.pk]:
            raise LastOwner()
        Membership.objects.filter(pk=current.pk).update(role=role)
    membership.role = role
    return membership


def membership_remove(*, actor: Membership, membership: Membership) -> None:
    """`actor` removes `membership` from the tenant, or leaves it (actor == membership)."""
    if actor.tenant_id != membership.tenant_id:
        raise TeamChangeRefused("That member belongs to another tenant.")
    with transaction.atomic():
        owners, actor, current = _team_locked(actor=actor, membership_id=membership.pk)
        if current.pk != actor.pk:
            _team_change_check(actor=actor, target_role=current.role, new_role=None)
        if current.role == Role.OWNER and owners == [current.pk]:
            raise LastOwner()
        current.delete()


def membership_invite(
    *, actor: Membership, email: str, role: str, link: Callable[[str], str]
) -> str:
    """Invite `email` to `actor`'s tenant as `role`: an Invitation row and a link to it
    (`link(token)` makes the signed token a URL), e-mailed through the outbox. A pending
    invitation to the same address is withdrawn (its link stops working). Returns the token."""
    email = email.strip()
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidInvitation(
            "Enter a valid e-mail address.", fields={"email": ["Enter a valid e-mail address."]}
        ) from None
    _role_check(role)
    _team_change_check(actor=actor, target_role=role, new_role=None)
    if Membership.objects.filter(tenant_id=actor.tenant_id, user__email__iexact=email).exists():
        message = f"{email} is already a member."
        raise InvalidInvitation(message, fields={"email": [message]})
    now = timezone.now()
    with transaction.atomic():
        pending = Invitation.objects.filter(
            tenant_id=actor.tenant_id, email=email.lower(), status=Invitation.Status.PENDING
        )
        # Replacing an invitation withdraws it, so the withdrawal's rule holds: only an owner
        # withdraws an invitation to be an owner (an admin may not by inviting the address as
        # a member). The update skips such a row too, so one sent meanwhile is no exception.
        if actor.role != Role.OWNER:
            if pending.filter(role=Role.OWNER).exists():
                message = (
                    f"{email} has a pending invitation to be an owner: only an owner can "
                    "replace it."
                )
                raise InvalidInvitation(message, fields={"email": [message]})
            pending = pending.exclude(role=Role.OWNER)
        pending.update(
            status=Invitation.Status.WITHDRAWN, closed_at=now, closed_by_id=actor.user_id
        )
        try:
            with transaction.atomic():
                invitation = Invitation.objects.create(
                    tenant_id=actor.tenant_id,
                    email=email.lower(),
                    role=role,
                    invited_by_id=actor.user_id,
                    created_at=now,
                    expires_at=now + INVITE_MAX_AGE,
                )
        except IntegrityError:  # another invitation to the address, sent at the same moment
            message = f"{email} was invited a moment ago."
            raise InvalidInvitation(message, fields={"email": [message]}) from None
        token = signing.dumps({"i": invitation.pk}, salt=INVITE_SALT)
        outbox_enqueue(
            INVITE_EMAIL_SEND,
            {
                "email": email,
                "tenant_name": actor.tenant.name,
                "role": Role(role).label,
                "invited_by": actor.user.get_username(),
                "link": link(token),
            },
            once=True,
        )
    return token


def membership_invite_email_send(
    *,
    email: str,
    tenant_name: str,
    role: str,
    invited_by: str,
    link: str,
    outbox_id: int | None = None,
) -> int:
    """Send the invitation once per outbox message (the claim and the send share a
    transaction, as billing's alert e-mail does)."""
    days = INVITE_MAX_AGE.days
    with transaction.atomic():
        if outbox_id is not None and not outbox_claim(outbox_id):
            return 0
        return send_mail(
            subject=f"[Creditline] {invited_by} invites you to {tenant_name}",
            message=(
                f"{invited_by} invites you to join {tenant_name} on Creditline as {role}.\n\n"
                f"Sign in with this e-mail address and open this link within {days} days "
                f"to accept:\n{link}\n"
            ),
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[email],
        )


def _invitation_id(token: str) -> int:
    try:
        data = signing.loads(token, salt=INVITE_SALT)
    except signing.BadSignature:
        message = "This invitation link is not valid: check that it was copied whole."
        raise InvalidInvitation(message) from None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int):
        # A link of the stateless invitations that came before the rows: none is left to say.
        raise InvalidInvitation("This invitation link is no longer valid: ask for a new one.")
    return data["i"]


def _invitation_open_check(invitation: Invitation, *, user: User | None) -> None:
    if invitation.status == Invitation.Status.WITHDRAWN:
        raise InvitationWithdrawn()
    if invitation.status == Invitation.Status.ACCEPTED:
        if user is not None and invitation.closed_by_id == user.pk:
            raise InvitationUsed("You have already accepted this invitation.")
        raise InvitationUsed()
    if invitation.expires_at <= timezone.now():
        raise InvitationExpired()


def membership_invitation_read(*, token: str, user: User | None = None) -> Invitation:
    """The open invitation a link names, with its tenant. Refused (InvalidInvitation and its
    kinds): a link not signed by us as it is (tampered, truncated), an invitation withdrawn,
    already accepted (`user`'s own acceptance says so) or expired."""
    invitation = (
        Invitation.objects.select_related("tenant").filter(pk=_invitation_id(token)).first()
    )
    if invitation is None:
        raise InvalidInvitation()
    _invitation_open_check(invitation, user=user)
    return invitation


def membership_invitation_accept(*, token: str, user: User) -> Membership:
    """Add `user` to the invitation's tenant in its role, and close the invitation: a link
    works once. The user's e-mail must be the one invited (a forwarded link is no use), and the
    inviter must still be allowed to invite to that role. Someone already a member keeps the
    role they have. Under the invitation's lock, so a withdrawal and an acceptance never both
    succeed."""
    invitation_id = _invitation_id(token)
    with transaction.atomic():
        invitation = invitation_lock(invitation_id=invitation_id).select_related("tenant").first()
        if invitation is None:
            raise InvalidInvitation()
        _invitation_open_check(invitation, user=user)
        if (user.email or "").lower() != invitation.email:
            raise InvalidInvitation(
                f"This invitation was sent to {invitation.email}; you are signed in as "
                f"{user.email or user.get_username()}."
            )
        inviter = (
            Membership.objects.filter(
                tenant_id=invitation.tenant_id, user_id=invitation.invited_by_id
            ).first()
            if invitation.invited_by_id is not None  # the inviter's account was deleted
            else None
        )
        try:
            if inviter is None:
                raise TeamChangeRefused()
            _team_change_check(actor=inviter, target_role=invitation.role, new_role=None)
        except TeamChangeRefused:
            raise InvalidInvitation(
                "Whoever sent this invitation can no longer invite to that role: ask for a new one."
            ) from None
        membership, _ = Membership.objects.get_or_create(
            tenant=invitation.tenant, user=user, defaults={"role": invitation.role}
        )
        _invitation_close(invitation, status=Invitation.Status.ACCEPTED, by=user)
    return membership


def membership_invitation_withdraw(*, actor: Membership, invitation: Invitation) -> None:
    """`actor` withdraws a pending invitation of their tenant: its link stops working. Who may
    invite to its role may withdraw it; one already accepted is refused (remove the member
    instead), one already withdrawn stays so."""
    if actor.tenant_id != invitation.tenant_id:
        raise TeamChangeRefused("That invitation belongs to another tenant.")
    _team_change_check(actor=actor, target_role=invitation.role, new_role=None)
    with transaction.atomic():
        current = invitation_lock(invitation_id=invitation.pk).get()
        if current.status == Invitation.Status.ACCEPTED:
            raise InvitationUsed(
                f"{current.email} has already accepted this invitation: remove them from the "
                "team instead.",
            )
        if current.status == Invitation.Status.PENDING:
            _invitation_close(current, status=Invitation.Status.WITHDRAWN, by=actor.user)


def _invitation_close(invitation: Invitation, *, status: str, by: User) -> None:
    Invitation.objects.filter(pk=invitation.pk).update(
        status=status, closed_at=timezone.now(), closed_by=by
    )
