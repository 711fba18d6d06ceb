"""Tasks that belong to no business app."""

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(name="tenants.ping")
def ping(note: str = "") -> str:
    """Proves that a message sent from web reaches a worker (`manage.py shell` or the admin)."""
    logger.info("pong %s", note)
    return "pong"
