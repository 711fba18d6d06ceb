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
    # True when the ledger itself wrote the watch-level side effect in the change's transaction
    # (a debit or a negative adjustment, in its SQL: the outbox message `ledger.watch_crossed`,
    # whose task announces WatchLevelCrossed); a receiver then has nothing to decide about it.
    watched: bool = False


@dataclass(frozen=True)
class WatchLevelCrossed:
    """A debit took the tenant's balance under its watch level or to zero (or no level was
    set): announced by a worker (the ledger's task ledger.watch_crossed), not in a request."""

    tenant_id: int


def balance_changed(event: BalanceChanged) -> None:
    events.announce(events.balance_changed, event)


def watch_level_crossed(event: WatchLevelCrossed) -> None:
    events.announce(events.watch_level_crossed, event)
