"""A refund of a usage event's debit, whole or in part: the event is found by its idempotency
key and the ledger reverses its debit (`ledger_reverse`), naming the event as the debit did, so
the usage and margin rollups take the refund off the event's row (docs/architecture.md,
"Rollups")."""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import Sum

from ledger.exceptions import InvalidAmount
from ledger.models import ZERO, EntryKind, LedgerTransaction
from ledger.services import ledger_reverse
from metering.exceptions import NothingCharged, UsageEventNotFound
from metering.models import UsageEvent
from tenants.models import Tenant


@dataclass(frozen=True)
class Refundable:
    """An event, what its debit charged, what was refunded of it and what is left to refund."""

    event: UsageEvent
    charged: Decimal
    refunded: Decimal

    @property
    def left(self) -> Decimal:
        return self.charged - self.refunded


def usage_event_refundable_get(*, tenant: Tenant, idempotency_key: str) -> Refundable:
    """UsageEventNotFound if the tenant has no event with this key; NothingCharged if it
    charged nothing."""
    event = (
        UsageEvent.objects.select_related("ledger_transaction")
        .filter(tenant=tenant, idempotency_key=idempotency_key)
        .first()
    )
    if event is None:
        raise UsageEventNotFound(idempotency_key=idempotency_key)
    debit = event.ledger_transaction
    if debit is None or debit.kind != EntryKind.DEBIT or debit.amount >= 0:
        raise NothingCharged(idempotency_key=idempotency_key)
    refunded = (
        LedgerTransaction.objects.filter(tenant=tenant, reverses=debit).aggregate(
            total=Sum("amount")
        )["total"]
        or ZERO
    )
    return Refundable(event=event, charged=-debit.amount, refunded=refunded)


def usage_event_refund(
    *,
    tenant: Tenant,
    idempotency_key: str,
    amount: Decimal | None,
    actor: User | None,
    reason: str,
    refund_key: str,
) -> LedgerTransaction:
    """Give back `amount` credits (None: all that is left) of the event's debit. `refund_key`
    is the reversal's own idempotency key: the same key again refunds once (the first
    reversal is returned; a different amount under it is an IdempotencyConflict). More than
    is left is refused by the ledger (NotReversible, naming what is left)."""
    if not reason.strip():
        raise InvalidAmount("A refund needs a reason.", field="reason")
    found = usage_event_refundable_get(tenant=tenant, idempotency_key=idempotency_key)
    debit = found.event.ledger_transaction
    if debit is None:  # usage_event_refundable_get refused it
        raise NothingCharged(idempotency_key=idempotency_key)
    return ledger_reverse(
        tenant=tenant,
        debit=debit,
        idempotency_key=refund_key,
        amount=amount,
        actor=actor,
        memo=f"refund of usage event {idempotency_key}: {reason}",
    )
