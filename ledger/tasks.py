"""The ledger's periodic jobs (Celery beat: config/settings/base.py CELERY_BEAT_SCHEDULE)."""

import logging

from celery import shared_task

from ledger.selectors import ledger_verify
from ledger.services import ledger_expire_due

logger = logging.getLogger(__name__)


@shared_task(name="ledger.expire_due")
def expire_due() -> int:
    """Every minute. Two at once are harmless: the second skips on the advisory lock."""
    expired = ledger_expire_due()
    if expired:
        logger.info("ledger sweep expired %d bucket(s)", expired)
    return expired


@shared_task(name="ledger.verify")
def verify() -> int:
    """Every hour. Any difference is a bug in the one writer: logged at ERROR for alerting."""
    mismatches = ledger_verify()
    for m in mismatches:
        logger.error(
            "ledger mismatch: tenant %s %s %s cached %s, entries say %s",
            m.tenant_id,
            m.what,
            m.id,
            m.cached,
            m.computed,
        )
    return len(mismatches)
