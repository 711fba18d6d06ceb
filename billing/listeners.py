"""Billing's ears on the one fan-out (settings.CREDITLINE_BALANCE_LISTENERS and
CREDITLINE_EVENT_LISTENERS). They run in the request process right after a ledger commit, so
they stay cheap:

- A debit (or hold) costs no read: the ledger announces the account's watch level with it
  (the highest armed alert level or the auto top-up threshold, which billing's evaluation
  sets through ledger.services.credit_account_update); a task is enqueued only when
  `available_after` fell under it or to zero (or no level is set yet). Most debits enqueue
  nothing. Grants, refunds and releases always enqueue (they are rare, and they re-arm alerts
  and move the levels).
- Domain events are handed to a task that fans them out to the tenant's webhook endpoints.
"""

from ledger.events import BalanceChanged
from tenants.events import DomainEvent


def on_balance_changed(event: BalanceChanged) -> None:
    from billing.tasks import balance_evaluate_task, credits_expired_notify_task

    if event.kind == "expiry":
        # Expired credits left the available balance at their expiry (the amount here is 0);
        # the task sums this sweep's expiry entries and tells the tenant.
        credits_expired_notify_task.delay(tenant_id=event.tenant_id, at=event.at.isoformat())
        balance_evaluate_task.delay(tenant_id=event.tenant_id)
        return
    if event.amount > 0:
        balance_evaluate_task.delay(tenant_id=event.tenant_id)
        return
    if event.amount == 0:
        return
    level = event.watch_level
    crossed_zero = event.available_after <= 0 < event.available_before
    if level is None or event.available_after < level or crossed_zero:
        balance_evaluate_task.delay(tenant_id=event.tenant_id)


def on_domain_event(event: DomainEvent) -> None:
    from billing.tasks import webhook_fanout_task

    webhook_fanout_task.delay(tenant_id=event.tenant_id, type=event.type, data=event.data)
