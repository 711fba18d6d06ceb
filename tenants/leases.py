"""Leases for jobs that must not run twice at once and may outlive the broker's visibility
timeout (the broker then hands a second copy of the task to another worker).

A lease is a row: taken when absent or expired, in one statement, and given back when the job
ends. A worker killed while holding one leaves it to expire after its `ttl`, so the next run
goes ahead then. A row, not a session-level advisory lock: a lock held by a session would
leak behind a pooler in transaction mode.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import connection
from django.utils import timezone

from tenants.models import Lease

_TAKE = """
    INSERT INTO tenants_lease (name, holder, expires_at) VALUES (%s, %s, %s)
    ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
    WHERE tenants_lease.expires_at < %s
    RETURNING holder
"""


@contextmanager
def lease(name: str, *, ttl: timedelta) -> Iterator[bool]:
    """`with lease("ledger.verify", ttl=...) as held:` run the job only when `held`."""
    holder = uuid.uuid4().hex
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_TAKE, [name, holder, now + ttl, now])
        held = cursor.fetchone() is not None
    try:
        yield held
    finally:
        if held:
            Lease.objects.filter(name=name, holder=holder).delete()
