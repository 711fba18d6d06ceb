"""The ledger's one lock. Lock order for every money move: the tenant's CreditAccount row
first, and only it. Every service that writes a bucket, a hold or an entry takes this lock
before reading them, so one tenant's moves run one at a time and buckets need no locks of their
own (taking none means no second lock to order, so no deadlock between a debit and the sweep);
tenants never block each other."""

from collections.abc import Iterator
from contextlib import contextmanager

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


# The sweep's session-level advisory lock key: any fixed 64-bit number unique to this job.
SWEEP_LOCK_KEY = 0x4C45444745520001


@contextmanager
def sweep_lock() -> Iterator[bool]:
    """Yield whether this process may run the expiry sweep now.

    On PostgreSQL only one session holds pg_try_advisory_lock at a time, so a second sweep
    started meanwhile (two beat schedulers, a manual run) skips instead of redoing the work.
    Correctness does not depend on it: each tenant's expiry is idempotent under its account
    lock. SQLite (the embedded default, one process) always gets True.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [SWEEP_LOCK_KEY])
        acquired = bool(cursor.fetchone()[0])
    try:
        yield acquired
    finally:
        if acquired:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [SWEEP_LOCK_KEY])
