"""The ledger's daily debit totals and the burn rate, against the real database: exact
figures, refunds, the window's edges, the balance API."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D  # noqa: N817

import pytest
import time_machine
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from ledger.models import DebitDay, LedgerTransaction
from ledger.rollup import debit_days_update
from ledger.rollup_selectors import BurnRate, burn_rate_get, debit_days_as_of
from ledger.selectors import available_get
from ledger.services import ledger_debit, ledger_grant, ledger_reverse
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def _spend(tenant: Tenant, key: str, amount: str) -> LedgerTransaction:
    ledger_debit(
        tenant=tenant,
        amount=D(amount),
        idempotency_key=key,
        source_type="usage_event",
        source_id=key,
    )
    return LedgerTransaction.objects.get(tenant=tenant, idempotency_key=key)


@pytest.fixture
def spender(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    """1,000 credits on Dec 1; spent: 50 on Dec 16 (just outside 30 days), 295 on Dec 20,
    65 on Jan 10, 75 today (Jan 15, 12:00) less a refund of 10 of it."""
    frozen_time.move_to("2025-12-01 09:00:00+00:00")
    ledger_grant(
        tenant=tenant, credits=1000, policy="permanent", source="topup", external_reference="p1"
    )
    frozen_time.move_to("2025-12-16 23:59:00+00:00")
    _spend(tenant, "d1", "50")
    frozen_time.move_to("2025-12-20 10:00:00+00:00")
    _spend(tenant, "d2", "295")
    frozen_time.move_to("2026-01-10 08:00:00+00:00")
    _spend(tenant, "d3", "65")
    frozen_time.move_to("2026-01-15 12:00:00+00:00")
    today = _spend(tenant, "d4", "75")
    ledger_reverse(tenant=tenant, debit=today, idempotency_key="r4", amount=D(10))
    return tenant


def test_the_daily_totals_are_debits_less_refunds_per_utc_day(spender: Tenant) -> None:
    debit_days_update()

    assert list(
        DebitDay.objects.filter(tenant=spender).order_by("day").values_list("day", "credits")
    ) == [
        (date(2025, 12, 16), D("50.0000")),
        (date(2025, 12, 20), D("295.0000")),
        (date(2026, 1, 10), D("65.0000")),
        (date(2026, 1, 15), D("65.0000")),
    ]
    assert debit_days_as_of() == datetime(2026, 1, 15, 12, tzinfo=UTC)
    # a second run counts nothing twice
    assert debit_days_update() == 0
    assert DebitDay.objects.filter(tenant=spender).count() == 4


def test_the_burn_rate_and_the_run_out_date(spender: Tenant) -> None:
    debit_days_update()
    available = available_get(tenant=spender)

    # 7 days (Jan 9-15, today half gone): 130 / 6.5; 30 days (Dec 17-Jan 15): 425 / 29.5.
    # 525 left at 20 a day: 26.25 days.
    assert available == D("525.0000")
    assert burn_rate_get(tenant=spender, available=available) == BurnRate(
        per_day_7d=D("20.0000"),
        per_day_30d=D("14.4068"),
        runs_out_at=datetime(2026, 2, 10, 18, tzinfo=UTC),
    )


def test_without_usage_there_is_nothing_to_project(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    debit_days_update()

    assert burn_rate_get(tenant=tenant, available=D(100)) == BurnRate(
        per_day_7d=D("0.0000"), per_day_30d=D("0.0000"), runs_out_at=None
    )


def test_a_quiet_week_projects_at_the_30_day_pace_and_an_empty_balance_has_run_out(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    DebitDay.objects.create(tenant=tenant, day=date(2025, 12, 20), credits=D("59"))
    now = datetime(2026, 1, 15, 12, tzinfo=UTC)

    quiet = burn_rate_get(tenant=tenant, available=D(20))
    empty = burn_rate_get(tenant=tenant, available=D(0))

    assert (quiet.per_day_7d, quiet.per_day_30d) == (D("0.0000"), D("2.0000"))
    assert quiet.runs_out_at == datetime(2026, 1, 25, 12, tzinfo=UTC)
    assert empty.runs_out_at == now


def test_a_run_out_date_past_the_horizon_is_none_not_an_overflow(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # 0.0030 credit in 30 days (none in the last 7): 0.0001 a day, at which 100 million credits
    # last 2.7 billion years, and 3.65 credits exactly the horizon's 100 years.
    DebitDay.objects.create(tenant=tenant, day=date(2025, 12, 20), credits=D("0.0030"))

    far = burn_rate_get(tenant=tenant, available=D(100_000_000))
    near = burn_rate_get(tenant=tenant, available=D("3.65"))

    assert (far.per_day_30d, far.runs_out_at) == (D("0.0001"), None)
    assert near.runs_out_at == datetime(2026, 1, 15, 12, tzinfo=UTC) + timedelta(days=36_500)


def test_the_balance_api_shows_the_burn_rate(spender: Tenant, api_client: APIClient) -> None:
    debit_days_update()

    body = api_client.get("/api/v1/balance").json()

    assert body["available"] == "525.0000"
    assert body["burn_rate"] == {"7d": "20.0000", "30d": "14.4068"}
    assert body["runs_out_at"] == "2026-02-10T18:00:00Z"


def test_the_balance_read_stays_a_fixed_number_of_statements(
    spender: Tenant, api_client: APIClient
) -> None:
    debit_days_update()
    api_client.get("/api/v1/balance")  # warm the key and pricing caches

    with CaptureQueriesContext(connection) as first:
        api_client.get("/api/v1/balance")
    for day in range(1, 29):
        DebitDay.objects.create(tenant=spender, day=date(2025, 11, day), credits=D(1))
    with CaptureQueriesContext(connection) as second:
        api_client.get("/api/v1/balance")
    assert len(second) == len(first)
    assert sum("ledger_debitday" in q["sql"] for q in second.captured_queries) == 1


def test_the_job_runs_every_30_seconds() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["ledger.debit_days_update"] == {
        "task": "ledger.debit_days_update",
        "schedule": 30.0,
    }
