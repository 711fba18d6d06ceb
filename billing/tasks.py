"""Celery tasks: take ids, re-fetch, call one service.

Imports go one way: this module imports the services; a service enqueues a task by the name
it is registered under (billing.task_names), never by importing this module."""

from datetime import datetime
from typing import Any

from celery import shared_task

from billing import services, task_names
from billing.services.contract_invoices import contract_invoice_issue, contract_invoices_due
from billing.services.stripe_events import stripe_events_retry
from tenants.models import Tenant


@shared_task(name=task_names.SUBSCRIPTION_RENEW_DUE)
def subscription_renew_due_task() -> int:
    return services.subscription_renew_due()


@shared_task(name=task_names.CONTRACT_TRANCHES_DUE)
def contract_tranches_due_task() -> int:
    return services.contract_tranches_due()


@shared_task(name=task_names.CONTRACT_END_DUE)
def contract_end_due_task() -> int:
    # One hourly beat entry for both ends of a contract (no second schedule to keep in step).
    ended = services.contract_end_due()
    services.contract_start_due()
    return ended


@shared_task(name=task_names.CONTRACT_INVOICES_DUE)
def contract_invoices_due_task() -> dict[str, int]:
    return contract_invoices_due()


@shared_task(name=task_names.CONTRACT_INVOICE_ISSUE)
def contract_invoice_issue_task(*, invoice_id: int, tenant_id: int) -> str:
    return contract_invoice_issue(invoice_id=invoice_id, tenant_id=tenant_id).status


@shared_task(name=task_names.BALANCE_EVALUATE)
def balance_evaluate_task(*, tenant_id: int) -> list[int]:
    tenant = Tenant.objects.get(pk=tenant_id)
    return services.balance_evaluate(tenant=tenant).fired


@shared_task(name=task_names.CREDITS_EXPIRED_NOTIFY)
def credits_expired_notify_task(*, tenant_id: int, at: str, outbox_id: int | None = None) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    services.credits_expired_notify(
        tenant=tenant, at=datetime.fromisoformat(at), outbox_id=outbox_id
    )
    # Expiry lowered the balance: alerts and auto top-up take a look (idempotent by nature).
    services.balance_evaluate(tenant=tenant)


@shared_task(name=task_names.AUTO_TOPUP_CHARGE)
def auto_topup_charge_task(*, top_up_id: int) -> str:
    return services.auto_topup_charge(top_up_id=top_up_id).status


@shared_task(name=task_names.AUTO_TOPUP_RECONCILE)
def auto_topup_reconcile_task(*, top_up_id: int) -> str:
    return services.auto_topup_reconcile(top_up_id=top_up_id).status


@shared_task(name=task_names.AUTO_TOPUP_SWEEP)
def auto_topup_sweep_task() -> int:
    return services.auto_topup_sweep()


@shared_task(name=task_names.STRIPE_EVENT_PROCESS)
def stripe_event_process_task(*, event_pk: int) -> None:
    services.stripe_event_process(event_pk=event_pk)


@shared_task(name=task_names.STRIPE_EVENTS_RETRY)
def stripe_events_retry_task() -> int:
    return stripe_events_retry()


@shared_task(name=task_names.TOPUPS_EXPIRE_DUE)
def topups_expire_due_task() -> int:
    return services.topups_expire_due()


@shared_task(name=task_names.WEBHOOK_FANOUT)
def webhook_fanout_task(
    *, tenant_id: int, type: str, data: dict[str, Any], outbox_id: int | None = None
) -> int:
    return len(
        services.webhook_fanout(tenant_id=tenant_id, type=type, data=data, outbox_id=outbox_id)
    )


@shared_task(name=task_names.WEBHOOK_ATTEMPT)
def webhook_attempt_task(*, delivery_id: int) -> None:
    services.webhook_attempt(delivery_id=delivery_id)


@shared_task(name=task_names.WEBHOOK_DELIVER_DUE)
def webhook_deliver_due_task() -> int:
    return services.webhook_deliver_due()


@shared_task(name=task_names.ALERT_EMAIL_SEND)
def alert_email_send_task(
    *, tenant_id: int, subject: str, body: str, outbox_id: int | None = None
) -> int:
    return services.alert_email_send(
        tenant_id=tenant_id, subject=subject, body=body, outbox_id=outbox_id
    )
