"""Telling a tenant: a domain event (which becomes signed webhooks) and an email, both after
the transaction that decided it commits."""

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from billing.selectors import billing_contacts
from tenants.events import publish


def notify(*, tenant_id: int, type: str, data: dict[str, Any], subject: str, body: str) -> None:
    publish(tenant_id=tenant_id, type=type, data=data)
    from billing.tasks import alert_email_send_task

    transaction.on_commit(
        lambda: alert_email_send_task.delay(tenant_id=tenant_id, subject=subject, body=body)
    )


def alert_email_send(*, tenant_id: int, subject: str, body: str) -> int:
    recipients = billing_contacts(tenant_id=tenant_id)
    if not recipients:
        return 0
    return send_mail(
        subject=f"[Creditline] {subject}",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
