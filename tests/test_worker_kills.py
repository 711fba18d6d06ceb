"""Workers killed with SIGKILL: the task they held comes back (acks late, the broker's
visibility timeout) and the expiry sweep, killed at seeded points, expires every due bucket
exactly once. Real `celery worker` processes, a Redis of the test's own, real PostgreSQL."""

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from ledger.models import CreditBucket, EntryKind, LedgerEntry
from ledger.selectors import ledger_verify
from ledger.services import ledger_grant
from ledger.tasks import expire_due
from tenants.models import Tenant
from tenants.services import tenant_create
from tests.ledger.helpers import seed_due_buckets
from tests.outage import OwnRedis, broker
from tests.subprocess_env import ROOT

pytestmark = pytest.mark.django_db(transaction=True)
VISIBILITY_SECONDS = 2


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[OwnRedis]:
    with broker(tmp_path) as own:
        yield own


def worker(redis: OwnRedis) -> subprocess.Popen[bytes]:
    """`celery worker` on the test's database and broker, one process (solo pool)."""
    db = connection.settings_dict
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/root"),
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "TEST_DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "TEST_CELERY_BROKER_URL": redis.url,
        "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_SECONDS),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(os.environ.get("KILLTEST_LOG", "/dev/null"), "ab"),
        stderr=subprocess.STDOUT,
    )


def kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def expired() -> int:
    return LedgerEntry.objects.filter(kind=EntryKind.EXPIRY).count()


def wait_for(condition: object, seconds: float) -> float:
    start = time.monotonic()
    while not condition():  # type: ignore[operator]
        if time.monotonic() - start > seconds:
            raise AssertionError(f"not within {seconds} s")
        time.sleep(0.02)
    return time.monotonic() - start


def tenants(count: int) -> list[Tenant]:
    made = []
    for n in range(count):
        tenant = tenant_create(name=f"T{n}", slug=f"t{n}")
        ledger_grant(
            tenant=tenant,
            credits=Decimal(10),
            policy=CreditBucket.Policy.PERMANENT,
            source=CreditBucket.Source.PROMOTION,
            external_reference=f"pack-{n}",
        )
        made.append(tenant)
    return made


def test_a_sweep_killed_at_seeded_points_expires_everything_once(redis: OwnRedis) -> None:
    # 300 tenants: three chunks of the sweep (100 tenants each, one transaction per chunk).
    group = tenants(300)
    expected = 0
    for seed in (1, 2, 3):
        rng = random.Random(seed)
        now = timezone.now()
        due = seed_due_buckets(
            group, 10, granted=now - timedelta(days=40), expires=now, prefix=f"r{seed}-"
        )
        assert (due, ledger_verify()) == (3_000, [])
        expected += due
        # The point of death: after 1 or 2 chunks committed, and a little into the next one.
        kill_after = expected - due + rng.randint(1, 2) * 1_000
        delay = rng.uniform(0, 0.2)

        first = worker(redis)
        try:
            expire_due.apply_async()
            wait_for(lambda at=kill_after: expired() >= at, seconds=60)
            time.sleep(delay)
        finally:
            kill(first)
        assert kill_after <= expired() < expected, f"seed {seed}: not killed mid-sweep"

        second = worker(redis)
        try:
            # The killed worker's message comes back after the visibility timeout, well within
            # a minute, and the sweep finishes what the first one started.
            took = wait_for(lambda n=expected: expired() == n, seconds=60)
        finally:
            kill(second)
        assert took < 60
        entries = LedgerEntry.objects.filter(kind=EntryKind.EXPIRY)
        assert entries.values("bucket_id").distinct().count() == expected  # once each
        assert not CreditBucket.objects.filter(expires_at__lte=now, remaining__gt=0).exists()
        assert ledger_verify() == []
