"""The ledger's one lock. Lock order for every money move: the tenant's CreditAccount row
first, and only it. Every service that writes a bucket, a hold or an entry takes this lock
before reading them, so one tenant's moves run one at a time and buckets need no locks of their
own (taking none means no second lock to order, so no deadlock between a debit and the sweep);
tenants never block each other."""

from django.db import connection

from ledger.models import CreditAccount


def account_lock(*, tenant_id: int) -> CreditAccount:
    """Lock (creating on first use) the tenant's credit account. Call inside a transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("account_lock() must run inside transaction.atomic().")
    account = CreditAccount.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if account is None:
        CreditAccount.objects.bulk_create(
            [CreditAccount(tenant_id=tenant_id, alert_thresholds=[20, 10])],
            ignore_conflicts=True,
        )
        account = CreditAccount.objects.select_for_update().get(tenant_id=tenant_id)
    return account
