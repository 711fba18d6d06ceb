"""The expiry sweep: write down what is left in buckets past their `expires_at`, set-based.

Each chunk is one short transaction: a transaction-level advisory lock (so a second sweep
started meanwhile skips; it stays correct behind a pooler in transaction mode, where a
session-level lock could leak), the next tenants with due buckets (by tenant id), and one call
of the ledger's `ledger_expire_tenants` (ledger/sql/), which locks those tenants' accounts in
tenant order, skipping busy ones, and expires their due buckets in a few statements.
Correctness does not rest on the advisory lock: a bucket is expired under its tenant's lock,
once (a unique index on expiry entries), so sweeps run at once with `exclusive=False` split
the tenants between them. A chunk holds its tenants' locks briefly: their debits wait for it.
"""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction
from django.utils import timezone

from ledger.locks import sweep_chunk_lock
from ledger.models import EntryKind
from ledger.services._book import _announce

logger = logging.getLogger(__name__)

# Tenants whose accounts are locked busy are retried this many times in one sweep.
_PASSES = 3

_NEXT_TENANTS = """
SELECT DISTINCT tenant_id FROM ledger_creditbucket
 WHERE unspent AND expires_at <= %s AND tenant_id > %s
 ORDER BY tenant_id LIMIT %s
"""


def ledger_expire_due(
    *, now: datetime | None = None, batch_size: int = 100, exclusive: bool = True
) -> int:
    """The sweep: one `expiry` entry per bucket past its `expires_at` for what was left.

    Safe to run twice at once and after a crash (each chunk commits whole). With `exclusive`
    (the default) a sweep that finds another one running returns at once. `batch_size` is the
    number of tenants per chunk. `now` may replay the sweep as of an earlier moment; a later
    one is clamped to the clock, so no bucket is ever expired early. Returns how many buckets
    it expired.
    """
    clock = timezone.now()
    now = min(now, clock) if now is not None else clock
    expired = 0
    for _ in range(_PASSES):
        after, busy = 0, False
        while True:
            chunk = _expire_chunk(now=now, after=after, limit=batch_size, exclusive=exclusive)
            if chunk is None:
                logger.info("ledger sweep skipped: another sweep holds the lock")
                return expired
            tenants, done = chunk
            if not tenants:
                break
            expired += sum(done.values())
            busy = busy or len(done) < len(tenants)
            after = tenants[-1]
        if not busy:
            break
    return expired


def _expire_chunk(
    *, now: datetime, after: int, limit: int, exclusive: bool
) -> tuple[list[int], dict[int, int]] | None:
    """One chunk: the tenants it looked at and, of those, how many buckets each had expired;
    None if another sweep holds the lock."""
    with transaction.atomic(durable=True), connection.cursor() as cursor:
        if exclusive and not sweep_chunk_lock():
            return None
        cursor.execute(_NEXT_TENANTS, [now, after, limit])
        tenants = [row[0] for row in cursor.fetchall()]
        if not tenants:
            return [], {}
        cursor.execute("SELECT * FROM ledger_expire_tenants(%s::bigint[], %s)", [tenants, now])
        done: dict[int, int] = {}
        for tenant_id, buckets, available in cursor.fetchall():
            done[tenant_id] = buckets
            _announce_expiry(tenant_id, available, now)
    return tenants, done


def _announce_expiry(tenant_id: int, available: Decimal, now: datetime) -> None:
    # Expired credits had already left the available balance at `expires_at`; listeners hear
    # of the expiry (a change of 0) so they can tell the tenant.
    _announce(tenant_id, EntryKind.EXPIRY, available, available, now)
