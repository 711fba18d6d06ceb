"""What every ledger service shares: the tenant's book (its account and totals) opened under
the account lock, amount checks, results, and the one place that inserts transactions and
entries from Python (the SQL functions in ledger/sql/ write the debit's and the sweep's)."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.utils import timezone

from ledger.events import BalanceChanged, balance_changed
from ledger.exceptions import IdempotencyConflict, InvalidAmount
from ledger.locks import account_lock
from ledger.models import (
    POLICY_TOTALS,
    ZERO,
    CreditAccount,
    CreditBucket,
    CreditHold,
    EntryKind,
    LedgerEntry,
    LedgerTransaction,
)
from ledger.selectors import due_by_policy
from tenants.db import bulk_insert

CREDIT_QUANTUM = Decimal("0.0001")
COST_BASIS_QUANTUM = Decimal("0.00000001")

# A money move: its transaction and the entries it writes.
Move = tuple[LedgerTransaction, list[LedgerEntry]]


def quantize_credits(value: Decimal | int | str) -> Decimal:
    """Credits at 4 decimal places, ROUND_HALF_UP (docs/architecture.md, money invariant 8)."""
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
    """A debit's outcome, built from the SQL debit's rows without loading any model."""

    transaction_id: int
    parts: tuple[DebitPart, ...]
    available_after: Decimal
    from_hold: Decimal = ZERO
    replayed: bool = False

    @property
    def revenue(self) -> dict[str, Decimal]:
        """What the credits spent were bought for, per currency, in minor units (unrounded):
        the parts drawn from paid buckets, each in its bucket's currency. Two currencies are
        never added (money invariant 8); free credits earn nothing in any."""
        by_currency: dict[str, Decimal] = {}
        for p in self.parts:
            if p.cost_basis_minor:
                money = p.amount * p.cost_basis_minor
                by_currency[p.currency] = by_currency.get(p.currency, ZERO) + money
        return by_currency

    @property
    def revenue_minor(self) -> Decimal:
        """The revenue in its one currency (`revenue`); ValueError for a debit that drew paid
        buckets of two currencies (only buckets older than one currency per tenant can)."""
        by_currency = self.revenue
        if len(by_currency) > 1:
            raise ValueError(f"The debit's revenue is in {sorted(by_currency)}: not one figure.")
        return next(iter(by_currency.values()), ZERO)

    @property
    def transaction(self) -> LedgerTransaction:
        """The debit's transaction row (one query; the hot path needs only its id)."""
        return LedgerTransaction.objects.get(pk=self.transaction_id)


@dataclass(frozen=True)
class GrantResult:
    bucket: CreditBucket
    created: bool
    available_after: Decimal


_ACCOUNT_FIELDS = [*POLICY_TOTALS.values(), "overdraft_used", "reserved", "topped_up_to"]


@dataclass
class _Book:
    """The tenant's account under its lock, and the buckets a move touches.

    Every change of a bucket's `remaining` goes through `move()`, which changes the account's
    total with it, so the totals stay the sums of the buckets (ledger_verify checks it).
    `due` is what is left in buckets past their expiry that the sweep has not written down:
    it left the available balance at `expires_at` already.
    """

    account: CreditAccount
    now: datetime
    due: Decimal
    overdraft: CreditBucket | None
    changed: dict[int, CreditBucket] = field(default_factory=dict)

    @property
    def available(self) -> Decimal:
        a = self.account
        held = sum((getattr(a, name) for name in POLICY_TOTALS.values()), ZERO)
        return held - a.overdraft_used - a.reserved - self.due

    def move(self, bucket: CreditBucket, delta: Decimal) -> None:
        """Change a bucket's `remaining` by `delta`, and the account's totals with it."""
        bucket.remaining += delta
        if bucket.is_overdraft:
            self.account.overdraft_used -= delta
        else:
            name = POLICY_TOTALS[bucket.policy]
            setattr(self.account, name, getattr(self.account, name) + delta)
        self.changed[bucket.pk] = bucket

    def added(self, bucket: CreditBucket) -> None:
        """Count a bucket just inserted with its `remaining` in the totals (and in `due` if it
        was granted already expired)."""
        name = POLICY_TOTALS[bucket.policy]
        setattr(self.account, name, getattr(self.account, name) + bucket.remaining)
        if not _spendable(bucket, self.now):
            self.due += bucket.remaining

    def topped_up(self) -> None:
        """After a grant that added spendable credits: the tenant is topped up to the available
        balance now (CreditAccount.topped_up_to; never below 0, e.g. after repaying an
        overdraft)."""
        self.account.topped_up_to = max(self.available, ZERO)

    def credited(self) -> None:
        """After a refund or a positive adjustment: `topped_up_to` rises to the available
        balance if that is higher, and never falls (a refund does not reset the base)."""
        self.account.topped_up_to = max(self.account.topped_up_to, self.available)

    def save(self) -> None:
        if self.changed:
            CreditBucket.objects.bulk_update(self.changed.values(), ["remaining"])
            self.changed.clear()
        self.account.save(update_fields=_ACCOUNT_FIELDS)


def _spendable(bucket: CreditBucket, now: datetime) -> bool:
    return bucket.expires_at is None or bucket.expires_at > max(now, timezone.now())


def _open_book(*, tenant_id: int, now: datetime) -> _Book:
    account = account_lock(tenant_id=tenant_id)
    # A caller may date a move in the past (`now=occurred_at`), but what is spendable is
    # decided by the clock: credits that have expired by now are never spent (invariant 6).
    spendable_at = max(now, timezone.now())
    overdraft = CreditBucket.objects.filter(tenant_id=tenant_id, is_overdraft=True).first()
    return _Book(
        account=account,
        now=now,
        due=sum(due_by_policy(tenant_id=tenant_id, at=spendable_at).values(), ZERO),
        overdraft=overdraft,
    )


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
    watch_level: Decimal | None = None,
    watched: bool = False,
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
            watch_level=watch_level,
            watched=watched,
        )
    )


def _settle_overdraft(book: _Book, bucket: CreditBucket, balance: Decimal) -> Move | None:
    """A grant first repays what an overdraft lent: it moves from the new bucket to the
    overdraft bucket, which leaves the available balance as it is."""
    overdraft = book.overdraft
    if overdraft is None or overdraft.remaining >= 0:
        return None
    repay = min(-overdraft.remaining, bucket.remaining)
    book.move(bucket, -repay)
    book.move(overdraft, repay)
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
