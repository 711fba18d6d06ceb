"""The ledger's periodic jobs (Celery beat: config/settings/base.py CELERY_BEAT_SCHEDULE)."""

import logging
from datetime import timedelta

from celery import shared_task

from ledger.events import WatchLevelCrossed, watch_level_crossed
from ledger.rollup import debit_days_update
from ledger.selectors import ledger_verify
from ledger.services import ledger_expire_due
from tenants.leases import lease

logger = logging.getLogger(__name__)

# Longer than verify ever takes; a killed worker's lease lapses after it.
VERIFY_LEASE = timedelta(minutes=30)


@shared_task(name="ledger.expire_due")
def expire_due() -> int:
    """Every minute. Two at once are harmless: the second skips on the advisory lock."""
    expired = ledger_expire_due()
    if expired:
        logger.info("ledger sweep expired %d bucket(s)", expired)
    return expired


@shared_task(name="ledger.verify")
def verify() -> int:
    """Every hour. Any difference is a bug in the one writer: logged at ERROR for alerting.

    It may run longer than the broker's visibility timeout on a big ledger: a second copy
    finds the lease taken and returns -1 at once."""
    with lease("ledger.verify", ttl=VERIFY_LEASE) as held:
        if not held:
            logger.info("ledger verify already running; this copy exits")
            return -1
        return _verify()


def _verify() -> int:
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


@shared_task(name="ledger.watch_crossed")
def watch_crossed(tenant_id: int) -> None:
    """Sent through the outbox by the debit's SQL when a debit crossed the tenant's watch
    level (ledger/sql/debit_v4.sql): tells the apps that watch it (billing's alerts and auto
    top-up)."""
    watch_level_crossed(WatchLevelCrossed(tenant_id=tenant_id))


@shared_task(name="ledger.debit_days_update")
def debit_days_update_task() -> int | None:
    """Every 30 s: the daily debit totals behind the burn rate (ledger/rollup.py). Two at once
    are harmless: each chunk moves the watermark under its row lock."""
    return debit_days_update()
