"""The ledger's one lock. Lock order for every money move: the tenant's CreditAccount row
first, and only it. Every service that writes a bucket, a hold or an entry takes this lock
before reading them, so one tenant's moves run one at a time and buckets need no locks of their
own (taking none means no second lock to order, so no deadlock between a debit and the sweep);
tenants never block each other.

The expiry sweep locks many accounts at once, always in tenant order (ledger/sql/expire_v2.sql),
skipping any that are busy, so it never waits on a debit and two sweeps never deadlock."""

from django.db import connection

from ledger.models import CreditAccount


def account_lock(*, tenant_id: int) -> CreditAccount:
    """Lock (creating on first use) the tenant's credit account. Call inside a transaction."""
    if not connection.in_atomic_block:
        raise RuntimeError("account_lock() must run inside transaction.atomic().")
    account = CreditAccount.objects.select_for_update().filter(tenant_id=tenant_id).first()
    if account is None:
        CreditAccount.objects.bulk_create(
            [CreditAccount(tenant_id=tenant_id)],
            ignore_conflicts=True,
        )
        account = CreditAccount.objects.select_for_update().get(tenant_id=tenant_id)
    return account


# The sweep's advisory lock key: any fixed 64-bit number unique to this job.
SWEEP_LOCK_KEY = 0x4C45444745520001


def sweep_chunk_lock() -> bool:
    """Whether this transaction may run a chunk of the expiry sweep: a transaction-level
    advisory lock, released at commit (so it cannot leak behind a pooler in transaction mode,
    as a session-level one can). A second sweep started meanwhile skips instead of redoing
    the work; correctness does not depend on it (ledger/services/expiry.py)."""
    if not connection.in_atomic_block:
        raise RuntimeError("sweep_chunk_lock() must run inside transaction.atomic().")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SWEEP_LOCK_KEY])
        return bool(cursor.fetchone()[0])
