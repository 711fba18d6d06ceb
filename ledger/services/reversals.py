"""Reversals of debits (refunds) and an admin's signed adjustments."""

from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from ledger.exceptions import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    NotReversible,
)
from ledger.models import ZERO, CreditBucket, EntryKind, LedgerEntry, LedgerTransaction
from ledger.services._book import (
    DebitRequest,
    Move,
    _announce,
    _Book,
    _new_transaction,
    _open_book,
    _positive,
    _prior,
    _settle_overdraft,
    _write,
    quantize_credits,
)
from ledger.services.debits import debit_call
from tenants.models import Tenant


def ledger_reverse(
    *,
    tenant: Tenant,
    debit: LedgerTransaction,
    idempotency_key: str,
    amount: Decimal | None = None,
    actor: User | None = None,
    memo: str = "",
) -> LedgerTransaction:
    """Give back (part of) a debit to the buckets it came from, last drawn first.

    What would land in a bucket that has expired goes instead to a new permanent `refund`
    bucket with the same cost basis: a refund is credit the customer can use now, and keeping
    the cost basis keeps revenue reports true.
    """
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        prior = _prior(tenant_id=tenant.pk, key=idempotency_key, kind=EntryKind.REVERSAL)
        if prior is not None:
            if prior.reverses_id != debit.pk or (
                amount is not None and prior.amount != Decimal(amount)
            ):
                raise IdempotencyConflict(idempotency_key=idempotency_key)
            return prior
        amount = _reversible(tenant, debit, amount)
        before = book.available
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.REVERSAL,
            amount=amount,
            key=idempotency_key,
            now=now,
            reverses=debit,
            actor=actor,
            memo=memo,
            source_type=debit.source_type,
            source_id=debit.source_id,
        )
        entries = _refund_entries(book, debit, amount, idempotency_key)
        book.credited()
        _write([(tx, entries)])
        book.save()
        _announce(tenant.pk, EntryKind.REVERSAL, before, book.available, now)
    return tx


def _reversible(tenant: Tenant, debit: LedgerTransaction, amount: Decimal | None) -> Decimal:
    """The amount to reverse (all that is left when none is given); NotReversible if the
    debit is not this tenant's, or not that much of it is left to give back."""
    if debit.tenant_id != tenant.pk or debit.kind != EntryKind.DEBIT:
        raise NotReversible("Only a debit of this tenant can be reversed.")
    reversed_already = (
        LedgerTransaction.objects.filter(tenant_id=tenant.pk, reverses=debit).aggregate(
            total=Sum("amount")
        )["total"]
        or ZERO
    )
    reversible = -debit.amount - reversed_already
    if amount is None and reversible <= 0:
        amount = -debit.amount  # nothing is left: refused below with what was reversible
    amount = _positive(amount if amount is not None else reversible)
    if amount > reversible:
        raise NotReversible(
            f"At most {reversible} credits of this debit can still be reversed.",
            reversible=str(reversible),
        )
    return amount


def _refund_entries(
    book: _Book, debit: LedgerTransaction, amount: Decimal, key: str
) -> list[LedgerEntry]:
    drawn = list(
        debit.entries.select_related("bucket").filter(bucket__isnull=False).order_by("-id")
    )
    # What earlier reversals of this debit gave back, by the bucket it was drawn from: the
    # share of a bucket that had expired went to a refund bucket named after it
    # (_refund_target).
    drawn_from = {e.bucket_id for e in drawn}
    returned: dict[int, Decimal] = {}
    for e in (
        LedgerEntry.objects.filter(tenant_id=book.account.tenant_id, transaction__reverses=debit)
        .values("bucket_id", "bucket__source", "bucket__external_reference")
        .annotate(total=Sum("amount"))
    ):
        source = e["bucket_id"]
        if source not in drawn_from and e["bucket__source"] == CreditBucket.Source.REFUND:
            source = _refunded_from(e["bucket__external_reference"])
        returned[source] = returned.get(source, ZERO) + e["total"]
    entries = []
    left = amount
    for bucket, taken in ((e.bucket, -e.amount) for e in drawn if e.bucket is not None):
        if left <= 0:
            break
        # Refunds into a bucket that already had refunds land where those did.
        room = taken - returned.get(bucket.pk, ZERO)
        part = min(room, left)
        if part <= 0:
            continue
        left -= part
        for target, share in _refund_targets(book, bucket, part, key):
            book.move(target, share)
            entries.append(
                LedgerEntry(
                    tenant_id=book.account.tenant_id,
                    kind=EntryKind.REVERSAL,
                    amount=share,
                    bucket=target,
                    balance_after=book.available,
                    created_at=book.now,
                )
            )
    return entries


def _refund_targets(
    book: _Book, bucket: CreditBucket, part: Decimal, key: str
) -> list[tuple[CreditBucket, Decimal]]:
    """Where `part` credits drawn from `bucket` go back to.

    A part lent by the overdraft repays what is still owed on it; a grant may have settled the
    overdraft since, and what it already repaid becomes a free permanent refund bucket (the
    overdraft's cost basis is 0), since the overdraft bucket never holds positive credit.
    """
    if not bucket.is_overdraft:
        return [(_refund_target(book, bucket, part, key), part)]
    overdraft = book.overdraft
    if overdraft is None:  # the debit drew from it, so it exists
        raise RuntimeError(f"Tenant {book.account.tenant_id} has no overdraft bucket.")
    owed = min(part, -overdraft.remaining)
    targets = [(overdraft, owed)] if owed > 0 else []
    if part > owed:
        targets.append((_refund_target(book, bucket, part - owed, key), part - owed))
    return targets


def _refund_target(book: _Book, bucket: CreditBucket, part: Decimal, key: str) -> CreditBucket:
    """The bucket itself while it lives (the book's own copy once it has one), else a new
    permanent refund bucket with its cost basis, empty until the caller moves `part` in."""
    if bucket.pk in book.changed:
        return book.changed[bucket.pk]
    if not bucket.is_overdraft and (bucket.expires_at is None or bucket.expires_at > book.now):
        return bucket  # emptied by debits, maybe, but still alive: refill it
    reference = _refund_reference(key, bucket.pk)
    existing = next((b for b in book.changed.values() if b.external_reference == reference), None)
    if existing is not None:
        return existing
    refund = CreditBucket.objects.create(
        tenant_id=book.account.tenant_id,
        source=CreditBucket.Source.REFUND,
        policy=CreditBucket.Policy.PERMANENT,
        granted=part,
        remaining=ZERO,
        granted_at=book.now,
        price_minor=int((part * bucket.cost_basis_minor).to_integral_value(ROUND_HALF_UP)),
        currency=bucket.currency,
        cost_basis_minor=bucket.cost_basis_minor,
        external_reference=reference,
    )
    return refund


def _refund_reference(key: str, bucket_id: int) -> str:
    """The reference of the refund bucket that takes back credits drawn from an expired bucket
    (the reversal's key and that bucket); _refunded_from reads the bucket back."""
    return f"refund:{key}:{bucket_id}"


def _refunded_from(reference: str) -> int:
    return int(reference.rsplit(":", 1)[1])


def ledger_adjust(
    *,
    tenant: Tenant,
    credits: Decimal | int | str,
    reason: str,
    actor: User,
    idempotency_key: str,
) -> LedgerTransaction:
    """An admin's signed correction. Positive: a new permanent bucket of free credits.
    Negative: drawn like a debit, and refused whole if the balance cannot cover it."""
    if not reason.strip():
        raise InvalidAmount("An adjustment needs a reason.", field="reason")
    amount = quantize_credits(credits)
    if amount == 0 or amount != Decimal(credits):
        raise InvalidAmount(amount=str(credits))
    if amount < 0:
        return _adjust_down(tenant, -amount, reason, actor, idempotency_key)
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        prior = _prior(tenant_id=tenant.pk, key=idempotency_key, kind=EntryKind.ADJUSTMENT)
        if prior is not None:
            if prior.amount != amount:
                raise IdempotencyConflict(idempotency_key=idempotency_key)
            return prior
        before = book.available
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.ADJUSTMENT,
            amount=amount,
            key=idempotency_key,
            now=now,
            actor=actor,
            memo=reason,
        )
        new = _adjust_up(book, tx, amount, before)
        book.credited()
        _write(new)
        book.save()
        _announce(tenant.pk, EntryKind.ADJUSTMENT, before, book.available, now)
    return tx


def _adjust_down(
    tenant: Tenant, amount: Decimal, reason: str, actor: User, key: str
) -> LedgerTransaction:
    """`amount` drawn like a debit, by the debit itself (no overdraft); refused whole if not
    available. The same key again (also one used by a positive adjustment) answers as
    ledger_adjust does: the original transaction, or IdempotencyConflict."""
    request = DebitRequest(amount=amount, idempotency_key=key, memo=reason)
    (result,) = debit_call(
        tenant_id=tenant.pk,
        requests=[request],
        now=None,
        kind=EntryKind.ADJUSTMENT,
        allow_overdraft=False,
        actor_id=actor.pk,
    )
    if isinstance(result, InsufficientCredits):
        raise result
    return result.transaction


def _adjust_up(book: _Book, tx: LedgerTransaction, amount: Decimal, before: Decimal) -> list[Move]:
    """A new permanent bucket of free credits; like a grant, it repays an overdraft first."""
    bucket = CreditBucket.objects.create(
        tenant_id=book.account.tenant_id,
        source=CreditBucket.Source.ADJUSTMENT,
        policy=CreditBucket.Policy.PERMANENT,
        granted=amount,
        remaining=amount,
        granted_at=book.now,
        external_reference=f"adjustment:{tx.idempotency_key}",
    )
    book.added(bucket)
    entry = LedgerEntry(
        tenant_id=book.account.tenant_id,
        kind=EntryKind.ADJUSTMENT,
        amount=amount,
        bucket=bucket,
        balance_after=before + amount,
        created_at=book.now,
    )
    settlement = _settle_overdraft(book, bucket, before + amount)
    return [(tx, [entry]), settlement] if settlement else [(tx, [entry])]
