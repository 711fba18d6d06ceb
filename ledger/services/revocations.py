"""Taking back what is left of a grant: a refunded or lost-disputed purchase.

The credits leave the grant's own bucket by one `reversal` transaction that names the grant's
transaction (`reverses`), with one negative entry on the bucket (money invariant 1: nothing is
changed, a new entry undoes). Only what is still in the bucket can come back; what was already
spent (or repaid an overdraft when it was granted, or expired) stays spent, and the caller
records it as the customer's debt.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ledger.exceptions import IdempotencyConflict, NotReversible
from ledger.models import ZERO, CreditBucket, EntryKind, LedgerEntry, LedgerTransaction
from ledger.services._book import (
    _announce,
    _new_transaction,
    _open_book,
    _positive,
    _prior,
    _spendable,
    _write,
)
from tenants.models import Tenant


@dataclass(frozen=True)
class Revocation:
    """What came back (`taken`) of what was asked (`asked`); `transaction` is None when the
    bucket had nothing left to give."""

    asked: Decimal
    taken: Decimal
    transaction: LedgerTransaction | None
    replayed: bool = False

    @property
    def short(self) -> Decimal:
        """Asked for but already spent: the customer's debt, for the caller to record."""
        return self.asked - self.taken


def ledger_grant_revoke(
    *,
    tenant: Tenant,
    external_reference: str,
    credits: Decimal | int | str,
    idempotency_key: str,
    source_type: str = "",
    source_id: str = "",
    actor: User | None = None,
    memo: str = "",
) -> Revocation:
    """Take back up to `credits` of the grant `external_reference` from what is left of its
    bucket, under the tenant's account lock (the lock order: it first). The same key again
    returns the first answer's transaction and writes nothing; a bucket past its expiry gives
    nothing back (its credits have left the balance already)."""
    asked = _positive(credits)
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        bucket, grant = _grant_of(tenant, external_reference)
        prior = _prior(tenant_id=tenant.pk, key=idempotency_key, kind=EntryKind.REVERSAL)
        if prior is not None:
            if prior.reverses_id != grant.pk:
                raise IdempotencyConflict(idempotency_key=idempotency_key)
            return Revocation(asked=asked, taken=-prior.amount, transaction=prior, replayed=True)
        taken = min(asked, bucket.remaining) if _spendable(bucket, now) else ZERO
        if taken <= 0:
            return Revocation(asked=asked, taken=ZERO, transaction=None)
        before = book.available
        book.move(bucket, -taken)
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.REVERSAL,
            amount=-taken,
            key=idempotency_key,
            now=now,
            reverses=grant,
            actor=actor,
            memo=memo,
            source_type=source_type,
            source_id=source_id,
        )
        entry = LedgerEntry(
            tenant_id=tenant.pk,
            kind=EntryKind.REVERSAL,
            amount=-taken,
            bucket=bucket,
            balance_after=book.available,
            created_at=now,
        )
        _write([(tx, [entry])])
        book.save()
        _announce(
            tenant.pk,
            EntryKind.REVERSAL,
            before,
            book.available,
            now,
            watch_level=book.account.watch_level,
        )
    return Revocation(asked=asked, taken=taken, transaction=tx)


def _grant_of(tenant: Tenant, external_reference: str) -> tuple[CreditBucket, LedgerTransaction]:
    """The grant's bucket (its row as the book reads it: under the account lock no other move
    changes it) and its transaction; NotReversible when there is no such grant."""
    bucket = CreditBucket.objects.filter(
        tenant=tenant, external_reference=external_reference, is_overdraft=False
    ).first()
    grant = LedgerTransaction.objects.filter(
        tenant=tenant, idempotency_key=f"grant:{external_reference}", kind=EntryKind.GRANT
    ).first()
    if bucket is None or grant is None:
        raise NotReversible(
            f"No grant has the reference '{external_reference}'.",
            external_reference=external_reference,
        )
    return bucket, grant
