"""The one fan-out between apps: two Django signals, connected in each app's AppConfig.ready().

- `balance_changed` carries a `ledger.events.BalanceChanged` whenever a ledger transaction
  moves a tenant's balance (billing: alerts and auto top-up; metering: resumable workflows).
- `domain_event` carries a `DomainEvent` (billing turns them into outgoing webhooks).
- `tenant_settings` asks the app that owns a per-tenant setting for it (below).

Receivers run inside the transaction that made the change, before it commits. They decide
and, when a side effect is due, write it to the outbox (`tenants.outbox.outbox_enqueue`): a
rolled-back change then leaves nothing behind, and a committed one loses nothing, even when
the broker is down. They must stay cheap (a debit's receivers read nothing) and do nothing
slow themselves. A receiver's Python error is logged and the change goes on; a database error
fails the change's transaction, so the change and its side effects go or stay together.
See docs/architecture.md, "Side effects".
"""

import logging
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import DatabaseError
from django.dispatch import Signal

if TYPE_CHECKING:
    from tenants.models import Tenant

logger = logging.getLogger(__name__)

balance_changed = Signal()
domain_event = Signal()
# The ledger's ledger.watch_crossed task: a debit crossed the tenant's watch level (sent from a
# worker, after the debit committed; ledger.events.WatchLevelCrossed).
watch_level_crossed = Signal()
# Per-tenant settings that one app owns and another needs, by name. The owner connects a
# receiver in its AppConfig.ready(), called with `tenant`, `names` and `changes`: it makes the
# changes to the settings it owns and answers {name: value} for those among `names` and the
# changed ones. Uses: metering's default soft cap is the lowest of billing's `alert_thresholds`,
# and billing's balance page shows metering's `soft_cap_effective`. And for one release only
# (README, "API changes"): the settings that left the ledger's account are still served by GET
# /api/v1/balance and taken by PUT /api/v1/alert-settings under their old names through here.
tenant_settings = Signal()


@dataclass(frozen=True)
class DomainEvent:
    """Something a tenant's integration may want to hear about (`workflow.suspended`, ...)."""

    tenant_id: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)


def announce(signal: Signal, payload: object) -> None:
    """Hand `payload` to the signal's receivers, now, in the caller's transaction."""
    if getattr(settings, "CREDITLINE_RAISE_LISTENER_ERRORS", False):
        signal.send(sender=type(payload), event=payload)
        return
    for receiver, outcome in signal.send_robust(sender=type(payload), event=payload):
        if isinstance(outcome, DatabaseError):
            raise outcome
        if isinstance(outcome, Exception):
            logger.error("receiver %r failed for %r", receiver, payload, exc_info=outcome)


def publish(*, tenant_id: int, type: str, data: dict[str, Any]) -> None:
    announce(domain_event, DomainEvent(tenant_id=tenant_id, type=type, data=data))


def tenant_settings_get(*, tenant: "Tenant", names: Collection[str]) -> dict[str, Any]:
    """The settings `names` of `tenant` from the apps that own them (a name no app owns is left
    out)."""
    return _settings_exchange(tenant, frozenset(names), {})


def tenant_settings_set(*, tenant: "Tenant", changes: Mapping[str, Any]) -> dict[str, Any]:
    """Change settings that other apps own; returns their values after. LookupError names a
    setting that no app owns (call it in a transaction to leave the others unchanged then)."""
    answered = _settings_exchange(tenant, frozenset(), dict(changes))
    unknown = sorted(set(changes) - set(answered))
    if unknown:
        raise LookupError(f"No app owns the tenant settings {unknown}.")
    return answered


def _settings_exchange(
    tenant: "Tenant", names: frozenset[str], changes: dict[str, Any]
) -> dict[str, Any]:
    answered: dict[str, Any] = {}
    for _, answer in tenant_settings.send(sender=None, tenant=tenant, names=names, changes=changes):
        if isinstance(answer, dict):
            answered.update(answer)
    return answered


@contextmanager
def receivers_replaced(signal: Signal, *receivers: Callable[..., None]) -> Iterator[None]:
    """Only `receivers` hear `signal` inside the block (tests and benchmarks that measure or
    observe one receiver, or none)."""
    saved = signal.receivers
    signal.receivers = []
    signal.sender_receivers_cache.clear()
    try:
        for receiver in receivers:
            signal.connect(receiver, weak=False)
        yield
    finally:
        signal.receivers = saved
        signal.sender_receivers_cache.clear()
