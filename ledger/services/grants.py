"""Grants: credits into a new bucket, idempotent on the grant's external reference."""

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from ledger.exceptions import IdempotencyConflict, InvalidAmount
from ledger.models import CreditBucket, EntryKind, LedgerEntry, LedgerTransaction
from ledger.periods import rolling_12m_expiry
from ledger.services._book import (
    COST_BASIS_QUANTUM,
    GrantResult,
    Move,
    _announce,
    _Book,
    _new_transaction,
    _open_book,
    _positive,
    _settle_overdraft,
    _write,
)
from tenants.models import Tenant

# The overdraft bucket is the ledger's own; nobody grants into it.
_GRANTABLE_SOURCES = frozenset(CreditBucket.Source.values) - {CreditBucket.Source.OVERDRAFT}


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
    _check_terms(price_minor=price_minor, source=source)
    now = timezone.now()
    granted_at = granted_at or now
    expires_at = _expiry_for(policy, granted_at, expires_at)
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        replayed = _replayed_grant(book, external_reference, amount=amount, policy=policy)
        if replayed is not None:
            return replayed
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
        after, new = _grant_moves(book, bucket, tx, before)
        if after > before:  # a grant already expired when made adds nothing, changes nothing
            book.topped_up()
        _write(new)
        book.save()
        _announce(tenant.pk, EntryKind.GRANT, before, after, now)
    return GrantResult(bucket=bucket, created=True, available_after=after)


def _grant_moves(
    book: _Book, bucket: CreditBucket, tx: LedgerTransaction, before: Decimal
) -> tuple[Decimal, list[Move]]:
    """The grant's entry, and the overdraft settlement it pays first; with the available
    balance after it (a grant already expired when it is made adds nothing spendable)."""
    book.added(bucket)
    after = book.available
    entry = LedgerEntry(
        tenant_id=book.account.tenant_id,
        kind=EntryKind.GRANT,
        amount=bucket.granted,
        bucket=bucket,
        balance_after=after,
        created_at=book.now,
    )
    new = [(tx, [entry])]
    if after > before:
        settlement = _settle_overdraft(book, bucket, after)
        if settlement:
            new.append(settlement)
    return after, new


def _check_terms(*, price_minor: int, source: str) -> None:
    if price_minor < 0:
        raise InvalidAmount("The price paid cannot be negative.", price_minor=price_minor)
    if source not in _GRANTABLE_SOURCES:
        raise InvalidAmount(f"Unknown credit source '{source}'.", source=source)


def _replayed_grant(
    book: _Book, external_reference: str, *, amount: Decimal, policy: str
) -> GrantResult | None:
    existing = CreditBucket.objects.filter(
        tenant_id=book.account.tenant_id, external_reference=external_reference
    ).first()
    if existing is None:
        return None
    if existing.granted != amount or existing.policy != policy:
        raise IdempotencyConflict(
            "This grant reference was already used for a different grant.",
            external_reference=external_reference,
        )
    return GrantResult(bucket=existing, created=False, available_after=book.available)


def _expiry_for(policy: str, granted_at: datetime, expires_at: datetime | None) -> datetime | None:
    """When a grant of `policy` expires; InvalidAmount if the dates do not fit the policy."""
    expiry = _policy_expiry(policy, granted_at, expires_at)
    if expiry is not None and expiry <= granted_at:
        raise InvalidAmount("Credits must expire after they are granted.")
    return expiry


def _policy_expiry(
    policy: str, granted_at: datetime, expires_at: datetime | None
) -> datetime | None:
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
