"""What the ledger announces with a money move, inside its transaction (see tenants/events.py)."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from tenants import events


@dataclass(frozen=True)
class BalanceChanged:
    tenant_id: int
    kind: str  # an EntryKind value: grant, debit, expiry, reversal, adjustment, hold, release
    amount: Decimal  # signed change of the available balance
    available_before: Decimal
    available_after: Decimal
    at: datetime
    hold_id: int | None = None  # the hold placed or released, for "hold" and "release"
    # The account's watch level when the change was made (CreditAccount.watch_level).
    watch_level: Decimal | None = None


def balance_changed(event: BalanceChanged) -> None:
    events.announce(events.balance_changed, event)
