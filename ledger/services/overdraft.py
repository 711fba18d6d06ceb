"""Overdraft cleared by an invoice: what a contract's overdraft lent and was not repaid by a
grant, once billing invoices it in money, is no longer owed in credits.

An overdraft is either repaid from a grant (`_settle_overdraft`, a grant's settlement) or
invoiced, never both: this move takes the tenant's lock first (money invariant 7), clears at most
what is still owed now, and writes one `settlement` transaction whose only entry puts the cleared
credits back on the overdraft bucket (its `remaining` rises towards 0, the account's
`overdraft_used` falls by as much, the available balance rises by as much), naming the invoice
in its source and unique by its idempotency key, so clearing one invoice twice clears once.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ledger.exceptions import IdempotencyConflict, InvalidAmount
from ledger.models import ZERO, EntryKind, LedgerEntry
from ledger.services._book import (
    _announce,
    _new_transaction,
    _open_book,
    _positive,
    _prior,
    _write,
)
from tenants.models import Tenant


@dataclass(frozen=True)
class OverdraftCleared:
    credits: Decimal
    transaction_id: int
    replayed: bool = False


def ledger_overdraft_clear(
    *,
    tenant: Tenant,
    credits: Decimal,
    idempotency_key: str,
    source_type: str = "",
    source_id: str = "",
    memo: str = "",
) -> OverdraftCleared:
    """Clear `credits` of what the overdraft owes now (InvalidAmount if it owes less: what a
    grant repaid is never invoiced too). A caller invoicing it wraps this in its own transaction
    with the invoice's row, so the two commit together; the same key again clears nothing more
    and answers the first clearing (IdempotencyConflict for another amount)."""
    amount = _positive(credits)
    now = timezone.now()
    with transaction.atomic():
        book = _open_book(tenant_id=tenant.pk, now=now)
        prior = _prior(tenant_id=tenant.pk, key=idempotency_key, kind=EntryKind.SETTLEMENT)
        if prior is not None:
            if prior.amount != amount:
                raise IdempotencyConflict(idempotency_key=idempotency_key)
            return OverdraftCleared(credits=prior.amount, transaction_id=prior.pk, replayed=True)
        overdraft = book.overdraft
        owed = -overdraft.remaining if overdraft is not None else ZERO
        if overdraft is None or amount > owed:
            raise InvalidAmount(
                f"The overdraft owes {owed} credits; {amount} cannot be cleared.",
                owed=str(owed),
            )
        before = book.available
        book.move(overdraft, amount)
        tx = _new_transaction(
            tenant_id=tenant.pk,
            kind=EntryKind.SETTLEMENT,
            amount=amount,
            key=idempotency_key,
            now=now,
            source_type=source_type,
            source_id=source_id,
            memo=memo or "Overdraft invoiced.",
        )
        entry = LedgerEntry(
            tenant_id=tenant.pk,
            kind=EntryKind.SETTLEMENT,
            amount=amount,
            bucket=overdraft,
            balance_after=book.available,
            created_at=now,
        )
        _write([(tx, [entry])])
        book.save()
        _announce(tenant.pk, EntryKind.SETTLEMENT, before, book.available, now)
    return OverdraftCleared(credits=amount, transaction_id=tx.pk)
