"""A staff-requested reconciliation run is claimed by one worker: a second delivery of its task
leaves a run another worker is running alone, and takes over one whose worker died. The rollups
summed from MarginDay are reconciled with it."""

import logging
from datetime import date, timedelta
from decimal import Decimal as D  # noqa: N817
from typing import Any

import pytest
from django.utils import timezone

from insights.models import (
    MarginDay,
    MarginTotalDay,
    ReconciliationRun,
    TenantMarginDay,
    TenantMarginMonth,
)
from insights.reconcile import ABANDONED, reconcile, reconciliation_run
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def _running_since(age: timedelta) -> ReconciliationRun:
    now = timezone.now()
    return ReconciliationRun.objects.create(
        trigger=ReconciliationRun.Trigger.STAFF,
        status=ReconciliationRun.Status.RUNNING,
        requested_at=now - age,
        started_at=now - age,
    )


def test_a_run_another_worker_is_running_is_left_alone() -> None:
    busy = _running_since(timedelta(minutes=1))

    run, result = reconciliation_run(
        trigger=ReconciliationRun.Trigger.STAFF, run_id=busy.pk, update_rollups=False
    )

    assert result is None
    assert (run.status, run.started_at) == (ReconciliationRun.Status.RUNNING, busy.started_at)


def test_a_run_whose_worker_died_is_taken_over_and_finished() -> None:
    stale = _running_since(ABANDONED + timedelta(minutes=1))

    run, result = reconciliation_run(
        trigger=ReconciliationRun.Trigger.STAFF, run_id=stale.pk, update_rollups=False
    )

    assert result is not None
    assert run.status == ReconciliationRun.Status.DONE
    assert run.started_at is not None
    assert stale.started_at is not None
    assert run.started_at > stale.started_at


def test_a_summed_rollup_that_disagrees_with_its_days_is_a_difference(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A tenant's month row the fold never reached: 5.00 USD of revenue MarginDay does not have.
    tenant = Tenant.objects.create(name="Acme", slug="acme")
    day: dict[str, Any] = {
        "tenant": tenant,
        "currency": "USD",
        "cogs_currency": "USD",
        "events": 1,
        "credits": D(10),
    }
    MarginDay.objects.create(
        **day, day=date(2026, 1, 2), action="chat", revenue_minor=D(100), cogs_minor=D(30)
    )
    MarginTotalDay.objects.create(
        **{k: v for k, v in day.items() if k != "tenant"},
        day=date(2026, 1, 2),
        action="chat",
        revenue_minor=D(100),
        cogs_minor=D(30),
    )
    TenantMarginDay.objects.create(
        **day, day=date(2026, 1, 2), revenue_minor=D(100), cogs_minor=D(30)
    )
    TenantMarginMonth.objects.create(
        **day, month=date(2026, 1, 1), revenue_minor=D(600), cogs_minor=D(30)
    )

    with caplog.at_level(logging.ERROR, logger="insights.reconcile"):
        problems = [p for p in reconcile().problems if "MarginDay" in p]

    assert problems == [
        "TenantMarginMonth in USD/USD: revenue_minor 600.00000000, MarginDay 100.00000000"
    ]
    assert f"reconciliation: {problems[0]}" in [r.getMessage() for r in caplog.records]
