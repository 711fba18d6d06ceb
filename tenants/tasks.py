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
