"""Calendar arithmetic for expiry: billing periods on an anchor day, and rolling 12 months.

A month is added by keeping the day of month and clamping it to the month's last day, always
measured from the anchor (never from the previous, already clamped, date): an anchor on the
31st gives Jan 31, Feb 28 (29), Mar 31, Apr 30, ...; Feb 29 + 12 months is Feb 28.
"""

import calendar
from datetime import datetime


def add_months(moment: datetime, months: int) -> datetime:
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def rolling_12m_expiry(granted_at: datetime) -> datetime:
    return add_months(granted_at, 12)


def period_bounds(anchor: datetime, at: datetime) -> tuple[datetime, datetime]:
    """The billing period [start, end) that contains `at`, for periods anchored at `anchor`."""
    if at < anchor:
        raise ValueError("A billing period cannot start before its anchor.")
    months = (at.year - anchor.year) * 12 + (at.month - anchor.month)
    start = add_months(anchor, months)
    if start > at:
        months -= 1
        start = add_months(anchor, months)
    return start, add_months(anchor, months + 1)


def period_index(anchor: datetime, at: datetime) -> int:
    """0 for the first period after the anchor, 1 for the next, ..."""
    start, _ = period_bounds(anchor, at)
    return (start.year - anchor.year) * 12 + (start.month - anchor.month)
