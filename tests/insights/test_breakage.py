"""Breakage, exact for each expiry policy: credits that expired unspent, by month, policy and
source, and the money paid for them, recognised at the bucket's expiry (free credits: 0)."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine

from insights.rollup import insights_rollup_update
from insights.selectors import BreakageRow, breakage_by_tenant, breakage_list
from ledger.models import CreditBucket
from ledger.services import ledger_expire_due, ledger_grant
from metering.services import UsageInput, usage_event_record
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

D = Decimal
Policy, Source = CreditBucket.Policy, CreditBucket.Source


def _grant(tenant: Tenant, credits: int, reference: str, **fields: Any) -> None:
    ledger_grant(tenant=tenant, credits=credits, external_reference=reference, **fields)


def _spend(tenant: Tenant, key: str, credits: str) -> None:
    usage_event_record(
        tenant=tenant, data=UsageInput(idempotency_key=key, action="chat", quantity=D(credits))
    )


def test_monthly_reset_breaks_what_is_left_at_the_period_end(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    """A subscription's 500 included credits for $50.00 (10 cents each) until Feb 1; 200 spent."""
    ratecard_seed_example()
    _grant(
        tenant,
        500,
        "sub:1:0",
        policy=Policy.MONTHLY_RESET,
        source=Source.SUBSCRIPTION,
        expires_at=datetime(2026, 2, 1, tzinfo=UTC),
        price_minor=5000,
    )
    _spend(tenant, "e1", "200")
    frozen_time.move_to("2026-02-01 00:00:30+00:00")
    assert ledger_expire_due() == 1
    insights_rollup_update()

    assert breakage_list(start=date(2026, 1, 1), end=date(2026, 2, 28)) == [
        BreakageRow(
            date(2026, 2, 1),
            Policy.MONTHLY_RESET,
            Source.SUBSCRIPTION,
            "USD",
            D("300"),
            D("3000.00000000"),
        ),
    ]
    assert breakage_by_tenant(start=date(2026, 2, 1), end=date(2026, 2, 1)) == {
        (tenant.pk, "USD"): D("3000.00000000")
    }


def test_permanent_credits_never_break(tenant: Tenant, frozen_time: time_machine.Traveller) -> None:
    ratecard_seed_example()
    _grant(tenant, 1000, "topup:1", policy=Policy.PERMANENT, source=Source.TOPUP, price_minor=1000)
    _spend(tenant, "e1", "100")
    frozen_time.move_to("2031-01-15 12:00:00+00:00")
    assert ledger_expire_due() == 0
    insights_rollup_update()

    assert breakage_list(start=date(2026, 1, 1), end=date(2031, 12, 31)) == []


def test_rolling_12_months_breaks_a_year_after_each_grant(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    """A contract's 1,000 credits at $8.00 per 1,000 granted Jan 31 2026 (so until Jan 31
    2027) and 50 free promotion credits granted Feb 28 2026 (until Feb 28 2027); 250 spent
    (the contract's bucket expires first, so it is drawn first)."""
    frozen_time.move_to("2026-01-31 09:00:00+00:00")
    ratecard_seed_example()
    _grant(
        tenant,
        1000,
        "contract:1:0",
        policy=Policy.ROLLING_12M,
        source=Source.CONTRACT,
        price_minor=800,
    )
    frozen_time.move_to("2026-02-28 09:00:00+00:00")
    _grant(tenant, 50, "promo", policy=Policy.ROLLING_12M, source=Source.PROMOTION)
    _spend(tenant, "e1", "250")
    frozen_time.move_to("2027-01-31 09:00:01+00:00")
    assert ledger_expire_due() == 1
    frozen_time.move_to("2027-03-01 00:00:00+00:00")
    assert ledger_expire_due() == 1
    insights_rollup_update()

    assert breakage_list(start=date(2026, 1, 1), end=date(2027, 12, 31)) == [
        BreakageRow(
            date(2027, 1, 1),
            Policy.ROLLING_12M,
            Source.CONTRACT,
            "USD",
            D("750"),
            D("600.00000000"),
        ),
        BreakageRow(
            date(2027, 2, 1), Policy.ROLLING_12M, Source.PROMOTION, "USD", D("50"), D("0E-8")
        ),
    ]
