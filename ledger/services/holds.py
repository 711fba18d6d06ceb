"""Holds: reserve part of the balance for debits that name the hold, release what is left."""

from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ledger.exceptions import IdempotencyConflict, InsufficientCredits
from ledger.models import ZERO, CreditHold, EntryKind, LedgerEntry
from ledger.services._book import (
    _announce,
    _new_transaction,
    _open_book,
    _positive,
    _write,
    quantize_credits,
)
from tenants.models import Tenant


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
        book.save()
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
        _announce(
            tenant.pk,
            EntryKind.HOLD,
            before,
            book.available,
            now,
            hold_id=hold.pk,
            watch_level=book.account.watch_level,
        )
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
        book.save()
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
            _announce(tenant.pk, EntryKind.RELEASE, before, book.available, now, hold_id=hold.pk)
    return released
