"""Row locks of the tenants app: the only place here that calls select_for_update.

A team change that could leave a tenant without an owner locks the tenant's owner memberships
(by id, so two changes wait for each other rather than cross). Accepting or withdrawing an
invitation locks its row alone. Neither transaction takes another lock: they touch no money.
"""

from django.db.models import QuerySet

from tenants.models import Invitation, Membership


def owners_lock(*, tenant_id: int) -> QuerySet[Membership]:
    """The tenant's owner memberships, locked in id order (evaluate it inside the transaction).
    Under READ COMMITTED a row demoted by the transaction this one waited for is no longer an
    owner when the lock is granted, so the count is the committed one."""
    return (
        Membership.objects.select_for_update()
        .filter(tenant_id=tenant_id, role=Membership.Role.OWNER)
        .order_by("pk")
    )


def invitation_lock(*, invitation_id: int) -> QuerySet[Invitation]:
    """The invitation's row, locked (only its own row, whatever the caller joins)."""
    return Invitation.objects.select_for_update(of=("self",)).filter(pk=invitation_id)
