"""The rollups summed from MarginDay for reads across every tenant (MarginTotalDay,
TenantMarginDay, TenantMarginMonth), against the real database: the job keeps them equal to
the sums of MarginDay's rows they cover, to the unrounded minor unit, refunds included; and a
range read from whole months plus the days at its edges equals the same range summed day by
day from MarginDay."""

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection
from django.db.models import Sum

from insights.models import (
    MARGIN_SUMS,
    MarginDay,
    MarginTotalDay,
    TenantMarginDay,
    TenantMarginMonth,
)
from insights.rollup import insights_rollup_backfill, insights_rollup_update
from insights.selectors import MarginRow, margin_list, range_plan, tenant_margin_list
from ledger.selectors import transaction_get
from ledger.services import ledger_reverse
from metering.services import UsageInput, usage_event_record
from ratecards.models import CostPrice
from ratecards.services import (
    cost_catalog_version_create_draft,
    cost_catalog_version_publish,
    cost_price_set,
    ratecard_seed_example,
)
from tenants.models import Tenant
from tests.metering.factories import fund

pytestmark = pytest.mark.django_db

D = Decimal
SUMS = MARGIN_SUMS


def record(tenant: Tenant, key: str, action: str, quantity: str, **fields: Any) -> None:
    data = UsageInput(idempotency_key=key, action=action, quantity=D(quantity), **fields)
    usage_event_record(tenant=tenant, data=data)


@pytest.fixture
def months(tenant: Tenant, other_tenant: Tenant) -> None:
    """Acme (USD, 1 cent a credit: 174 credits, 4 refunded) and Globex (EUR, 3 cents a
    credit) use credits from Jan 30 to Mar 1, across two month ends; an event without cost
    components on Feb 1; on Mar 2, 4 of Acme's 10 web-research credits of Jan 31 are refunded
    (off Mar 2's row)."""
    with time_machine.travel("2026-01-29 09:00:00+00:00", tick=False) as clock:
        ratecard_seed_example()
        fund(tenant, 10_000, price_minor=10_000, reference="a")
        fund(other_tenant, 10_000, price_minor=30_000, reference="g", currency="EUR")
        for when, who, key, action, quantity, fields in (
            ("01-30 10:00", tenant, "a1", "chat", "100", {"input_tokens": 400_000}),
            ("01-31 23:59", tenant, "a2", "web_research", "1", {"tool_calls": 2}),
            ("01-31 12:00", other_tenant, "g1", "chat", "7", {"output_tokens": 100_000}),
            ("02-01 00:00", tenant, "a3", "doc_search", "5", {}),
            ("02-01 00:00", other_tenant, "g2", "chat", "3", {"output_tokens": 50_000}),
            ("02-15 08:00", tenant, "a4", "chat", "40", {"input_tokens": 1_000}),
            ("02-28 23:00", other_tenant, "g3", "doc_search", "2", {"vector_reads": 10}),
            ("03-01 00:30", tenant, "a5", "chat", "9", {"input_tokens": 9_000}),
        ):
            clock.move_to(f"2026-{when}:00+00:00")
            record(who, key, action, quantity, **fields)
        clock.move_to("2026-03-02 10:00:00+00:00")
        debit = transaction_get(tenant=tenant, idempotency_key="usage:a2")
        assert debit is not None
        ledger_reverse(tenant=tenant, debit=debit, idempotency_key="refund-a2", amount=D("4"))
        insights_rollup_update()


def _summed(rows: Any, *keys: Any) -> list[tuple[Any, ...]]:
    grouped = rows.values(*keys).annotate(**{f"s_{c}": Sum(c) for c in SUMS}).order_by(*keys)
    return [tuple(g[k] for k in [*keys, *(f"s_{c}" for c in SUMS)]) for g in grouped]


def _kept(model: Any, *keys: str) -> list[tuple[Any, ...]]:
    return list(model.objects.order_by(*keys).values_list(*keys, *SUMS))


@pytest.mark.usefixtures("months")
def test_each_rollup_is_the_sum_of_the_margin_days_it_covers() -> None:
    days = MarginDay.objects.all()
    pair = ("currency", "cogs_currency")

    assert _kept(MarginTotalDay, "day", "action", "model_class", "workflow", *pair) == _summed(
        days, "day", "action", "model_class", "workflow", *pair
    )
    assert _kept(TenantMarginDay, "tenant_id", "day", *pair) == _summed(
        days, "tenant_id", "day", *pair
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tenant_id, date_trunc('month', day)::date, currency, cogs_currency, "
            + ", ".join(f"sum({c})" for c in SUMS)
            + " FROM insights_marginday GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )
        by_month = [tuple(r) for r in cursor.fetchall()]
    assert _kept(TenantMarginMonth, "tenant_id", "month", *pair) == by_month
    assert [m.month for m in TenantMarginMonth.objects.order_by("month")].count(
        date(2026, 2, 1)
    ) == 2
    # The refund of Mar 2 is on March's row: its credits (-4) and revenue (-4 cents).
    march = TenantMarginMonth.objects.get(month=date(2026, 3, 1))
    assert (march.events, march.credits, march.revenue_minor) == (1, D("5"), D("5.00000000"))


@pytest.mark.usefixtures("months")
def test_the_backfill_rebuilds_the_same_sums() -> None:
    pair = ("currency", "cogs_currency")
    keys: list[tuple[Any, tuple[str, ...]]] = [
        (MarginTotalDay, ("day", "action", "model_class", "workflow", *pair)),
        (TenantMarginDay, ("tenant_id", "day", *pair)),
        (TenantMarginMonth, ("tenant_id", "month", *pair)),
    ]
    before = [_kept(model, *key) for model, key in keys]

    insights_rollup_backfill()

    assert [_kept(model, *key) for model, key in keys] == before


def _by_day(start: date, end: date) -> list[tuple[Any, ...]]:
    """The reference: each tenant's MarginDay rows of start..end summed day by day."""
    return _summed(
        MarginDay.objects.filter(day__gte=start, day__lte=end),
        "tenant_id",
        "currency",
        "cogs_currency",
    )


def _read(rows: list[MarginRow]) -> list[tuple[Any, ...]]:
    return [
        (
            r.key,
            r.currency,
            r.cogs_currency,
            r.events,
            r.quantity,
            r.credits,
            r.revenue_minor,
            r.cogs_minor,
            r.events_without_cost,
            r.quantity_without_cost,
            r.credits_without_cost,
            r.revenue_without_cost_minor,
        )
        for r in rows
    ]


@pytest.mark.usefixtures("months")
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 1, 31), date(2026, 2, 1)),  # two edge days, no whole month
        (date(2026, 2, 1), date(2026, 2, 28)),  # February whole
        (date(2026, 1, 30), date(2026, 3, 1)),  # edge days on both sides of February
        (date(2026, 1, 1), date(2026, 3, 31)),  # three whole months
        (date(2026, 2, 2), date(2026, 3, 2)),  # edge days of February, March's refund
        (date(2026, 2, 16), date(2026, 2, 27)),  # days inside a month, none used
        (date(2026, 1, 2), date(2026, 2, 27)),  # two months, each less a day used or not
        # February less Feb 1 and Feb 28, the only days Globex used: no row for it.
        (date(2026, 2, 2), date(2026, 2, 27)),
    ],
)
def test_a_range_from_months_and_edge_days_equals_its_days(start: date, end: date) -> None:
    assert _read(tenant_margin_list(start=start, end=end)) == _by_day(start, end)


@pytest.mark.usefixtures("months")
def test_one_tenants_range_and_every_customers_margin(tenant: Tenant) -> None:
    start, end = date(2026, 1, 30), date(2026, 3, 2)

    (acme,) = tenant_margin_list(start=start, end=end, tenant_ids=[tenant.pk])
    assert (acme.key, acme.currency, acme.events, acme.credits) == (tenant.pk, "USD", 5, D("170"))
    assert [(r.label, r.currency) for r in margin_list(start=start, end=end, by="tenant")] == [
        ("Acme Agents", "USD"),
        ("Globex Bots", "EUR"),
    ]


@pytest.mark.usefixtures("months")
@pytest.mark.parametrize("by", ["day", "action", "model_class", "workflow"])
def test_margin_across_every_tenant_reads_the_day_totals(by: str) -> None:
    """Read from MarginTotalDay; the same figures as each tenant's MarginDay rows summed."""
    start, end = date(2026, 1, 31), date(2026, 3, 2)
    field = {"day": "day", "action": "action", "model_class": "model_class"}.get(by, by)

    rows = margin_list(start=start, end=end, by=by)  # type: ignore[arg-type]

    expected = _summed(
        MarginDay.objects.filter(day__gte=start, day__lte=end), field, "currency", "cogs_currency"
    )
    assert _read(rows) == expected


def test_a_range_reads_its_whole_months_and_the_fewer_days() -> None:
    year = range_plan(start=date(2025, 12, 2), end=date(2026, 10, 30))
    assert year.months == [date(2025, 12, 1)] + [date(2026, m, 1) for m in range(1, 11)]
    assert (year.days, year.less) == (
        [],
        [(date(2025, 12, 1), date(2025, 12, 1)), (date(2026, 10, 31), date(2026, 10, 31))],
    )
    across = range_plan(start=date(2026, 10, 16), end=date(2026, 11, 14))
    assert (across.months, across.days, across.less) == (
        [date(2026, 10, 1)],
        [(date(2026, 11, 1), date(2026, 11, 14))],
        [(date(2026, 10, 1), date(2026, 10, 15))],
    )
    assert across.day_count == 29
    inside = range_plan(start=date(2026, 2, 10), end=date(2026, 2, 12))
    assert (inside.months, inside.days, inside.less) == (
        [],
        [(date(2026, 2, 10), date(2026, 2, 12))],
        [],
    )
    # The most days a range reads: about half a month at each end.
    assert (
        max(
            range_plan(start=date(2026, 1, d), end=date(2026, 6, e)).day_count
            for d in range(1, 32)
            for e in range(1, 31)
        )
        == 30
    )


def test_an_event_with_only_gpu_time_has_a_known_cost(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    """GPU seconds are a cost component (metering prices them): such an event's cost is known,
    in MarginDay and in the sums of it."""
    ratecard_seed_example()
    catalog = cost_catalog_version_create_draft(currency="USD", notes="GPU")
    cost_price_set(
        version=catalog, component=CostPrice.Component.GPU_SECONDS, price_minor="5", per_units=100
    )
    cost_catalog_version_publish(
        version=catalog, effective_from=datetime(2026, 1, 15, 12, 30, tzinfo=UTC)
    )
    frozen_time.move_to(datetime(2026, 1, 15, 13, tzinfo=UTC))
    fund(tenant, 100, price_minor=100)
    record(tenant, "gpu", "chat", "1", gpu_seconds=D("0.5"))
    record(tenant, "none", "chat", "1")

    insights_rollup_update()

    for model in (MarginDay, MarginTotalDay, TenantMarginDay, TenantMarginMonth):
        row = model.objects.get()
        assert (row.events, row.events_without_cost, row.cogs_minor) == (2, 1, D("0.025"))
