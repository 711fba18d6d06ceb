"""The daily usage rollup and the refusal counts, against the real database: exact figures,
refunds, the statement's equality, a second run, the backfill."""

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal as D  # noqa: N817
from typing import Any

import pytest
import time_machine
from django.conf import settings
from django.core.management import call_command
from django.db.models import Sum

from ledger.models import LedgerEntry, LedgerTransaction
from ledger.services import ledger_reverse
from metering.exceptions import SoftCapReached, WorkflowSuspended
from metering.models import UsageDay, UsageRefusalDay
from metering.rollup import usage_rollup_backfill, usage_rollup_update
from metering.rollup_selectors import (
    DayStack,
    RefusalDay,
    UsageRow,
    UsageTotals,
    usage_by_day,
    usage_cost_list,
    usage_refusal_list,
    usage_rollup_as_of,
    usage_table,
    usage_totals,
)
from metering.services import usage_event_record, usage_event_record_batch
from metering.workflows import workflow_start, workflow_step
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import UsageInputFactory, fund

pytestmark = pytest.mark.django_db

JAN14, JAN15 = date(2026, 1, 14), date(2026, 1, 15)


def _record(tenant: Tenant, key: str, action: str, quantity: str = "1", **fields: Any) -> None:
    data = replace(
        UsageInputFactory.build(idempotency_key=key, action=action, quantity=D(quantity)),
        **fields,
    )
    usage_event_record(tenant=tenant, data=data)


def _rows(tenant: Tenant) -> list[tuple[Any, ...]]:
    return list(
        UsageDay.objects.filter(tenant=tenant)
        .order_by("day", "action", "model_class", "workflow")
        .values_list(
            "day",
            "action",
            "model_class",
            "workflow",
            "cogs_currency",
            "events",
            "quantity",
            "credits",
            "credits_refunded",
            "cogs_minor",
            "events_without_cost",
        )
    )


@pytest.fixture
def two_days(tenant: Tenant, frozen_time: time_machine.Traveller) -> Tenant:
    """Jan 14: chat x2 with tokens, turbo web research with tool calls, a doc search with no
    cost components. Jan 15 (now, 12:00): a step of the `triage` run, a chat, and a refund of
    20 of the web research's 60 credits."""
    frozen_time.move_to("2026-01-14 10:00:00+00:00")
    ratecard_seed_example()
    fund(tenant, 1000)
    _record(tenant, "e1", "chat", "2", input_tokens=1000)
    _record(tenant, "e2", "web_research", model_class="turbo", tool_calls=2)
    _record(tenant, "e3", "doc_search")
    frozen_time.move_to("2026-01-15 12:00:00+00:00")
    run, _ = workflow_start(tenant=tenant, external_id="run-1", name="triage")
    step = UsageInputFactory.build(
        idempotency_key="s1", action="doc_search", quantity=D(2), orchestration_runs=1
    )
    workflow_step(tenant=tenant, run=run, data=step)
    _record(tenant, "e5", "chat")
    debit = LedgerTransaction.objects.get(tenant=tenant, idempotency_key="usage:e2")
    ledger_reverse(tenant=tenant, debit=debit, idempotency_key="refund-e2", amount=D(20))
    return tenant


EXPECTED = [
    (JAN14, "chat", "", "", "USD", 1, D("2.0000"), D("2.0000"), D(0), D("0.25"), 0),
    (JAN14, "doc_search", "", "", "USD", 1, D("1.0000"), D("3.0000"), D(0), D(0), 1),
    (JAN14, "web_research", "turbo", "", "USD", 1, D("1.0000"), D("60.0000"), D(0), D(16), 0),
    (JAN15, "chat", "", "", "USD", 1, D("1.0000"), D("1.0000"), D(0), D(0), 1),
    (JAN15, "doc_search", "", "triage", "USD", 1, D("2.0000"), D("6.0000"), D(0), D(10), 0),
    # The refund: its credits come off on its own day, the event stays counted on its day.
    (JAN15, "web_research", "turbo", "", "USD", 0, D(0), D("-20.0000"), D(20), D(0), 0),
]


def test_the_rollup_holds_exact_figures_per_day_action_model_class_and_workflow(
    two_days: Tenant,
) -> None:
    moved = usage_rollup_update()

    assert moved["usage_events"]
    assert moved["usage_refunds"]
    assert _rows(two_days) == EXPECTED
    assert usage_rollup_as_of() == datetime(2026, 1, 15, 12, tzinfo=UTC)


def test_a_second_run_counts_nothing_twice(two_days: Tenant) -> None:
    usage_rollup_update()

    assert usage_rollup_update() == {"usage_events": 0, "usage_refunds": 0}
    assert _rows(two_days) == EXPECTED


def test_events_and_refunds_after_a_run_are_added_to_their_days(two_days: Tenant) -> None:
    usage_rollup_update()
    _record(two_days, "e6", "chat", "3")
    debit = LedgerTransaction.objects.get(tenant=two_days, idempotency_key="usage:e1")
    ledger_reverse(tenant=two_days, debit=debit, idempotency_key="refund-e1")

    usage_rollup_update()

    chat_today = UsageDay.objects.get(tenant=two_days, day=JAN15, action="chat")
    assert (chat_today.events, chat_today.credits, chat_today.credits_refunded) == (
        2,
        D("2.0000"),  # 1 + 3 - the 2 of e1, refunded today
        D("2.0000"),
    )


def _statement_net_debits(tenant: Tenant, since: datetime, until: datetime) -> D:
    """What the statement says was spent on usage: its debit entries less its reversals."""
    total = LedgerEntry.objects.filter(
        tenant=tenant,
        kind__in=["debit", "reversal"],
        transaction__source_type="usage_event",
        created_at__gte=since,
        created_at__lt=until,
    ).aggregate(total=Sum("amount"))["total"]
    return -total


@pytest.mark.parametrize(
    ("since", "until"), [(JAN14, JAN14), (JAN15, JAN15), (JAN14, JAN15), (date(2026, 1, 1), JAN15)]
)
def test_a_ranges_credits_equal_the_statements_net_debits(
    two_days: Tenant, since: date, until: date
) -> None:
    usage_rollup_update()

    statement = _statement_net_debits(
        two_days,
        datetime.combine(since, datetime.min.time(), tzinfo=UTC),
        datetime.combine(until, datetime.max.time(), tzinfo=UTC),
    )
    totals = usage_totals(tenant=two_days, since=since, until=until)
    assert abs(totals.credits - statement) < D("0.0001")
    chart = usage_by_day(tenant=two_days, since=since, until=until, stack="action")
    assert sum((bar.credits for bar in chart), D(0)) == totals.credits
    table = usage_table(tenant=two_days, since=since, until=until)
    assert sum((row.credits for row in table), D(0)) == totals.credits


def test_the_portals_selectors(two_days: Tenant) -> None:
    usage_rollup_update()

    assert usage_by_day(tenant=two_days, since=JAN14, until=JAN15, stack="model_class") == [
        DayStack(JAN14, "", D("5.0000")),
        DayStack(JAN14, "turbo", D("60.0000")),
        DayStack(JAN15, "", D("7.0000")),
        DayStack(JAN15, "turbo", D("-20.0000")),
    ]
    assert usage_table(tenant=two_days, since=JAN14, until=JAN15, group_by=("workflow",)) == [
        UsageRow({"workflow": ""}, 4, D("5.0000"), D("46.0000"), D("20.0000")),
        UsageRow({"workflow": "triage"}, 1, D("2.0000"), D("6.0000"), D("0.0000")),
    ]
    assert usage_totals(tenant=two_days, since=JAN14, until=JAN15) == UsageTotals(
        events=5, quantity=D("7.0000"), credits=D("52.0000"), credits_refunded=D("20.0000")
    )
    assert usage_totals(tenant=two_days, since=date(2026, 2, 1), until=date(2026, 2, 2)) == (
        UsageTotals(events=0, quantity=D(0), credits=D(0), credits_refunded=D(0))
    )


def test_the_consoles_cost_list_counts_events_without_cost(two_days: Tenant) -> None:
    usage_rollup_update()

    rows = usage_cost_list(since=JAN14, until=JAN15, group_by=("day",))

    assert [(r.key, r.currency, r.events, r.events_without_cost, r.cogs_minor) for r in rows] == [
        ({"day": JAN14}, "USD", 3, 1, D("16.25")),
        ({"day": JAN15}, "USD", 2, 1, D(10)),
    ]


def test_the_backfill_equals_the_incremental_job(two_days: Tenant) -> None:
    usage_rollup_update()
    built = _rows(two_days)

    assert usage_rollup_backfill() == len(EXPECTED)
    assert _rows(two_days) == built
    assert usage_rollup_backfill(chunk=1) == len(EXPECTED)
    assert _rows(two_days) == built
    # and the job goes on from there without counting anything again
    assert usage_rollup_update() == {"usage_events": 0, "usage_refunds": 0}
    assert _rows(two_days) == EXPECTED


def test_the_backfill_command_builds_the_rollup_for_existing_events(two_days: Tenant) -> None:
    call_command("usage_rollup_backfill")

    assert _rows(two_days) == EXPECTED
    assert usage_rollup_update() == {"usage_events": 0, "usage_refunds": 0}


def test_nothing_of_another_tenant(two_days: Tenant, other_tenant: Tenant) -> None:
    usage_rollup_update()

    assert usage_totals(tenant=other_tenant, since=JAN14, until=JAN15).events == 0
    assert usage_table(tenant=other_tenant, since=JAN14, until=JAN15) == []


# ---------------------------------------------------------------------------------------------
# Refusals


def test_refusals_are_counted_per_day_and_reason_after_the_refused_request(
    tenant: Tenant,
    frozen_time: time_machine.Traveller,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ratecard_seed_example()
    fund(tenant, 12)

    with django_capture_on_commit_callbacks(execute=True):
        _record(tenant, "ok", "web_research")  # 10 of 12, then 1: not refusals
        _record(tenant, "ok-too", "chat")
        with pytest.raises(Exception, match="cannot cover"):
            _record(tenant, "too-much", "web_research")
        usage_event_record_batch(
            tenant=tenant,
            items=[
                UsageInputFactory.build(idempotency_key=f"b{i}", action="web_research")
                for i in range(3)
            ],
        )
        with pytest.raises(SoftCapReached):
            workflow_start(tenant=tenant, external_id="run-1")

    assert usage_refusal_list(tenant=tenant, since=JAN15, until=JAN15) == [
        RefusalDay(JAN15, "insufficient_credits", 4),  # the single event and the batch's three
        RefusalDay(JAN15, "soft_cap_reached", 1),
    ]
    assert UsageRefusalDay.objects.filter(tenant=tenant).count() == 2


def test_a_successful_request_writes_no_refusal(
    tenant: Tenant,
    frozen_time: time_machine.Traveller,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ratecard_seed_example()
    fund(tenant, 100)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        _record(tenant, "ok", "chat")

    assert UsageRefusalDay.objects.count() == 0
    assert [c for c in callbacks if c.__qualname__.startswith("usage_refusal_count")] == []


def test_the_job_runs_every_30_seconds() -> None:
    assert settings.CELERY_BEAT_SCHEDULE["metering.usage_rollup_update"] == {
        "task": "metering.usage_rollup_update",
        "schedule": 30.0,
    }


def test_a_step_that_suspends_its_run_is_counted_once_its_suspension_commits(
    tenant: Tenant,
    frozen_time: time_machine.Traveller,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ratecard_seed_example()
    fund(tenant, 12)
    run, _ = workflow_start(tenant=tenant, external_id="run-1", name="triage")
    too_much = UsageInputFactory.build(idempotency_key="s1", action="action_execution")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(WorkflowSuspended):
        workflow_step(tenant=tenant, run=run, data=too_much)

    assert usage_refusal_list(tenant=tenant, since=JAN15, until=JAN15) == [
        RefusalDay(JAN15, "insufficient_credits", 1)
    ]
