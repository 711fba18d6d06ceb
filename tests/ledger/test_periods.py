"""Calendar arithmetic: anchor days 1-31 over 2027-2028 (2028 is a leap year), rolling 12m."""

import calendar
import itertools
from datetime import UTC, datetime, timedelta

import pytest

from ledger.models import CreditBucket
from ledger.periods import add_months, period_bounds, period_index, rolling_12m_expiry
from ledger.services import ledger_grant
from tenants.models import Tenant


def expected_start(year: int, month: int, anchor_day: int) -> datetime:
    """The period start in a month: the anchor day, or the month's last day if shorter."""
    day = min(anchor_day, calendar.monthrange(year, month)[1])
    return datetime(year, month, day, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize("anchor_day", range(1, 32))
def test_period_bounds_for_every_anchor_day_over_two_years(anchor_day: int) -> None:
    anchor = datetime(2027, 1, anchor_day, 9, 30, tzinfo=UTC)
    months = [(2027 + i // 12, i % 12 + 1) for i in range(25)]
    starts = [expected_start(y, m, anchor_day) for y, m in months]
    for index, (start, end) in enumerate(itertools.pairwise(starts)):
        for at in (start, start + (end - start) / 2, end - timedelta(microseconds=1)):
            assert period_bounds(anchor, at) == (start, end), (anchor_day, at)
            assert period_index(anchor, at) == index


def test_the_31st_and_the_29th_in_february() -> None:
    jan31 = datetime(2027, 1, 31, tzinfo=UTC)
    assert period_bounds(jan31, datetime(2027, 2, 15, tzinfo=UTC)) == (
        datetime(2027, 1, 31, tzinfo=UTC),
        datetime(2027, 2, 28, tzinfo=UTC),
    )
    assert period_bounds(jan31, datetime(2028, 2, 29, 12, tzinfo=UTC)) == (
        datetime(2028, 2, 29, tzinfo=UTC),
        datetime(2028, 3, 31, tzinfo=UTC),
    )
    assert period_bounds(jan31, datetime(2028, 4, 30, tzinfo=UTC)) == (
        datetime(2028, 4, 30, tzinfo=UTC),
        datetime(2028, 5, 31, tzinfo=UTC),
    )
    # The clamp never sticks: after a short month the 31st comes back.
    assert [add_months(jan31, n).day for n in range(4)] == [31, 28, 31, 30]
    with pytest.raises(ValueError, match="cannot start before its anchor"):
        period_bounds(jan31, datetime(2027, 1, 30, tzinfo=UTC))


@pytest.mark.parametrize(
    ("granted_at", "expires_at"),
    [
        (datetime(2028, 2, 29, 10, tzinfo=UTC), datetime(2029, 2, 28, 10, tzinfo=UTC)),
        (datetime(2027, 1, 31, tzinfo=UTC), datetime(2028, 1, 31, tzinfo=UTC)),
        (datetime(2027, 2, 28, tzinfo=UTC), datetime(2028, 2, 28, tzinfo=UTC)),
        (datetime(2027, 12, 31, 23, 59, tzinfo=UTC), datetime(2028, 12, 31, 23, 59, tzinfo=UTC)),
    ],
)
def test_rolling_12_months(granted_at: datetime, expires_at: datetime) -> None:
    assert rolling_12m_expiry(granted_at) == expires_at


@pytest.mark.django_db
def test_a_contract_grant_on_feb_29_expires_on_feb_28(tenant: Tenant) -> None:
    bucket = ledger_grant(
        tenant=tenant,
        credits=1000,
        policy=CreditBucket.Policy.ROLLING_12M,
        source=CreditBucket.Source.CONTRACT,
        external_reference="c-leap",
        granted_at=datetime(2028, 2, 29, 10, tzinfo=UTC),
    ).bucket
    assert bucket.expires_at == datetime(2029, 2, 28, 10, tzinfo=UTC)
