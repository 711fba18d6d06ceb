"""The only writer of credit buckets, holds, transactions and entries.

Every function here takes the tenant's account lock first (ledger/locks.py), runs inside
`transaction.atomic()` (so a caller may wrap several moves in its own durable transaction),
and announces `BalanceChanged` after commit.

Decisions (issue 3 asked for them; tests/ledger/test_worked_examples.py shows each):
- A refund of a debit goes back to the buckets it came from, last drawn first. A share whose
  bucket has expired (swept or not) lands in a new permanent `refund` bucket with that
  bucket's cost basis, so it is spendable now and revenue reports stay true; it is never put
  back into an expired bucket, and never reported-and-dropped.
- A share lent by the overdraft repays what is still owed on it; what a grant already settled
  becomes a free permanent refund bucket (the overdraft bucket never holds positive credit).
- Expiry entries carry the balance as it already was: expired credits leave the available
  balance at `expires_at`, whether or not the sweep has run; the sweep only writes it down.
- A hold reserves an amount of the balance, not particular buckets. If credits under it
  expire, `available` may go below zero (reserved > spendable) and the hold's debits are paid
  only while the buckets cover them; other debits can never take reserved credits.
- Grants and positive adjustments repay an outstanding overdraft first (settlement entries,
  which leave the available balance unchanged).
- Back-dated moves (`now=` in the past) are dated as asked, but spendability is judged by the
  clock; the sweep never expires a bucket before its time.
- A replayed debit returns its original parts and the balance right after it.
- In `ledger_debit_many`, insufficient credits are per charge (in its slot); an idempotency
  conflict or a hold that is not open raises and writes nothing for the whole batch.
"""

import logging
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.contrib.auth.models import User
from django.db import connection, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from ledger.events import BalanceChanged, balance_changed
from ledger.exceptions import (
    HoldNotOpen,
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    NotReversible,
)
from ledger.locks import account_lock, sweep_lock
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
from ledger.periods import rolling_12m_expiry
from tenants.models import Tenant

logger = logging.getLogger(__name__)

CREDIT_QUANTUM = Decimal("0.0001")
COST_BASIS_QUANTUM = Decimal("0.00000001")


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
            self.changed[overdraft.pk] = overdraft
            parts.append((overdraft, left))
        return parts

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
        """The tenant's overdraft bucket, made on first use."""
        if self.overdraft is None:
            self.overdraft = CreditBucket.objects.create(
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

    def save(self) -> None:
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


def _new_transaction(
    *, tenant_id: int, kind: str, amount: Decimal, key: str, now: datetime, **fields: Any
) -> LedgerTransaction:
    return LedgerTransaction(
        tenant_id=tenant_id, kind=kind, amount=amount, idempotency_key=key, created_at=now, **fields
    )


def _announce(tenant_id: int, kind: str, before: Decimal, after: Decimal, now: datetime) -> None:
    balance_changed(
        BalanceChanged(
            tenant_id=tenant_id,
            kind=kind,
            amount=after - before,
            available_before=before,
            available_after=after,
            at=now,
        )
    )


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


def _replay_in_batch(first: DebitResult, request: DebitRequest) -> DebitResult:
    if first.transaction.amount != -request.amount:
        raise IdempotencyConflict(idempotency_key=request.idempotency_key)
    return DebitResult(
        transaction=first.transaction,
        parts=first.parts,
        available_after=first.available_after,
        replayed=True,
    )


# ---------------------------------------------------------------------------------------------
# Debits


def _atomic_unless_inside() -> AbstractContextManager[Any]:
    """A transaction of its own when called alone; inside a caller's transaction, no savepoint.

    The debit is the hot path, and a savepoint is two more round trips while the tenant's lock
    is held. It is safe because a debit refuses (InsufficientCredits, IdempotencyConflict,
    HoldNotOpen) before it writes anything that matters, so the caller's transaction is still
    usable after a refusal; a database error aborts the caller's transaction, as it should.
    """
    return transaction.atomic() if not connection.in_atomic_block else nullcontext()


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
        existing = {
            tx.idempotency_key: tx
            for tx in LedgerTransaction.objects.filter(
                tenant_id=tenant.pk, idempotency_key__in=[r.idempotency_key for r in requests]
            )
        }
        # Holds are re-read under the lock: the caller's copy may predate another debit.
        holds = {
            h.pk: h
            for h in CreditHold.objects.filter(
                tenant_id=tenant.pk, pk__in={r.hold.pk for r in requests if r.hold is not None}
            )
        }
        results: list[DebitResult | InsufficientCredits] = []
        new: list[tuple[LedgerTransaction, list[LedgerEntry]]] = []
        in_batch: dict[str, DebitResult] = {}
        for request in requests:
            key = request.idempotency_key
            if key in in_batch:
                results.append(_replay_in_batch(in_batch[key], request))
                continue
            if key in existing:
                results.append(_replay(existing[key], request))
                continue
            hold = holds.get(request.hold.pk) if request.hold is not None else None
            if request.hold is not None and (hold is None or hold.status != CreditHold.Status.OPEN):
                raise HoldNotOpen(hold=request.hold.reference)
            from_hold = min(request.amount, hold.remaining) if hold else ZERO
            if not book.coverable(request.amount, hold.remaining if hold else ZERO):
                results.append(
                    InsufficientCredits(
                        required=str(request.amount),
                        available=str(quantize_credits(max(book.available, ZERO))),
                    )
                )
                continue
            available_before = book.available
            if hold is not None and from_hold:
                hold.remaining -= from_hold
                book.account.reserved -= from_hold
            tx = _new_transaction(
                tenant_id=tenant.pk,
                kind=EntryKind.DEBIT,
                amount=-request.amount,
                key=request.idempotency_key,
                now=now,
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
                        tenant_id=tenant.pk,
                        kind=EntryKind.DEBIT,
                        amount=-part,
                        bucket=bucket,
                        hold=hold,
                        balance_after=available_before - max(ZERO, drawn - from_hold),
                        created_at=now,
                    )
                )
            new.append((tx, entries))
            in_batch[key] = result = DebitResult(
                transaction=tx,
                parts=tuple(_part(bucket, part) for bucket, part in taken),
                available_after=book.available,
            )
            results.append(result)
        if new:
            _write(new)
            book.save()
            if any(tx.hold_id for tx, _ in new):
                CreditHold.objects.bulk_update(holds.values(), ["remaining"])
                book.account.save(update_fields=["reserved"])
            _announce(tenant.pk, EntryKind.DEBIT, before, book.available, now)
    return results


def _write(new: list[tuple[LedgerTransaction, list[LedgerEntry]]]) -> None:
    LedgerTransaction.objects.bulk_create([tx for tx, _ in new])
    entries = []
    for tx, tx_entries in new:
        for entry in tx_entries:
            entry.transaction = tx
            entries.append(entry)
    LedgerEntry.objects.bulk_create(entries)


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


# ---------------------------------------------------------------------------------------------
# Grants


def ledger_grant(
    *,
    tenant: Tenant,
    credits: Decimal | int | str,
    policy: str,
    source: str,
    external_reference: str,
    granted_at: datetime | None = None,
    expires_at: datetime | None = None,
    price_minor: int = 0,
    currency: str = "USD",
    source_type: str = "",
    source_id: str = "",
    actor: User | None = None,
    memo: str = "",
) -> GrantResult:
    """Put credits in a new bucket. Idempotent on `external_reference`: a retried grant
    returns the bucket it made the first time.

    `monthly_reset` buckets need `expires_at` (the period end); `rolling_12m` buckets expire
    12 calendar months after `granted_at`; `permanent` ones never.
    """
    amount = _positive(credits)
    if price_minor < 0:
        raise InvalidAmount("The price paid cannot be negative.", price_minor=price_minor)
    if source not in _GRANTABLE_SOURCES:
        raise InvalidAmount(f"Unknown credit source '{source}'.", source=source)
    now = timezone.now()
    granted_at = granted_at or now
    expires_at = _expiry_for(policy, granted_at, expires_at)
    if expires_at is not None and expires_at <= granted_at:
        raise InvalidAmount("Credits must expire after they are granted.")
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        existing = CreditBucket.objects.filter(
            tenant_id=tenant.pk, external_reference=external_reference
        ).first()
        if existing is not None:
            if existing.granted != amount or existing.policy != policy:
                raise IdempotencyConflict(
                    "This grant reference was already used for a different grant.",
                    external_reference=external_reference,
                )
            return GrantResult(bucket=existing, created=False, available_after=book.available)
        before = book.available
        bucket = CreditBucket.objects.create(
            tenant_id=tenant.pk,
            source=source,
            policy=policy,
            granted=amount,
            remaining=amount,
            granted_at=granted_at,
            expires_at=expires_at,
            price_minor=price_minor,
            currency=currency,
            cost_basis_minor=(Decimal(price_minor) / amount).quantize(COST_BASIS_QUANTUM),
            external_reference=external_reference,
        )
        spendable = expires_at is None or expires_at > now
        after = before + amount if spendable else before
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.GRANT,
            amount=amount,
            key=f"grant:{external_reference}",
            now=now,
            source_type=source_type,
            source_id=source_id,
            actor=actor,
            memo=memo,
        )
        entry = LedgerEntry(
            tenant_id=tenant.pk,
            kind=EntryKind.GRANT,
            amount=amount,
            bucket=bucket,
            balance_after=after,
            created_at=now,
        )
        new = [(tx, [entry])]
        if spendable:
            book.spendable.append(bucket)
            settlement = _settle_overdraft(book, bucket, after)
            if settlement:
                new.append(settlement)
        _write(new)
        book.save()
        _announce(tenant.pk, EntryKind.GRANT, before, after, now)
    return GrantResult(bucket=bucket, created=True, available_after=after)


# The overdraft bucket is the ledger's own; nobody grants into it.
_GRANTABLE_SOURCES = frozenset(CreditBucket.Source.values) - {CreditBucket.Source.OVERDRAFT}


def _expiry_for(policy: str, granted_at: datetime, expires_at: datetime | None) -> datetime | None:
    if policy == CreditBucket.Policy.PERMANENT:
        if expires_at is not None:
            raise InvalidAmount("Permanent credits cannot have an expiry date.")
        return None
    if policy == CreditBucket.Policy.ROLLING_12M:
        return expires_at or rolling_12m_expiry(granted_at)
    if policy == CreditBucket.Policy.MONTHLY_RESET:
        if expires_at is None:
            raise InvalidAmount("Monthly-reset credits need the end of their billing period.")
        return expires_at
    raise InvalidAmount(f"Unknown expiry policy '{policy}'.", policy=policy)


def _settle_overdraft(
    book: _Book, bucket: CreditBucket, balance: Decimal
) -> tuple[LedgerTransaction, list[LedgerEntry]] | None:
    """A grant first repays what an overdraft lent: it moves from the new bucket to the
    overdraft bucket, which leaves the available balance as it is."""
    overdraft = book.overdraft
    if overdraft is None or overdraft.remaining >= 0:
        return None
    repay = min(-overdraft.remaining, bucket.remaining)
    bucket.remaining -= repay
    overdraft.remaining += repay
    book.changed[bucket.pk] = bucket
    book.changed[overdraft.pk] = overdraft
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


# ---------------------------------------------------------------------------------------------
# Expiry


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
        new = []
        for bucket in due:
            tx = _new_transaction(
                tenant_id=tenant_id,
                kind=EntryKind.EXPIRY,
                amount=-bucket.remaining,
                key=f"expiry:{bucket.pk}",
                now=now,
                memo=f"{bucket.get_policy_display()} credits expired at {bucket.expires_at}.",
            )
            entry = LedgerEntry(
                tenant_id=tenant_id,
                kind=EntryKind.EXPIRY,
                amount=-bucket.remaining,
                bucket=bucket,
                balance_after=balance,
                created_at=now,
            )
            new.append((tx, [entry]))
            bucket.remaining = ZERO
            book.changed[bucket.pk] = bucket
        _write(new)
        book.save()
        # Expired credits had already left the available balance at `expires_at`; listeners
        # hear of the expiry (amount 0 change) so they can tell the tenant.
        _announce(tenant_id, EntryKind.EXPIRY, balance, balance, now)
    return len(due)


# ---------------------------------------------------------------------------------------------
# Reversals and adjustments


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
        prior = LedgerTransaction.objects.filter(
            tenant_id=tenant.pk, idempotency_key=idempotency_key
        ).first()
        if prior is not None:
            if (
                prior.kind != EntryKind.REVERSAL
                or prior.reverses_id != debit.pk
                or (amount is not None and prior.amount != Decimal(amount))
            ):
                raise IdempotencyConflict(idempotency_key=idempotency_key)
            return prior
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
        _write([(tx, entries)])
        book.save()
        _announce(tenant.pk, EntryKind.REVERSAL, before, book.available, now)
    return tx


def _refund_entries(
    book: _Book, debit: LedgerTransaction, amount: Decimal, key: str
) -> list[LedgerEntry]:
    returned = {
        e["bucket_id"]: e["total"]
        for e in LedgerEntry.objects.filter(
            tenant_id=book.account.tenant_id, transaction__reverses=debit
        )
        .values("bucket_id")
        .annotate(total=Sum("amount"))
    }
    drawn = list(
        debit.entries.select_related("bucket").filter(bucket__isnull=False).order_by("-id")
    )
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
            target.remaining += share
            book.changed[target.pk] = target
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
    overdraft = book.overdraft_bucket()
    owed = min(part, -overdraft.remaining)
    targets = [(overdraft, owed)] if owed > 0 else []
    if part > owed:
        targets.append((_refund_target(book, bucket, part - owed, key), part - owed))
    return targets


def _refund_target(book: _Book, bucket: CreditBucket, part: Decimal, key: str) -> CreditBucket:
    live = next((b for b in book.spendable if b.pk == bucket.pk), None)
    if live is not None:
        return live
    if not bucket.is_overdraft and (bucket.expires_at is None or bucket.expires_at > book.now):
        book.spendable.append(bucket)  # emptied by debits, but still alive: refill it
        return bucket
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
        external_reference=f"refund:{key}:{bucket.pk}",
    )
    book.spendable.append(refund)
    return refund


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
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        prior = LedgerTransaction.objects.filter(
            tenant_id=tenant.pk, idempotency_key=idempotency_key
        ).first()
        if prior is not None:
            if prior.kind != EntryKind.ADJUSTMENT or prior.amount != amount:
                raise IdempotencyConflict(idempotency_key=idempotency_key)
            return prior
        before = book.available
        extra: list[tuple[LedgerTransaction, list[LedgerEntry]]] = []
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.ADJUSTMENT,
            amount=amount,
            key=idempotency_key,
            now=now,
            actor=actor,
            memo=reason,
        )
        if amount > 0:
            bucket = CreditBucket.objects.create(
                tenant_id=tenant.pk,
                source=CreditBucket.Source.ADJUSTMENT,
                policy=CreditBucket.Policy.PERMANENT,
                granted=amount,
                remaining=amount,
                granted_at=now,
                external_reference=f"adjustment:{idempotency_key}",
            )
            book.spendable.append(bucket)
            entries = [
                LedgerEntry(
                    tenant_id=tenant.pk,
                    kind=EntryKind.ADJUSTMENT,
                    amount=amount,
                    bucket=bucket,
                    balance_after=before + amount,
                    created_at=now,
                )
            ]
            # Credit added by hand repays an overdraft first, exactly as a grant does.
            settlement = _settle_overdraft(book, bucket, before + amount)
            if settlement:
                extra.append(settlement)
        else:
            if -amount > book.available:
                raise InsufficientCredits(
                    required=str(-amount),
                    available=str(quantize_credits(max(book.available, ZERO))),
                )
            entries = []
            running = before
            for bucket, part in book.take(-amount):
                running -= part
                entries.append(
                    LedgerEntry(
                        tenant_id=tenant.pk,
                        kind=EntryKind.ADJUSTMENT,
                        amount=-part,
                        bucket=bucket,
                        balance_after=running,
                        created_at=now,
                    )
                )
        _write([(tx, entries), *extra])
        book.save()
        _announce(tenant.pk, EntryKind.ADJUSTMENT, before, book.available, now)
    return tx


# ---------------------------------------------------------------------------------------------
# Holds (reservations)


def ledger_hold_place(*, tenant: Tenant, amount: Decimal | int | str, reference: str) -> CreditHold:
    """Reserve credits: they leave the available balance now and wait for debits that name
    the hold. Idempotent on `reference`; InsufficientCredits when they are not there."""
    amount = _positive(amount)
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        existing = CreditHold.objects.filter(tenant_id=tenant.pk, reference=reference).first()
        if existing is not None:
            if existing.amount != amount:
                raise IdempotencyConflict(
                    "This hold reference was already used for a different amount.",
                    reference=reference,
                )
            return existing
        before = book.available
        if amount > before:
            raise InsufficientCredits(
                required=str(amount), available=str(quantize_credits(max(before, ZERO)))
            )
        hold = CreditHold.objects.create(
            tenant_id=tenant.pk, reference=reference, amount=amount, remaining=amount
        )
        book.account.reserved += amount
        book.account.save(update_fields=["reserved"])
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.HOLD,
            amount=-amount,
            key=f"hold:{reference}",
            now=now,
            hold=hold,
        )
        entry = LedgerEntry(
            tenant_id=tenant.pk,
            kind=EntryKind.HOLD,
            amount=-amount,
            hold=hold,
            balance_after=book.available,
            created_at=now,
        )
        _write([(tx, [entry])])
        _announce(tenant.pk, EntryKind.HOLD, before, book.available, now)
    return hold


def ledger_hold_release(*, tenant: Tenant, hold: CreditHold) -> Decimal:
    """Give back what is left of a hold to the available balance; returns how much.
    Releasing a released hold does nothing and returns 0."""
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        hold = CreditHold.objects.get(pk=hold.pk, tenant_id=tenant.pk)
        if hold.status == CreditHold.Status.RELEASED:
            return ZERO
        released = hold.remaining
        before = book.available
        hold.remaining = ZERO
        hold.status = CreditHold.Status.RELEASED
        hold.released_at = now
        hold.save(update_fields=["remaining", "status", "released_at"])
        book.account.reserved -= released
        book.account.save(update_fields=["reserved"])
        if released:
            tx = _new_transaction(
                tenant_id=tenant.pk,
                kind=EntryKind.RELEASE,
                amount=released,
                key=f"release:{hold.reference}",
                now=now,
                hold=hold,
            )
            entry = LedgerEntry(
                tenant_id=tenant.pk,
                kind=EntryKind.RELEASE,
                amount=released,
                hold=hold,
                balance_after=book.available,
                created_at=now,
            )
            _write([(tx, [entry])])
            _announce(tenant.pk, EntryKind.RELEASE, before, book.available, now)
    return released


# ---------------------------------------------------------------------------------------------
# Settings of the credit account


def credit_account_update(
    *,
    tenant: Tenant,
    overdraft_limit: Decimal | None = None,
    alert_thresholds: Iterable[int] | None = None,
    soft_cap: Decimal | None = None,
    clear_soft_cap: bool = False,
) -> CreditAccount:
    with transaction.atomic():
        account = account_lock(tenant_id=tenant.pk)
        fields = []
        if overdraft_limit is not None:
            if overdraft_limit < 0:
                raise InvalidAmount("An overdraft limit cannot be negative.")
            account.overdraft_limit = quantize_credits(overdraft_limit)
            fields.append("overdraft_limit")
        if alert_thresholds is not None:
            thresholds = sorted({int(t) for t in alert_thresholds}, reverse=True)
            if any(t <= 0 or t >= 100 for t in thresholds):
                raise InvalidAmount("Alert thresholds are percentages between 1 and 99.")
            account.alert_thresholds = thresholds
            fields.append("alert_thresholds")
        if soft_cap is not None or clear_soft_cap:
            account.soft_cap = None if clear_soft_cap else quantize_credits(soft_cap or ZERO)
            fields.append("soft_cap")
        if fields:
            account.save(update_fields=fields)
    return account
