"""Refusals counted per tenant, UTC day and reason (UsageRefusalDay), for the vendor's plan
fit: 402s for want of credits (an event, a batch's events, a workflow step, a run's
reservation) and runs refused at the soft cap. Recorded from the day this shipped on; the
counts are read by metering.rollup_selectors."""

from django.db import connection, transaction
from django.utils import timezone

_COUNT = """
INSERT INTO metering_usagerefusalday AS r (tenant_id, day, reason, count)
VALUES (%s, %s, %s, %s)
ON CONFLICT (tenant_id, day, reason) DO UPDATE SET count = r.count + EXCLUDED.count
"""


def usage_refusal_count(*, tenant_id: int, reason: str, count: int = 1) -> None:
    """Count `count` refusals of a tenant for `reason` (the error's code) today, once the
    refusal's transaction has committed (at once outside one): a successful request never
    gets here, and a refusal costs one short upsert in its own transaction, outside the
    debit's. (A refusal storm of one tenant queues on its one counter row, briefly each.)"""
    if count <= 0:
        return

    def write() -> None:
        with connection.cursor() as cursor:
            cursor.execute(_COUNT, [tenant_id, timezone.now().date(), reason, count])

    transaction.on_commit(write, robust=True)
