"""Expired usage exports are deleted with their files by the hourly purge, every tenant's,
whether the tenant asks for another export or not; live ones stay whole."""

from datetime import date

import pytest
import time_machine
from django.conf import settings

from config.celery_app import app
from metering import exports
from metering.exports import usage_export_request, usage_exports_purge
from metering.models import UsageExport, UsageExportPart
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def _export(tenant: Tenant, kind: str = "days") -> UsageExport:
    return usage_export_request(
        tenant=tenant, kind=kind, since=date(2026, 1, 1), until=date(2026, 1, 1), user_id=None
    )


def test_expired_exports_go_with_their_files_and_live_ones_stay(
    tenant: Tenant, other_tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Jan 1: Acme's ready export, its export the job never made, Globex's ready one; Jan 5:
    Acme's fourth. Jan 9: the first three are past their 7 days, the fourth is not."""
    monkeypatch.setattr(exports, "PURGE_BATCH", 2)  # two transactions' worth
    with time_machine.travel("2026-01-01 12:00:00+00:00", tick=False) as clock:
        ready = _export(tenant)
        monkeypatch.setattr(exports, "INLINE_ROWS", -1)  # left to the job, which never ran
        waiting = _export(tenant, "events")
        monkeypatch.setattr(exports, "INLINE_ROWS", 5_000)
        globex = _export(other_tenant)
        clock.move_to("2026-01-05 12:00:00+00:00")
        live = _export(tenant)
        clock.move_to("2026-01-09 12:00:00+00:00")
        assert [e.status for e in (ready, waiting, globex, live)] == [
            "done",
            "pending",
            "done",
            "done",
        ]
        assert UsageExportPart.objects.count() == 3

        purged = usage_exports_purge()
        again = usage_exports_purge()

    assert (purged, again) == (3, 0)
    assert list(UsageExport.objects.values_list("pk", flat=True)) == [live.pk]
    assert list(UsageExportPart.objects.values_list("export_id", "number")) == [(live.pk, 1)]


def test_nothing_expired_nothing_deleted(tenant: Tenant) -> None:
    with time_machine.travel("2026-01-01 12:00:00+00:00", tick=False) as clock:
        export = _export(tenant)
        clock.move_to("2026-01-08 11:59:59+00:00")  # a second before it expires

        assert usage_exports_purge() == 0

    assert list(UsageExport.objects.values_list("pk", flat=True)) == [export.pk]


def test_the_purge_runs_hourly_on_the_beat() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["metering.usage_exports_purge"] == {
        "task": "metering.usage_exports_purge",
        "schedule": 3600.0,
    }
    assert "metering.usage_exports_purge" in app.tasks
    assert app.tasks["metering.usage_exports_purge"].run() == 0
