"""Workflow runs under real concurrency: threads, each with its own PostgreSQL connection."""

import threading
from collections.abc import Callable, Iterator
from decimal import Decimal

import pytest
from django.db import connection

from ledger.exceptions import InsufficientCredits
from ledger.models import CreditBucket, LedgerEntry
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_grant
from metering.exceptions import WorkflowSuspended
from metering.listeners import on_balance_changed
from metering.models import UsageEvent, WorkflowRun
from metering.services import UsageInput, usage_event_record
from metering.workflows import workflow_cancel, workflow_start, workflow_step
from ratecards.selectors import price_cache_clear
from ratecards.services import ratecard_seed_example
from tenants.events import balance_changed, domain_event, receivers_replaced
from tenants.models import Tenant

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _card() -> Iterator[None]:
    price_cache_clear()
    ratecard_seed_example()  # web_research: 10 credits
    with (
        receivers_replaced(domain_event),
        receivers_replaced(balance_changed, on_balance_changed),
    ):
        yield
    price_cache_clear()


def grant(tenant: Tenant, credits: int) -> None:
    ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=CreditBucket.Policy.PERMANENT,
        source=CreditBucket.Source.TOPUP,
        external_reference=f"pack-{credits}",
    )


def research(key: str) -> UsageInput:
    return UsageInput(idempotency_key=key, action="web_research", quantity=Decimal(1))


def run_threads(*targets: Callable[[], None]) -> list[BaseException]:
    errors: list[BaseException] = []

    def wrap(target: Callable[[], None]) -> Callable[[], None]:
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # surfaced by the test below
                errors.append(exc)
            finally:
                connection.close()

        return body

    threads = [threading.Thread(target=wrap(t)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return errors


def test_a_reservation_is_never_lost_to_concurrent_spending(tenant: Tenant) -> None:
    # Given 300 credits and a run that reserves 100 of them.
    grant(tenant, 300)
    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("100"))
    start = threading.Barrier(7)
    spent: list[str] = []

    def spender(n: int) -> Callable[[], None]:
        def spend() -> None:
            start.wait()
            for i in range(40):
                try:
                    usage_event_record(tenant=tenant, data=research(f"other-{n}-{i}"))
                except InsufficientCredits:
                    return
                spent.append(f"other-{n}-{i}")

        return spend

    def steps() -> None:
        start.wait()
        for i in range(7):
            workflow_step(tenant=tenant, run=run, data=research(f"step-{i}"))

    # When six other requests spend as fast as they can while the run takes 7 steps.
    errors = run_threads(steps, *(spender(n) for n in range(6)))

    # Then every step was paid (from the hold), the others got exactly the unreserved 200.
    assert errors == []
    run.refresh_from_db()
    assert (run.state, run.steps_charged, run.credits_charged) == ("running", 7, Decimal("70"))
    assert len(spent) == 20
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("0"), Decimal("30"))

    # Cancel gives back exactly what is left of the hold.
    workflow_cancel(tenant=tenant, run=run)
    release = LedgerEntry.objects.get(tenant=tenant, kind="release")
    assert release.amount == Decimal("30")
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("30"), Decimal("0"))
    assert ledger_verify() == []


def test_two_runs_racing_for_the_last_credits(tenant: Tenant) -> None:
    # Given 15 credits: one 10-credit step fits, two do not.
    grant(tenant, 15)
    one, _ = workflow_start(tenant=tenant, external_id="one")
    two, _ = workflow_start(tenant=tenant, external_id="two")
    start = threading.Barrier(2)
    suspended: list[int] = []

    def take_step(run: WorkflowRun) -> Callable[[], None]:
        def body() -> None:
            start.wait()
            try:
                workflow_step(tenant=tenant, run=run, data=research(f"{run.external_id}-1"))
            except WorkflowSuspended as exc:
                suspended.append(exc.details["workflow_id"])

        return body

    errors = run_threads(take_step(one), take_step(two))

    assert errors == []
    assert len(suspended) == 1
    states = dict(WorkflowRun.objects.filter(tenant=tenant).values_list("pk", "state"))
    loser = suspended[0]
    winner = one.pk if loser == two.pk else two.pk
    assert states == {winner: "running", loser: "suspended"}
    assert UsageEvent.objects.filter(tenant=tenant).count() == 1
    assert balance_get(tenant=tenant).available == Decimal("5")
    assert ledger_verify() == []


def test_many_runs_racing_never_overspend(tenant: Tenant) -> None:
    # Given 95 credits and 6 runs of 5 steps each (300 credits wanted): 9 steps fit.
    grant(tenant, 95)
    runs = [workflow_start(tenant=tenant, external_id=f"run-{n}")[0] for n in range(6)]
    start = threading.Barrier(len(runs))

    def drive(run: WorkflowRun) -> Callable[[], None]:
        def body() -> None:
            start.wait()
            for i in range(5):
                try:
                    workflow_step(tenant=tenant, run=run, data=research(f"{run.external_id}-{i}"))
                except WorkflowSuspended:
                    return

        return body

    errors = run_threads(*(drive(run) for run in runs))

    assert errors == []
    assert UsageEvent.objects.filter(tenant=tenant).count() == 9
    assert balance_get(tenant=tenant).available == Decimal("5")
    runs_now = list(WorkflowRun.objects.filter(tenant=tenant))
    assert sum(r.steps_charged for r in runs_now) == 9
    assert sum(r.credits_charged for r in runs_now) == Decimal("90")
    # Every run that was refused a step is suspended at it; the others ran all 5 steps.
    for r in runs_now:
        assert r.state == ("running" if r.steps_charged == 5 else "suspended")
    assert ledger_verify() == []
