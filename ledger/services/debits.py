"""Debits: spend credits in consumption order, one charge or a batch under one lock."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from ledger.exceptions import HoldNotOpen, IdempotencyConflict, InsufficientCredits
from ledger.models import ZERO, CreditBucket, CreditHold, EntryKind, LedgerEntry, LedgerTransaction
from ledger.services._book import (
    DebitPart,
    DebitRequest,
    DebitResult,
    Move,
    _announce,
    _atomic_unless_inside,
    _Book,
    _new_transaction,
    _open_book,
    _positive,
    _write,
    quantize_credits,
)
from tenants.models import Tenant


def ledger_debit(
    *,
    tenant: Tenant,
    amount: Decimal,
    idempotency_key: str,
    source_type: str = "",
    source_id: str = "",
    hold: CreditHold | None = None,
    memo: str = "",
    now: datetime | None = None,
) -> DebitResult:
    """Spend `amount` credits, split across buckets in consumption order.

    Raises InsufficientCredits (nothing written) when the balance, and the overdraft the
    contract allows, cannot cover it; the same key again returns the original result.
    """
    request = DebitRequest(
        amount=Decimal(amount),
        idempotency_key=idempotency_key,
        source_type=source_type,
        source_id=source_id,
        hold=hold,
        memo=memo,
    )
    (result,) = ledger_debit_many(tenant=tenant, requests=[request], now=now)
    if isinstance(result, InsufficientCredits):
        raise result
    return result


def ledger_debit_many(
    *, tenant: Tenant, requests: Sequence[DebitRequest], now: datetime | None = None
) -> list[DebitResult | InsufficientCredits]:
    """Debit several charges of one tenant under one lock acquisition, in order.

    Each charge is refused whole (an InsufficientCredits in its place, nothing written for it)
    or paid whole; a replayed idempotency key returns the original result.
    """
    now = now or timezone.now()
    for request in requests:
        _positive(request.amount)
    with _atomic_unless_inside():
        book = _open_book(tenant_id=tenant.pk, now=now)
        before = book.available
        batch = _Batch.load(book, requests)
        outcomes = [batch.charge(request) for request in requests]
        if batch.new:
            batch.save()
            _announce(tenant.pk, EntryKind.DEBIT, before, book.available, now)
    # Results are made after the save: a new overdraft bucket has no pk before it.
    return [o.result() if isinstance(o, _Paid) else o for o in outcomes]


@dataclass(frozen=True)
class _Paid:
    """A charge paid in this batch, turned into its DebitResult once the batch is saved."""

    transaction: LedgerTransaction
    taken: list[tuple[CreditBucket, Decimal]]
    available_after: Decimal
    replayed: bool = False

    def result(self) -> DebitResult:
        return DebitResult(
            transaction=self.transaction,
            parts=tuple(_part(bucket, part) for bucket, part in self.taken),
            available_after=self.available_after,
            replayed=self.replayed,
        )


@dataclass
class _Batch:
    """The charges of one `ledger_debit_many` call, paid in memory and written together."""

    book: _Book
    existing: dict[str, LedgerTransaction]
    holds: dict[int, CreditHold]
    new: list[Move] = field(default_factory=list)
    in_batch: dict[str, _Paid] = field(default_factory=dict)

    @classmethod
    def load(cls, book: _Book, requests: Sequence[DebitRequest]) -> "_Batch":
        tenant_id = book.account.tenant_id
        existing = LedgerTransaction.objects.filter(
            tenant_id=tenant_id, idempotency_key__in=[r.idempotency_key for r in requests]
        )
        # Holds are re-read under the lock: the caller's copy may predate another debit.
        holds = CreditHold.objects.filter(
            tenant_id=tenant_id, pk__in={r.hold.pk for r in requests if r.hold is not None}
        )
        return cls(
            book=book,
            existing={tx.idempotency_key: tx for tx in existing},
            holds={h.pk: h for h in holds},
        )

    def charge(self, request: DebitRequest) -> _Paid | DebitResult | InsufficientCredits:
        """Pay one charge in memory. Every refusal that raises comes before anything is
        written: the batch writes only in `save()`, which the caller's transaction relies on
        (see `_atomic_unless_inside`)."""
        key = request.idempotency_key
        if key in self.in_batch:
            return _replay_in_batch(self.in_batch[key], request)
        if key in self.existing:
            return _replay(self.existing[key], request)
        hold = self._open_hold(request)
        if not self.book.coverable(request.amount, hold.remaining if hold else ZERO):
            return InsufficientCredits(
                required=str(request.amount),
                available=str(quantize_credits(max(self.book.available, ZERO))),
            )
        tx, entries, taken = _pay(self.book, request, hold)
        self.new.append((tx, entries))
        self.in_batch[key] = paid = _Paid(
            transaction=tx, taken=taken, available_after=self.book.available
        )
        return paid

    def _open_hold(self, request: DebitRequest) -> CreditHold | None:
        if request.hold is None:
            return None
        hold = self.holds.get(request.hold.pk)
        if hold is None or hold.status != CreditHold.Status.OPEN:
            raise HoldNotOpen(hold=request.hold.reference)
        return hold

    def save(self) -> None:
        if self.book.insert_overdraft():
            # Entries made before the new overdraft bucket had a pk: point them at it again.
            for _, entries in self.new:
                for entry in entries:
                    if entry.bucket is self.book.overdraft:
                        entry.bucket = self.book.overdraft
        _write(self.new)
        self.book.save()
        if any(tx.hold_id for tx, _ in self.new):
            CreditHold.objects.bulk_update(self.holds.values(), ["remaining"])
            self.book.account.save(update_fields=["reserved"])


def _pay(
    book: _Book, request: DebitRequest, hold: CreditHold | None
) -> tuple[LedgerTransaction, list[LedgerEntry], list[tuple[CreditBucket, Decimal]]]:
    """Draw a covered charge from the book: its transaction, entries and the parts taken."""
    from_hold = min(request.amount, hold.remaining) if hold else ZERO
    available_before = book.available
    if hold is not None and from_hold:
        hold.remaining -= from_hold
        book.account.reserved -= from_hold
    tx = _new_transaction(
        tenant_id=book.account.tenant_id,
        kind=EntryKind.DEBIT,
        amount=-request.amount,
        key=request.idempotency_key,
        now=book.now,
        from_hold=from_hold,
        hold=hold,
        source_type=request.source_type,
        source_id=request.source_id,
        memo=request.memo,
    )
    entries = []
    drawn = ZERO
    taken = book.take(request.amount)
    for bucket, part in taken:
        drawn += part
        entries.append(
            LedgerEntry(
                tenant_id=book.account.tenant_id,
                kind=EntryKind.DEBIT,
                amount=-part,
                bucket=bucket,
                hold=hold,
                balance_after=available_before - max(ZERO, drawn - from_hold),
                created_at=book.now,
            )
        )
    return tx, entries, taken


def _part(bucket: CreditBucket, amount: Decimal) -> DebitPart:
    return DebitPart(
        bucket_id=bucket.pk,
        amount=amount,
        cost_basis_minor=bucket.cost_basis_minor,
        currency=bucket.currency,
        policy=bucket.policy,
    )


def _replay(tx: LedgerTransaction, request: DebitRequest) -> DebitResult:
    """The original result of a debit, rebuilt from its entries: the same parts and the
    balance right after it (its last entry's `balance_after`), not today's balance."""
    if tx.kind != EntryKind.DEBIT or tx.amount != -request.amount:
        raise IdempotencyConflict(idempotency_key=request.idempotency_key)
    entries = list(tx.entries.select_related("bucket").order_by("id"))
    return DebitResult(
        transaction=tx,
        # Every entry of a debit names the bucket it drew from.
        parts=tuple(_part(e.bucket, -e.amount) for e in entries if e.bucket is not None),
        available_after=entries[-1].balance_after,
        replayed=True,
    )


def _replay_in_batch(first: _Paid, request: DebitRequest) -> _Paid:
    if first.transaction.amount != -request.amount:
        raise IdempotencyConflict(idempotency_key=request.idempotency_key)
    return _Paid(
        transaction=first.transaction,
        taken=first.taken,
        available_after=first.available_after,
        replayed=True,
    )
