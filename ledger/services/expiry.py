"""The expiry sweep: write down what is left in buckets past their `expires_at`."""

import logging
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ledger.locks import sweep_lock
from ledger.models import ZERO, CreditBucket, EntryKind, LedgerEntry
from ledger.services._book import Move, _announce, _new_transaction, _open_book, _write

logger = logging.getLogger(__name__)


def ledger_expire_due(
    *, now: datetime | None = None, batch_size: int = 500, exclusive: bool = True
) -> int:
    """The sweep: one `expiry` entry per bucket past its `expires_at` for what was left.

    Safe to run twice at once and after a crash: each tenant's buckets are expired in its own
    transaction under its account lock, and a bucket already expired has nothing left (the
    unique index on expiry entries backs this up), so a crash mid-way leaves committed tenants
    done and the rest for the next run. With `exclusive` (the default) a PostgreSQL advisory
    lock also keeps a second concurrent sweep from even trying: it returns 0 at once.

    `now` may replay the sweep as of an earlier moment; a later one is clamped to the clock,
    so no bucket is ever expired early. Returns how many buckets it expired.
    """
    clock = timezone.now()
    now = min(now, clock) if now is not None else clock
    if not exclusive:
        return _expire_all(now=now, batch_size=batch_size)
    with sweep_lock() as acquired:
        if not acquired:
            logger.info("ledger sweep skipped: another sweep holds the lock")
            return 0
        return _expire_all(now=now, batch_size=batch_size)


def _expire_all(*, now: datetime, batch_size: int) -> int:
    expired = 0
    while True:
        tenant_ids = list(
            CreditBucket.objects.filter(remaining__gt=0, expires_at__lte=now)
            .values_list("tenant_id", flat=True)
            .distinct()[:batch_size]
        )
        if not tenant_ids:
            return expired
        for tenant_id in tenant_ids:
            expired += _expire_tenant(tenant_id=tenant_id, now=now)


def _expire_tenant(*, tenant_id: int, now: datetime) -> int:
    with transaction.atomic():
        book = _open_book(tenant_id=tenant_id, now=now)
        due = list(
            CreditBucket.objects.filter(
                tenant_id=tenant_id, remaining__gt=0, expires_at__lte=now
            ).order_by("id")
        )
        if not due:
            return 0
        balance = book.available
        new: list[Move] = []
        for bucket in due:
            new.append(_expiry(bucket, balance=balance, now=now))
            bucket.remaining = ZERO
            book.changed[bucket.pk] = bucket
        _write(new)
        book.save()
        # Expired credits had already left the available balance at `expires_at`; listeners
        # hear of the expiry (amount 0 change) so they can tell the tenant.
        _announce(tenant_id, EntryKind.EXPIRY, balance, balance, now)
    return len(due)


def _expiry(bucket: CreditBucket, *, balance: Decimal, now: datetime) -> Move:
    tx = _new_transaction(
        tenant_id=bucket.tenant_id,
        kind=EntryKind.EXPIRY,
        amount=-bucket.remaining,
        key=f"expiry:{bucket.pk}",
        now=now,
        memo=f"{bucket.get_policy_display()} credits expired at {bucket.expires_at}.",
    )
    entry = LedgerEntry(
        tenant_id=bucket.tenant_id,
        kind=EntryKind.EXPIRY,
        amount=-bucket.remaining,
        bucket=bucket,
        balance_after=balance,
        created_at=now,
    )
    return tx, [entry]
