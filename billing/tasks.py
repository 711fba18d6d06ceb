"""Celery tasks: take ids, re-fetch, call one service."""

from datetime import datetime
from typing import Any

from celery import shared_task

from billing import services
from billing.services.stripe_events import stripe_events_retry
from tenants.models import Tenant


@shared_task(name="billing.subscription_renew_due")
def subscription_renew_due_task() -> int:
    return services.subscription_renew_due()


@shared_task(name="billing.contract_tranches_due")
def contract_tranches_due_task() -> int:
    return services.contract_tranches_due()


@shared_task(name="billing.contract_end_due")
def contract_end_due_task() -> int:
    # One hourly beat entry for both ends of a contract (no second schedule to keep in step).
    ended = services.contract_end_due()
    services.contract_start_due()
    return ended


@shared_task(name="billing.balance_evaluate")
def balance_evaluate_task(*, tenant_id: int) -> list[int]:
    tenant = Tenant.objects.get(pk=tenant_id)
    return services.balance_evaluate(tenant=tenant).fired


@shared_task(name="billing.credits_expired_notify")
def credits_expired_notify_task(*, tenant_id: int, at: str, outbox_id: int | None = None) -> None:
    tenant = Tenant.objects.get(pk=tenant_id)
    services.credits_expired_notify(
        tenant=tenant, at=datetime.fromisoformat(at), outbox_id=outbox_id
    )
    # Expiry lowered the balance: alerts and auto top-up take a look (idempotent by nature).
    services.balance_evaluate(tenant=tenant)


@shared_task(name="billing.auto_topup_charge")
def auto_topup_charge_task(*, top_up_id: int) -> str:
    return services.auto_topup_charge(top_up_id=top_up_id).status


@shared_task(name="billing.auto_topup_reconcile")
def auto_topup_reconcile_task(*, top_up_id: int) -> str:
    return services.auto_topup_reconcile(top_up_id=top_up_id).status


@shared_task(name="billing.auto_topup_sweep")
def auto_topup_sweep_task() -> int:
    return services.auto_topup_sweep()


@shared_task(name="billing.stripe_event_process")
def stripe_event_process_task(*, event_pk: int) -> None:
    services.stripe_event_process(event_pk=event_pk)


@shared_task(name="billing.stripe_events_retry")
def stripe_events_retry_task() -> int:
    return stripe_events_retry()


@shared_task(name="billing.webhook_fanout")
def webhook_fanout_task(
    *, tenant_id: int, type: str, data: dict[str, Any], outbox_id: int | None = None
) -> int:
    return len(
        services.webhook_fanout(tenant_id=tenant_id, type=type, data=data, outbox_id=outbox_id)
    )


@shared_task(name="billing.webhook_attempt")
def webhook_attempt_task(*, delivery_id: int) -> None:
    services.webhook_attempt(delivery_id=delivery_id)


@shared_task(name="billing.webhook_deliver_due")
def webhook_deliver_due_task() -> int:
    return services.webhook_deliver_due()


@shared_task(name="billing.alert_email_send")
def alert_email_send_task(
    *, tenant_id: int, subject: str, body: str, outbox_id: int | None = None
) -> int:
    return services.alert_email_send(
        tenant_id=tenant_id, subject=subject, body=body, outbox_id=outbox_id
    )
