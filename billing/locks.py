"""Billing's row locks, the only select_for_update calls in billing.

Lock order, the same in every billing write (and the ledger's, which billing calls into):

1. the tenant's ledger account row, ledger.locks.account_lock: always first, and the lock the
   ledger's own services take first, so a grant made inside re-enters it;
2. then the tenant's AutoTopUpPolicy row (policy_lock);
3. then the TopUp row (topup_lock).

A Subscription (subscription_lock) or Contract (contract_lock) row is taken right after the
account row, never together with a policy or a top-up. Taking the rows in this order everywhere
means two billing transactions never wait on each other in a cycle.

Each lock names only its own table (`of=("self",)`): a joined catalogue row (the pack, the plan)
or the tenant is read, not locked, so tenants sharing a pack never queue on it.
"""

from django.db import connection

from billing.models import LIVE_SUBSCRIPTION, AutoTopUpPolicy, Contract, Subscription, TopUp


def _in_transaction(name: str) -> None:
    if not connection.in_atomic_block:
        raise RuntimeError(f"{name}() must run inside transaction.atomic().")


def policy_lock(*, tenant_id: int) -> AutoTopUpPolicy | None:
    """The tenant's auto top-up policy (with its pack), locked; after account_lock."""
    _in_transaction("policy_lock")
    return (
        AutoTopUpPolicy.objects.select_for_update(of=("self",))
        .select_related("pack")
        .filter(tenant_id=tenant_id)
        .first()
    )


def topup_lock(*, tenant_id: int, top_up_id: int) -> TopUp:
    """One top-up, locked; after account_lock and (for an auto top-up) policy_lock."""
    _in_transaction("topup_lock")
    return (
        TopUp.objects.select_for_update(of=("self",))
        .select_related("pack", "tenant")
        .get(pk=top_up_id, tenant_id=tenant_id)
    )


def subscription_lock(*, tenant_id: int) -> Subscription | None:
    """The tenant's live subscription (not cancelled), locked; after account_lock."""
    _in_transaction("subscription_lock")
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "next_plan", "tenant")
        .filter(tenant_id=tenant_id, status__in=LIVE_SUBSCRIPTION)
        .first()
    )


def subscription_lock_by_id(*, tenant_id: int, subscription_id: int) -> Subscription:
    """One subscription, whatever its status, locked; after account_lock."""
    _in_transaction("subscription_lock_by_id")
    return (
        Subscription.objects.select_for_update(of=("self",))
        .select_related("plan", "next_plan", "tenant")
        .get(pk=subscription_id, tenant_id=tenant_id)
    )


def contract_lock(*, tenant_id: int, contract_id: int) -> Contract:
    """One contract (with its tenant), locked; after account_lock."""
    _in_transaction("contract_lock")
    return (
        Contract.objects.select_for_update(of=("self",))
        .select_related("tenant")
        .get(pk=contract_id, tenant_id=tenant_id)
    )
