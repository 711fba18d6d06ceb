"""Announcements after commit, to listeners named in settings: the one fan-out between apps.

Two channels, each a settings list of dotted paths to callables taking one payload:
- CREDITLINE_BALANCE_LISTENERS get a `ledger.events.BalanceChanged` whenever a ledger
  transaction that moved a tenant's balance commits (billing: alerts and auto top-up;
  metering: resumable workflows).
- CREDITLINE_EVENT_LISTENERS get a `DomainEvent` (billing turns them into outgoing webhooks).
Listeners run after the transaction commits, so a rolled-back change announces nothing, and a
failing listener is logged, never undoing the money move that already committed.
"""

import logging
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DomainEvent:
    """Something a tenant's integration may want to hear about (`workflow.suspended`, ...)."""

    tenant_id: int
    type: str
    data: dict[str, Any] = field(default_factory=dict)


def _call_listeners(setting: str, payload: object) -> None:
    for path in getattr(settings, setting, []):
        try:
            import_string(path)(payload)
        except Exception:
            logger.exception("listener %s failed for %r", path, payload)
            if getattr(settings, "CREDITLINE_RAISE_LISTENER_ERRORS", False):
                raise


def announce(setting: str, payload: object) -> None:
    """Deliver `payload` to the listeners named in `setting` once the transaction commits."""
    transaction.on_commit(lambda: _call_listeners(setting, payload))


def publish(*, tenant_id: int, type: str, data: dict[str, Any]) -> None:
    announce("CREDITLINE_EVENT_LISTENERS", DomainEvent(tenant_id=tenant_id, type=type, data=data))
