"""What every ledger service shares: the tenant's book of buckets opened under the account
lock, amount checks, results, and the one place that inserts transactions and entries."""

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from ledger.events import BalanceChanged, balance_changed
from ledger.exceptions import IdempotencyConflict, InvalidAmount
from ledger.locks import account_lock
from ledger.models import (
    CONSUMPTION_ORDER,
    ZERO,
    CreditAccount,
    CreditBucket,
    CreditHold,
    EntryKind,
    LedgerEntry,
    LedgerTransaction,
)
from tenants.db import bulk_insert

CREDIT_QUANTUM = Decimal("0.0001")
COST_BASIS_QUANTUM = Decimal("0.00000001")

# A money move: its transaction and the entries it writes.
Move = tuple[LedgerTransaction, list[LedgerEntry]]


def quantize_credits(value: Decimal | int | str) -> Decimal:
    """Credits at 4 decimal places, ROUND_HALF_UP (DESIGN.md, invariant 8)."""
    return Decimal(value).quantize(CREDIT_QUANTUM, rounding=ROUND_HALF_UP)


def _positive(value: Decimal | int | str) -> Decimal:
    amount = Decimal(value)
    if not amount.is_finite() or amount <= 0 or amount != quantize_credits(amount):
        raise InvalidAmount(amount=str(value))
    return amount


@dataclass(frozen=True)
class DebitPart:
    bucket_id: int
    amount: Decimal
    cost_basis_minor: Decimal
    currency: str
    policy: str


@dataclass(frozen=True)
class DebitRequest:
    amount: Decimal
    idempotency_key: str
    source_type: str = ""
    source_id: str = ""
    hold: CreditHold | None = None
    memo: str = ""


@dataclass(frozen=True)
class DebitResult:
    transaction: LedgerTransaction
    parts: tuple[DebitPart, ...]
    available_after: Decimal
    replayed: bool = False

    @property
    def revenue_minor(self) -> Decimal:
        """What the credits spent were bought for, in minor units (unrounded)."""
        return sum((p.amount * p.cost_basis_minor for p in self.parts), ZERO)


@dataclass(frozen=True)
class GrantResult:
    bucket: CreditBucket
    created: bool
    available_after: Decimal


@dataclass
class _Book:
    """A tenant's spendable buckets, loaded once under the lock and changed in memory."""

    account: CreditAccount
    now: datetime
    spendable: list[CreditBucket]
    overdraft: CreditBucket | None
    changed: dict[int, CreditBucket] = field(default_factory=dict)

    @property
    def available(self) -> Decimal:
        total = sum((b.remaining for b in self.spendable), ZERO)
        if self.overdraft is not None:
            total += self.overdraft.remaining
        return total - self.account.reserved

    def take(self, amount: Decimal) -> list[tuple[CreditBucket, Decimal]]:
        """Draw `amount` in consumption order, spilling into the overdraft if the contract
        allows one; the caller has already checked that it is covered."""
        parts: list[tuple[CreditBucket, Decimal]] = []
        left = amount
        for bucket in self.spendable:
            if left <= 0:
                break
            if bucket.remaining <= 0:
                continue
            part = min(bucket.remaining, left)
            bucket.remaining -= part
            self.changed[bucket.pk] = bucket
            parts.append((bucket, part))
            left -= part
        if left > 0:
            overdraft = self.overdraft_bucket()
            overdraft.remaining -= left
            self.mark(overdraft)
            parts.append((overdraft, left))
        return parts

    def mark(self, bucket: CreditBucket) -> None:
        """Remember a changed bucket for `save()`; one not inserted yet (a new overdraft
        bucket) goes in whole through `insert_overdraft()` instead."""
        if bucket.pk is not None:
            self.changed[bucket.pk] = bucket

    def coverable(self, amount: Decimal, hold_remaining: Decimal) -> bool:
        """Whether `amount` can be paid without touching other holds' reservations.

        `available` already counts overdraft in use and every open hold; the contract's
        overdraft limit is the only credit beyond it, and a debit through a hold may also use
        what that hold still reserves. Written this way (rather than `amount - from_hold <=
        available + limit`) so that a hold whose credits partly expired can still spend what
        is left in the buckets: `available` is then negative, yet the hold's debits are paid
        as long as the buckets cover them.
        """
        return amount <= self.available + self.account.overdraft_limit + hold_remaining

    def overdraft_bucket(self) -> CreditBucket:
        """The tenant's overdraft bucket, made in memory on first use: nothing is written until
        `insert_overdraft()`, so a move refused after a take() leaves no stray bucket behind."""
        if self.overdraft is None:
            self.overdraft = CreditBucket(
                tenant_id=self.account.tenant_id,
                source=CreditBucket.Source.OVERDRAFT,
                policy=CreditBucket.Policy.PERMANENT,
                granted=ZERO,
                remaining=ZERO,
                granted_at=self.now,
                external_reference="overdraft",
                is_overdraft=True,
            )
        return self.overdraft

    def insert_overdraft(self) -> bool:
        """Insert the overdraft bucket `overdraft_bucket()` made in memory, as it now stands;
        whether there was one. Call it before writing entries that draw from it."""
        if self.overdraft is None or self.overdraft.pk is not None:
            return False
        self.overdraft.save(force_insert=True)
        return True

    def save(self) -> None:
        self.insert_overdraft()
        if self.changed:
            CreditBucket.objects.bulk_update(self.changed.values(), ["remaining"])
            self.changed.clear()


def _spendable_q(now: datetime) -> Q:
    return Q(expires_at__isnull=True) | Q(expires_at__gt=now)


def _open_book(*, tenant_id: int, now: datetime) -> _Book:
    account = account_lock(tenant_id=tenant_id)
    # A caller may date a move in the past (`now=occurred_at`), but what is spendable is
    # decided by the clock: credits that have expired by now are never spent (invariant 6).
    spendable_at = max(now, timezone.now())
    buckets = list(
        CreditBucket.objects.filter(tenant_id=tenant_id)
        .filter(Q(is_overdraft=True) | (Q(remaining__gt=0) & _spendable_q(spendable_at)))
        # The overdraft last, after the buckets in consumption order (invariant 5).
        .order_by("is_overdraft", *CONSUMPTION_ORDER)
    )
    overdraft = next((b for b in buckets if b.is_overdraft), None)
    spendable = [b for b in buckets if not b.is_overdraft]
    return _Book(account=account, now=now, spendable=spendable, overdraft=overdraft)


def _atomic_unless_inside() -> AbstractContextManager[Any]:
    """A transaction of its own when called alone; inside a caller's transaction, no savepoint.

    The debit is the hot path, and a savepoint is two more round trips while the tenant's lock
    is held. It is safe because a debit refuses (InsufficientCredits, IdempotencyConflict,
    HoldNotOpen) before it writes anything (a new overdraft bucket waits for the batch's save),
    so the caller's transaction is still usable after a refusal; a database error aborts the
    caller's transaction, as it should.
    """
    return transaction.atomic() if not connection.in_atomic_block else nullcontext()


def _prior(*, tenant_id: int, key: str, kind: str) -> LedgerTransaction | None:
    """The transaction already made with this idempotency key, if it was of this kind;
    IdempotencyConflict if the key was used for something else."""
    prior = LedgerTransaction.objects.filter(tenant_id=tenant_id, idempotency_key=key).first()
    if prior is not None and prior.kind != kind:
        raise IdempotencyConflict(idempotency_key=key)
    return prior


def _new_transaction(
    *, tenant_id: int, kind: str, amount: Decimal, key: str, now: datetime, **fields: Any
) -> LedgerTransaction:
    return LedgerTransaction(
        tenant_id=tenant_id, kind=kind, amount=amount, idempotency_key=key, created_at=now, **fields
    )


def _write(new: list[Move]) -> None:
    bulk_insert([tx for tx, _ in new])
    entries = []
    for tx, tx_entries in new:
        for entry in tx_entries:
            entry.transaction = tx
            entries.append(entry)
    bulk_insert(entries)


def _announce(
    tenant_id: int,
    kind: str,
    before: Decimal,
    after: Decimal,
    now: datetime,
    hold_id: int | None = None,
) -> None:
    balance_changed(
        BalanceChanged(
            tenant_id=tenant_id,
            kind=kind,
            amount=after - before,
            available_before=before,
            available_after=after,
            at=now,
            hold_id=hold_id,
        )
    )


def _settle_overdraft(book: _Book, bucket: CreditBucket, balance: Decimal) -> Move | None:
    """A grant first repays what an overdraft lent: it moves from the new bucket to the
    overdraft bucket, which leaves the available balance as it is."""
    overdraft = book.overdraft
    if overdraft is None or overdraft.remaining >= 0:
        return None
    repay = min(-overdraft.remaining, bucket.remaining)
    bucket.remaining -= repay
    overdraft.remaining += repay
    book.mark(bucket)
    book.mark(overdraft)
    tx = _new_transaction(
        tenant_id=book.account.tenant_id,
        kind=EntryKind.SETTLEMENT,
        amount=ZERO,
        key=f"settlement:{bucket.external_reference}",
        now=book.now,
        memo="Overdraft repaid from a new grant.",
    )
    common = {
        "tenant_id": book.account.tenant_id,
        "kind": EntryKind.SETTLEMENT,
        "balance_after": balance,
        "created_at": book.now,
    }
    return tx, [
        LedgerEntry(amount=-repay, bucket=bucket, **common),
        LedgerEntry(amount=repay, bucket=overdraft, **common),
    ]
