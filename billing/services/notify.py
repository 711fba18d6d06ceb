"""Telling a tenant: a domain event (which becomes signed webhooks) and an email, both outbox
messages in the transaction that decided them (tenants/outbox.py)."""

from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction

from billing import task_names
from billing.selectors import billing_contacts
from tenants.events import publish
from tenants.outbox import outbox_claim, outbox_enqueue


def notify(*, tenant_id: int, type: str, data: dict[str, Any], subject: str, body: str) -> None:
    publish(tenant_id=tenant_id, type=type, data=data)
    email_enqueue(tenant_id=tenant_id, subject=subject, body=body)


def email_enqueue(*, tenant_id: int, subject: str, body: str) -> None:
    """An e-mail to the tenant's billing contacts (alert_email_send), without a domain event."""
    outbox_enqueue(
        task_names.ALERT_EMAIL_SEND,
        {"tenant_id": tenant_id, "subject": subject, "body": body},
        once=True,
    )


def alert_email_send(
    *, tenant_id: int, subject: str, body: str, outbox_id: int | None = None
) -> int:
    """Send the email once per outbox message: the claim and the send share a transaction, so
    a second delivery of the task waits for the first and then finds the message handled; a
    send that fails rolls the claim back, for the next delivery to try again."""
    with transaction.atomic():
        if outbox_id is not None and not outbox_claim(outbox_id):
            return 0
        recipients = billing_contacts(tenant_id=tenant_id)
        if not recipients:
            return 0
        return send_mail(
            subject=f"[Creditline] {subject}",
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=recipients,
        )
