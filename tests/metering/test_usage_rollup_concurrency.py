"""The rollup's watermark never passes an event whose transaction commits after a later one:
real threads, real commits, real PostgreSQL."""

import threading
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.db import connection, transaction

from metering.models import UsageDay, UsageEvent
from metering.rollup import usage_rollup_update
from metering.services import usage_event_record
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.events import balance_changed, domain_event, receivers_replaced
from tenants.models import Tenant
from tenants.tailing import tail_drain, tail_observe
from tests.metering.factories import UsageInputFactory, fund

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _quiet() -> Iterator[None]:
    price_cache_clear()
    # Commits are real here: keep billing's receivers (and their outbox tasks) out of it.
    with receivers_replaced(balance_changed), receivers_replaced(domain_event):
        yield
    price_cache_clear()


def _record(tenant: Tenant, key: str) -> int:
    data = UsageInputFactory.build(idempotency_key=key, action="chat", quantity=Decimal(1))
    return usage_event_record(tenant=tenant, data=data).event.pk


def _job_once() -> None:
    try:
        usage_rollup_update()
    finally:
        connection.close()


def _counted(tenant: Tenant) -> list[tuple[int, Decimal]]:
    return list(UsageDay.objects.filter(tenant=tenant).values_list("events", "credits"))


def test_an_earlier_id_committed_after_a_later_one_is_counted_exactly_once(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    ratecard_seed_example()
    fund(tenant, 100)
    fund(other_tenant, 100)
    inserted, release = threading.Event(), threading.Event()
    late: dict[str, int] = {}

    def slow_writer() -> None:
        try:
            with transaction.atomic():
                late["id"] = _record(tenant, "late")
                inserted.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    writer = threading.Thread(target=slow_writer)
    writer.start()
    try:
        assert inserted.wait(timeout=20)
        # Given a later id committed while the earlier one is still in flight
        early_id = _record(other_tenant, "early")
        assert late["id"] < early_id
        assert UsageEvent.objects.filter(pk=late["id"]).exists() is False  # not visible yet

        # When the job runs now, it waits for the writer it saw and, past its timeout, moves
        # nothing (a watermark at the highest visible id would have passed the late event)
        assert usage_rollup_update(timeout=0.3)["usage_events"] is None
        assert _counted(other_tenant) == []

        # and a run that is still waiting when the writer commits counts both
        results: dict[str, int | None] = {}

        def job() -> None:
            try:
                results.update(usage_rollup_update(timeout=20))
            finally:
                connection.close()

        runner = threading.Thread(target=job)
        runner.start()
        runner.join(timeout=0.5)
        assert runner.is_alive()  # waiting for the writer
        release.set()
        runner.join(timeout=30)
        writer.join(timeout=30)
    finally:
        release.set()
        writer.join(timeout=30)

    assert results["usage_events"] is not None
    assert results["usage_events"] >= 2
    assert _counted(tenant) == [(1, Decimal("1.0000"))]
    assert _counted(other_tenant) == [(1, Decimal("1.0000"))]
    # Then again, and with two copies at once: nothing twice
    twins = [threading.Thread(target=_job_once) for _ in range(2)]
    for twin in twins:
        twin.start()
    usage_rollup_update()
    for twin in twins:
        twin.join(timeout=30)
    assert _counted(tenant) == [(1, Decimal("1.0000"))]
    assert _counted(other_tenant) == [(1, Decimal("1.0000"))]


def test_two_jobs_at_once_over_fresh_events_count_each_once(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    ratecard_seed_example()
    fund(tenant, 1000)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        try:
            for i in range(60):
                written.append(_record(tenant, f"w{i}"))
        finally:
            stop.set()
            connection.close()

    def job() -> None:
        try:
            while not stop.is_set():
                usage_rollup_update(timeout=5)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=job) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    usage_rollup_update()

    assert len(written) == 60
    assert _counted(tenant) == [(60, Decimal("60.0000"))]


def test_a_transaction_that_has_only_drawn_an_id_is_waited_for(tenant: Tenant) -> None:
    """As the debit's SQL does: ids drawn in a statement before the INSERT that locks the
    table. The job waits for such a transaction as for one that has inserted."""
    drawn, release = threading.Event(), threading.Event()

    def drawer() -> None:
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence('metering_usageevent', 'id'))"
                )
                drawn.set()
                release.wait(timeout=20)
        finally:
            connection.close()

    thread = threading.Thread(target=drawer)
    thread.start()
    try:
        assert drawn.wait(timeout=20)
        seen = tail_observe(table="metering_usageevent")
        assert len(seen.writers) == 1
        assert tail_drain(table="metering_usageevent", writers=seen.writers, timeout=0.2) is False
        release.set()
        thread.join(timeout=30)
        assert tail_drain(table="metering_usageevent", writers=seen.writers, timeout=5) is True
    finally:
        release.set()
        thread.join(timeout=30)
