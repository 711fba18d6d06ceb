"""The base of every typed domain error; the API renders each as the one error body
(tenants/api/errors.py)."""

from typing import Any


class CreditlineError(Exception):
    """A domain error with an HTTP status, a snake_case code and a sentence for humans."""

    status_code = 400
    code = "error"
    message = "The request could not be completed."

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = message or self.message
        self.details = details
        super().__init__(self.message)


class TenantNotFound(CreditlineError):
    status_code = 404
    code = "tenant_not_found"
    message = "No tenant has that slug."


class TenantSuspended(CreditlineError):
    status_code = 403
    code = "tenant_suspended"
    message = "This tenant is suspended."


class TeamChangeRefused(CreditlineError):
    """A team change the acting member's role may not make (tenants.services, "The team")."""

    status_code = 403
    code = "team_change_refused"
    message = "Your role cannot make this change to the team."


class LastOwner(CreditlineError):
    status_code = 409
    code = "last_owner"
    message = "A tenant keeps at least one owner: make someone else an owner first."


class InvalidInvitation(CreditlineError):
    """An invitation that cannot be made (a bad address or role) or accepted (a link that was
    tampered with, has expired, or was sent to someone else)."""

    status_code = 422
    code = "invalid_invitation"
    message = "This invitation is not valid."


class InvitationExpired(InvalidInvitation):
    status_code = 410
    code = "invitation_expired"
    message = "This invitation has expired: ask for a new one."


class InvitationWithdrawn(InvalidInvitation):
    status_code = 410
    code = "invitation_withdrawn"
    message = "This invitation was withdrawn: ask the team's owner or an admin for a new one."


class InvitationUsed(InvalidInvitation):
    status_code = 409
    code = "invitation_used"
    message = "This invitation has already been accepted: a link works once."
