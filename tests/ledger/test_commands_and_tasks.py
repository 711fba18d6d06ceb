"""`ledger_verify`, `credits_grant`, and the Celery tasks behind beat."""

import logging
from datetime import UTC, datetime
from decimal import Decimal
from io import StringIO

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from ledger import tasks
from ledger.models import CreditBucket
from ledger.services import ledger_grant
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=out)
    return out.getvalue()


def corrupt(bucket: CreditBucket, remaining: str) -> None:
    """What a bug outside the one writer would do (the trigger guards entries, not buckets)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ledger_creditbucket SET remaining = %s WHERE id = %s", [remaining, bucket.pk]
        )


def test_credits_grant_then_ledger_verify(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    out = run(
        "credits_grant",
        "--tenant",
        "acme",
        "--credits",
        "500",
        "--policy",
        "monthly_reset",
        "--reference",
        "jan",
    )
    bucket = CreditBucket.objects.get(tenant=tenant)
    assert bucket.expires_at == datetime(2026, 2, 1, tzinfo=UTC)
    assert out == (
        f"granted: 500.0000 credits to acme, monthly_reset, expires "
        f"2026-02-01T00:00:00+00:00, bucket {bucket.pk}, reference jan; "
        f"available now 500.0000\n"
    )
    again = run(
        "credits_grant",
        "--tenant",
        "acme",
        "--credits",
        "500",
        "--policy",
        "monthly_reset",
        "--reference",
        "jan",
    )
    assert again.startswith("already granted (same reference): 500.0000 credits")
    run(
        "credits_grant",
        "--tenant",
        "acme",
        "--credits",
        "20",
        "--policy",
        "rolling_12m",
        "--expires-at",
        "2026-06-30T00:00:00+00:00",
    )
    assert CreditBucket.objects.filter(tenant=tenant).count() == 2

    assert run("ledger_verify") == "ledger verified: 2 buckets, 0 holds, no differences\n"


def test_credits_grant_refuses_bad_input(tenant: Tenant) -> None:
    with pytest.raises(CommandError, match="No tenant has the slug 'nope'"):
        run("credits_grant", "--tenant", "nope", "--credits", "5", "--policy", "permanent")
    with pytest.raises(CommandError, match="must be a positive number"):
        run("credits_grant", "--tenant", "acme", "--credits", "-5", "--policy", "permanent")
    with pytest.raises(CommandError, match="UTC offset"):
        run(
            "credits_grant",
            "--tenant",
            "acme",
            "--credits",
            "5",
            "--policy",
            "rolling_12m",
            "--expires-at",
            "2026-06-30",
        )


def test_ledger_verify_prints_each_difference_and_exits_1(tenant: Tenant) -> None:
    bucket = ledger_grant(
        tenant=tenant, credits=10, policy=P.PERMANENT, source="topup", external_reference="pack"
    ).bucket
    corrupt(bucket, "7")
    out = StringIO()
    with pytest.raises(CommandError, match=r"ledger verify found 1 difference\(s\)\.") as exc:
        call_command("ledger_verify", stdout=out, stderr=out)
    assert out.getvalue() == (
        f"tenant {tenant.pk} bucket {bucket.pk}: cached 7.0000, entries say 10.0000\n"
    )
    assert exc.value.returncode == 1


def test_the_tasks_sweep_and_verify(
    tenant: Tenant, frozen_time: time_machine.Traveller, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = ledger_grant(
        tenant=tenant,
        credits=10,
        policy=P.MONTHLY_RESET,
        source="subscription",
        external_reference="sub",
        expires_at=datetime(2026, 2, 1, tzinfo=UTC),
    ).bucket
    assert tasks.expire_due.delay().get() == 0
    frozen_time.move_to(datetime(2026, 2, 1, tzinfo=UTC))
    assert tasks.expire_due.delay().get() == 1
    assert tasks.verify.delay().get() == 0

    corrupt(bucket, "1")
    with caplog.at_level(logging.ERROR, logger="ledger.tasks"):
        assert tasks.verify.delay().get() == 1
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"ledger mismatch: tenant {tenant.pk} bucket {bucket.pk} cached 1.0000, entries say 0.0000"
    ]
    assert settings.CELERY_BEAT_SCHEDULE["ledger.expire_due"] == {
        "task": "ledger.expire_due",
        "schedule": 60.0,
    }
    assert settings.CELERY_BEAT_SCHEDULE["ledger.verify"]["schedule"] == 3600.0
    assert Decimal(CreditBucket.objects.get(pk=bucket.pk).remaining) == Decimal("1")
