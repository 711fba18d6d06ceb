"""Tasks that belong to no business app."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="tenants.ping")
def ping(note: str = "") -> str:
    """Proves that a message sent from web reaches a worker (`manage.py shell` or the admin)."""
    logger.info("pong %s", note)
    return "pong"


@shared_task(name="tenants.outbox_relay_due")
def outbox_relay_due_task() -> int:
    """Hands the broker the outbox messages still waiting (tenants/outbox.py)."""
    from tenants.outbox import outbox_relay_due

    return outbox_relay_due()


@shared_task(name="tenants.outbox_run")
def outbox_run_task(message_id: int) -> None:
    """Runs one outbox message's task and marks it handled (tenants/outbox.py)."""
    from tenants.outbox import outbox_run

    outbox_run(message_id)


@shared_task(name="tenants.invite_email_send")
def invite_email_send_task(
    email: str, tenant_name: str, role: str, invited_by: str, link: str, outbox_id: int
) -> int:
    """An invitation to a tenant (tenants.services.membership_invite), sent once."""
    from tenants.services import membership_invite_email_send

    return membership_invite_email_send(
        email=email,
        tenant_name=tenant_name,
        role=role,
        invited_by=invited_by,
        link=link,
        outbox_id=outbox_id,
    )
