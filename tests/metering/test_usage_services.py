"""usage_event_record / _batch and the margin selectors, against the real database."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ledger.models import CreditBucket
from ledger.selectors import available_get
from ledger.services import ledger_hold_place
from metering.models import UsageEvent, WorkflowRun
from metering.selectors import margin_by_tenant, margin_summary
from metering.services import (
    usage_event_record,
    usage_event_record_batch,
    usage_request_hash,
)
from metering.usage.pricing import step_lookup
from ratecards.models import RateCard
from ratecards.services import ratecard_seed_example
from tenants.models import Tenant
from tests.metering.factories import UsageInputFactory, fund

pytestmark = pytest.mark.django_db


@pytest.fixture
def card(frozen_time: time_machine.Traveller) -> RateCard:
    return ratecard_seed_example()


def test_the_request_hash_ignores_spelling_but_not_meaning() -> None:
    at = datetime(2026, 1, 15, 12, tzinfo=UTC)
    base = UsageInputFactory.build(quantity=Decimal("2"), occurred_at=at)
    same = UsageInputFactory.build(
        idempotency_key=base.idempotency_key,
        quantity=Decimal("2.0000"),
        occurred_at=at.astimezone(timezone.get_fixed_timezone(120)),
    )
    other = UsageInputFactory.build(quantity=Decimal("3"), occurred_at=at)

    assert usage_request_hash(data=base) == usage_request_hash(data=same)
    assert usage_request_hash(data=base) != usage_request_hash(data=other)
    assert usage_request_hash(data=base) != usage_request_hash(data=base, step_index=1)


def test_step_lookup_asks_once_per_step_boundary_not_per_time() -> None:
    times = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i) for i in range(1000)]
    asked: list[datetime] = []

    def version(at: datetime) -> int:
        asked.append(at)
        return 1 if at < times[400] else 2

    found = step_lookup(times, version)

    assert [found[t] for t in times] == [1] * 400 + [2] * 600
    assert len(asked) <= 25  # ~2 log2(1000), not 1000


def test_a_step_is_paid_from_its_hold_and_tagged_with_its_run(
    tenant: Tenant, card: RateCard
) -> None:
    fund(tenant, 100)
    hold = ledger_hold_place(tenant=tenant, amount=30, reference="run-1")
    run = WorkflowRun.objects.create(
        tenant=tenant, external_id="r1", hold=hold, last_activity_at=timezone.now()
    )
    data = UsageInputFactory.build(action="web_research")

    result = usage_event_record(tenant=tenant, data=data, hold=hold, workflow_run=run, step_index=1)

    event = UsageEvent.objects.get(pk=result.event.pk)
    assert (event.workflow_run, event.step_index, event.credits) == (run, 1, Decimal("10.0000"))
    assert event.ledger_transaction is not None
    assert event.ledger_transaction.from_hold == Decimal("10.0000")
    hold.refresh_from_db()
    assert hold.remaining == Decimal("20.0000")
    assert available_get(tenant=tenant) == Decimal(
        "70.0000"
    )  # 100 - 30 held; the step used the hold
    again = usage_event_record(tenant=tenant, data=data, hold=hold, workflow_run=run, step_index=1)
    assert (again.replayed, again.event.pk) == (True, event.pk)


def test_a_batch_of_1000_takes_a_fixed_number_of_queries(tenant: Tenant, card: RateCard) -> None:
    fund(tenant, 100_000)
    # Every event at the frozen now: the card took effect at that very moment.
    items = [
        UsageInputFactory.build(
            action=("chat", "doc_search")[i % 2], quantity=Decimal(1), input_tokens=i
        )
        for i in range(1000)
    ]

    with CaptureQueriesContext(connection) as queries:
        results = usage_event_record_batch(tenant=tenant, items=items)

    assert [r.status for r in results] == [201] * 1000
    # With cold caches: the key lookup, the stamp, pricing and cost catalogs, and metering's
    # one statement (the ledger's debit, its outbox row and the inserts), in a savepoint of
    # the test's own transaction. The credits are free, so the events earned nothing: the
    # first statement asks for the tenant's currency (nothing written), which is read, and the
    # statement runs again. A fixed number, not one per event.
    assert len(queries) <= 18, "\n".join(q["sql"][:80] for q in queries)
    assert available_get(tenant=tenant) == Decimal(100_000 - 500 * 1 - 500 * 3)


def _record(tenant: Tenant, key: str, action: str, *, at: datetime, **fields: object) -> UsageEvent:
    data = UsageInputFactory.build(idempotency_key=key, action=action, occurred_at=at, **fields)
    return UsageEvent.objects.get(pk=usage_event_record(tenant=tenant, data=data).event.pk)


def test_margin_by_action_and_day(
    tenant: Tenant, other_tenant: Tenant, card: RateCard, frozen_time: time_machine.Traveller
) -> None:
    # Given 1,000 credits bought for $10 (1 cent a credit) and a day of usage on two days.
    fund(tenant, 1000, price_minor=1000)
    fund(other_tenant, 1000, price_minor=2000)
    day1 = timezone.now()
    frozen_time.shift(timedelta(days=1))
    day2 = timezone.now()
    _record(tenant, "a", "chat", at=day1, input_tokens=400_000)  # 1 cr, COGS 100 c
    _record(tenant, "b", "web_research", at=day1, tool_calls=1)  # 10 cr, COGS 8 c
    _record(tenant, "c", "chat", at=day2, output_tokens=10_000)  # 1 cr, COGS 15 c
    _record(other_tenant, "a", "chat", at=day2)  # 1 cr at 2 c a credit, no COGS

    by_action = margin_summary(tenant=tenant, group_by="action")
    by_day = margin_summary(tenant=tenant, group_by="day")

    assert [
        (r.key, r.events, r.credits, r.cogs_minor, r.revenue_minor, r.margin_minor)
        for r in by_action
    ] == [
        ("chat", 2, Decimal("2.0000"), Decimal("115"), Decimal("2"), Decimal("-113")),
        ("web_research", 1, Decimal("10.0000"), Decimal("8"), Decimal("10"), Decimal("2")),
    ]
    assert [(r.key, r.credits, r.cogs_minor, r.revenue_minor) for r in by_day] == [
        (date(2026, 1, 15), Decimal("11.0000"), Decimal("108"), Decimal("11")),
        (date(2026, 1, 16), Decimal("1.0000"), Decimal("15"), Decimal("1")),
    ]
    day2_only = margin_summary(tenant=tenant, group_by="action", since=day2)
    assert [(r.key, r.events) for r in day2_only] == [("chat", 1)]
    assert [(r.key, r.revenue_minor) for r in margin_by_tenant()] == [
        (tenant.pk, Decimal("12")),
        (other_tenant.pk, Decimal("2")),
    ]
    with pytest.raises(ValueError, match="group_by must be one of"):
        margin_summary(tenant=tenant, group_by="week")


def test_margin_by_workflow_and_event(tenant: Tenant, card: RateCard) -> None:
    fund(tenant, 100, policy=CreditBucket.Policy.PERMANENT)
    run = WorkflowRun.objects.create(
        tenant=tenant, external_id="r", last_activity_at=timezone.now()
    )
    data = UsageInputFactory.build(idempotency_key="s1", tool_calls=2)
    step = usage_event_record(tenant=tenant, data=data, workflow_run=run, step_index=1).event
    loose = _record(tenant, "x", "chat", at=timezone.now())

    by_run = margin_summary(tenant=tenant, group_by="workflow")
    by_event = margin_summary(tenant=tenant, group_by="event")

    assert [(r.key, r.events, r.cogs_minor) for r in by_run] == [
        (run.pk, 1, Decimal("16")),
        (None, 1, Decimal("0")),
    ]
    assert [r.key for r in by_event] == [step.pk, loose.pk]
