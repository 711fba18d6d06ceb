"""Billing's receivers on the one fan-out (tenants/events.py), connected in BillingConfig.ready().

They run inside the transaction of the change, so they stay cheap, and what they decide to do
later is an outbox row in that same transaction (tenants/outbox.py):

- A debit costs billing nothing: the debit's SQL writes the ledger's `ledger.watch_crossed`
  outbox message when the balance crosses the account's watch level (the highest armed alert
  level or the auto top-up threshold, which billing's evaluation sets through
  ledger.services.credit_account_update) or zero, and its task announces WatchLevelCrossed, on
  which `on_watch_level_crossed` evaluates (in the worker). A hold is decided here the same
  way, from the announcement: an evaluation is enqueued only on a crossing. Grants, refunds and
  releases always enqueue (they are rare, and they re-arm alerts and move the levels).
- Domain events are handed to a task that fans them out to the tenant's webhook endpoints,
  once per event (the task claims its outbox message).
- Other apps ask for the tenant's `alert_thresholds` and `billing_currency`
  (tenants.events.tenant_settings).
"""

from collections.abc import Collection
from typing import Any

from billing import task_names
from billing.display import credit_display_get
from billing.selectors import alert_thresholds_get, billing_currency_get
from ledger.events import BalanceChanged, WatchLevelCrossed
from tenants.events import DomainEvent
from tenants.models import Tenant
from tenants.outbox import outbox_enqueue


def on_balance_changed(event: BalanceChanged, **_: Any) -> None:
    if event.kind == "expiry":
        # Expired credits left the available balance at their expiry (the amount here is 0);
        # the task sums this sweep's expiry entries, tells the tenant and re-evaluates.
        outbox_enqueue(
            task_names.CREDITS_EXPIRED_NOTIFY,
            {"tenant_id": event.tenant_id, "at": event.at.isoformat()},
            once=True,
        )
        return
    if event.amount > 0:
        outbox_enqueue(task_names.BALANCE_EVALUATE, {"tenant_id": event.tenant_id})
        return
    if event.amount == 0 or event.watched:
        return  # watched: the debit's SQL wrote its ledger.watch_crossed message itself
    level = event.watch_level
    # A crossing, not a level: a balance that stays under the level (the evaluation already
    # looked, or is queued to) or runs on into an overdraft wakes nothing per debit.
    crossed_level = level is not None and event.available_before >= level > event.available_after
    crossed_zero = event.available_before > 0 >= event.available_after
    if level is None or crossed_level or crossed_zero:
        outbox_enqueue(task_names.BALANCE_EVALUATE, {"tenant_id": event.tenant_id})


def on_domain_event(event: DomainEvent, **_: Any) -> None:
    outbox_enqueue(
        task_names.WEBHOOK_FANOUT,
        {"tenant_id": event.tenant_id, "type": event.type, "data": event.data},
        once=True,
    )


def on_tenant_settings(*, tenant: Tenant, names: Collection[str], **_: Any) -> dict[str, Any]:
    """Billing's settings that other apps read: `alert_thresholds` (metering's default soft cap
    is the lowest; GET /api/v1/balance serves them for one release) and `billing_currency`
    (metering dates a free event's revenue in it), and `credit_display` (GET /api/v1/balance
    shows money for invisible credits)."""
    answer: dict[str, Any] = {}
    if "alert_thresholds" in names:
        answer["alert_thresholds"] = alert_thresholds_get(tenant_id=tenant.pk)
    if "billing_currency" in names:
        answer["billing_currency"] = billing_currency_get(tenant=tenant)
    if "credit_display" in names:
        shown = credit_display_get(tenant_id=tenant.pk)
        answer["credit_display"] = (
            {
                "unit": "money",
                "currency": shown.currency,
                "minor_per_credit": str(shown.minor_per_credit),
            }
            if shown.money
            else {"unit": "credits"}
        )
    return answer


def on_watch_level_crossed(event: WatchLevelCrossed, **_: Any) -> None:
    """In the worker that runs the ledger's ledger.watch_crossed message: evaluate now."""
    from billing.services import balance_evaluate

    tenant = Tenant.objects.filter(pk=event.tenant_id).first()
    if tenant is not None:
        balance_evaluate(tenant=tenant)
