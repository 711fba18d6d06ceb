"""A staff-requested reconciliation run is claimed by one worker: a second delivery of its task
leaves a run another worker is running alone, and takes over one whose worker died."""

from datetime import timedelta

import pytest
from django.utils import timezone

from insights.models import ReconciliationRun
from insights.reconcile import ABANDONED, reconciliation_run

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
