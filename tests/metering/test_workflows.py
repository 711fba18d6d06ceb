"""Workflow runs through their services: start, soft cap, reservation, endings, the idle sweep."""

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.utils import timezone

from ledger.exceptions import InsufficientCredits
from ledger.models import CreditBucket, CreditHold, LedgerEntry
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_debit, ledger_grant
from metering.exceptions import (
    IdempotencyConflict,
    IllegalTransition,
    SoftCapReached,
    WorkflowSuspended,
)
from metering.listeners import on_balance_changed
from metering.models import UsageEvent, WorkflowRun
from metering.services import UsageInput
from metering.soft_cap import workflow_settings_update
from metering.tasks import workflow_expire_idle_task
from metering.workflows import (
    workflow_cancel,
    workflow_complete,
    workflow_expire_idle,
    workflow_fail,
    workflow_mark_resumable,
    workflow_start,
    workflow_step,
)
from ratecards.models import RateCard
from ratecards.services import ratecard_seed_example
from tenants.events import DomainEvent, balance_changed, domain_event, receivers_replaced
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
State = WorkflowRun.State

# Events captured by the test listener below (the settings fixture names it).
CAPTURED: list[DomainEvent] = []


def capture_event(event: DomainEvent, **_: Any) -> None:
    CAPTURED.append(event)


@pytest.fixture
def events() -> Iterator[list[DomainEvent]]:
    CAPTURED.clear()
    with (
        receivers_replaced(domain_event, capture_event),
        receivers_replaced(balance_changed, on_balance_changed),
    ):
        yield CAPTURED
    CAPTURED.clear()


@pytest.fixture
def card(db: None) -> RateCard:
    """The example card (chat 1, doc_search 3, web_research 10, action_execution 15 credits)
    and the example cost catalog."""
    return ratecard_seed_example()


def grant(tenant: Tenant, credits: str | int, ref: str, price_minor: int = 0) -> None:
    ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference=ref,
        price_minor=price_minor,
    )


# ---------------------------------------------------------------------------------------------
# Start


def test_start_is_idempotent_on_external_id(tenant: Tenant) -> None:
    grant(tenant, 100, "g1")

    run, created = workflow_start(tenant=tenant, external_id="job-1", name="Refund agent")
    again, created_again = workflow_start(tenant=tenant, external_id="job-1", name="Refund agent")

    assert created
    assert not created_again
    assert again.pk == run.pk
    assert run.state == State.RUNNING
    assert run.last_activity_at is not None
    assert WorkflowRun.objects.filter(tenant=tenant).count() == 1


def test_start_with_another_reservation_for_the_same_external_id_conflicts(tenant: Tenant) -> None:
    grant(tenant, 100, "g1")
    workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("10"))

    with pytest.raises(IdempotencyConflict) as conflict:
        workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("20"))

    assert conflict.value.details == {"external_id": "job-1"}


def test_soft_cap_refuses_a_start_and_a_top_up_lifts_it(tenant: Tenant) -> None:
    # Given 100 credits granted, the default soft cap is the lowest alert threshold (10%): 10.
    grant(tenant, 100, "g1")
    ledger_debit(tenant=tenant, amount=Decimal("91"), idempotency_key="spend-1")

    with pytest.raises(SoftCapReached) as refused:
        workflow_start(tenant=tenant, external_id="job-1")

    assert refused.value.status_code == 402
    assert refused.value.details == {"available": "9.0000", "soft_cap": "10.0000"}
    assert not WorkflowRun.objects.filter(tenant=tenant).exists()

    # A top-up of 100: topped up to 109 (cap 10.9), available 109.
    grant(tenant, 100, "g2")
    run, created = workflow_start(tenant=tenant, external_id="job-1")
    assert created
    assert run.state == State.RUNNING


def test_an_explicit_soft_cap_wins_over_the_default(tenant: Tenant) -> None:
    grant(tenant, 100, "g1")
    workflow_settings_update(tenant=tenant, soft_cap=Decimal("150"))

    with pytest.raises(SoftCapReached) as refused:
        workflow_start(tenant=tenant, external_id="job-1")

    assert refused.value.details == {"available": "100.0000", "soft_cap": "150.0000"}


def test_an_empty_tenant_cannot_start_a_run(tenant: Tenant) -> None:
    # Given no grant at all: the default soft cap is 10% of nothing, 0.
    with pytest.raises(SoftCapReached) as refused:
        workflow_start(tenant=tenant, external_id="job-1")

    assert refused.value.status_code == 402
    assert refused.value.code == "soft_cap_reached"
    assert refused.value.details == {"available": "0.0000", "soft_cap": "0.0000"}
    assert not WorkflowRun.objects.filter(tenant=tenant).exists()

    grant(tenant, 1, "g1")
    run, created = workflow_start(tenant=tenant, external_id="job-1")
    assert (created, run.state) == (True, State.RUNNING)


def test_a_spent_out_tenant_cannot_start_a_run_even_with_a_cap_of_zero(tenant: Tenant) -> None:
    # Given 100 granted and all spent, with the soft cap switched off (0).
    grant(tenant, 100, "g1")
    ledger_debit(tenant=tenant, amount=Decimal("100"), idempotency_key="spend-1")
    workflow_settings_update(tenant=tenant, soft_cap=Decimal("0"))

    with pytest.raises(SoftCapReached) as refused:
        workflow_start(tenant=tenant, external_id="job-1")

    assert refused.value.details == {"available": "0.0000", "soft_cap": "0.0000"}


def test_a_reservation_is_a_hold_on_the_balance(tenant: Tenant) -> None:
    grant(tenant, 300, "g1")

    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("100"))

    assert run.reserved_credits == Decimal("100")
    assert run.hold is not None
    assert (run.hold.reference, run.hold.amount, run.hold.remaining) == (
        f"workflow:{run.pk}",
        Decimal("100"),
        Decimal("100"),
    )
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("200"), Decimal("100"))


def test_a_reservation_the_balance_cannot_hold_starts_nothing(tenant: Tenant) -> None:
    grant(tenant, 50, "g1")

    with pytest.raises(InsufficientCredits) as refused:
        workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("100"))

    assert refused.value.details == {"required": "100.0000", "available": "50.0000"}
    assert not WorkflowRun.objects.filter(tenant=tenant).exists()
    assert not CreditHold.objects.filter(tenant=tenant).exists()


# ---------------------------------------------------------------------------------------------
# Endings


def test_cancel_releases_what_is_left_of_the_hold_exactly(tenant: Tenant) -> None:
    grant(tenant, 300, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("100"))
    ledger_debit(tenant=tenant, amount=Decimal("30.5"), idempotency_key="s1", hold=run.hold)

    ended = workflow_cancel(tenant=tenant, run=run)

    assert ended.state == State.CANCELLED
    assert ended.ended_at is not None
    release = LedgerEntry.objects.get(tenant=tenant, kind="release")
    assert release.amount == Decimal("69.5")
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("269.5"), Decimal("0"))
    assert ledger_verify(tenant=tenant) == []


def test_complete_releases_the_hold_and_a_retry_changes_nothing(tenant: Tenant) -> None:
    grant(tenant, 300, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("100"))

    workflow_complete(tenant=tenant, run=run)
    again = workflow_complete(tenant=tenant, run=run)

    assert again.state == State.COMPLETED
    assert LedgerEntry.objects.filter(tenant=tenant, kind="release").count() == 1
    assert balance_get(tenant=tenant).available == Decimal("300")


@pytest.mark.parametrize(
    ("first", "then", "message"),
    [
        (workflow_cancel, workflow_complete, "A cancelled workflow run cannot become completed."),
        (workflow_complete, workflow_cancel, "A completed workflow run cannot become cancelled."),
        (workflow_fail, workflow_complete, "A failed workflow run cannot become completed."),
        (workflow_complete, workflow_fail, "A completed workflow run cannot become failed."),
    ],
)
def test_illegal_endings_are_refused_with_the_state(tenant: Tenant, first, then, message) -> None:
    grant(tenant, 100, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1")
    first(tenant=tenant, run=run)
    state = WorkflowRun.objects.get(pk=run.pk).state

    with pytest.raises(IllegalTransition) as refused:
        then(tenant=tenant, run=run)

    assert refused.value.status_code == 409
    assert refused.value.message == message
    assert refused.value.details == {"state": state, "workflow_id": run.pk}


# ---------------------------------------------------------------------------------------------
# The idle sweep


def test_the_sweep_expires_an_abandoned_run_and_releases_its_hold(
    tenant: Tenant,
    settings,
) -> None:
    settings.CREDITLINE_WORKFLOW_TTL_MINUTES = 30
    grant(tenant, 300, "g1")
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        abandoned, _ = workflow_start(
            tenant=tenant, external_id="abandoned", reserve_credits=Decimal("100")
        )
        clock.shift(timedelta(minutes=20))
        fresh, _ = workflow_start(tenant=tenant, external_id="fresh", reserve_credits=Decimal("50"))

        clock.shift(timedelta(minutes=10))  # abandoned: idle 30 min, not yet *longer* than TTL
        assert workflow_expire_idle() == 0

        clock.shift(timedelta(seconds=1))
        assert workflow_expire_idle() == 1
        assert workflow_expire_idle() == 0  # a second run of the sweep finds nothing

        abandoned.refresh_from_db()
        fresh.refresh_from_db()
        assert (abandoned.state, abandoned.suspension_reason) == (State.FAILED, "expired")
        assert abandoned.ended_at == timezone.now()
        assert fresh.state == State.RUNNING
        balance = balance_get(tenant=tenant)
        assert (balance.available, balance.reserved) == (Decimal("250"), Decimal("50"))
        assert ledger_verify(tenant=tenant) == []


def test_the_ttl_is_read_at_call_time(tenant: Tenant, settings) -> None:
    grant(tenant, 100, "g1")
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        _run, _ = workflow_start(tenant=tenant, external_id="job-1")
        clock.shift(timedelta(minutes=61))
        settings.CREDITLINE_WORKFLOW_TTL_MINUTES = 120
        assert workflow_expire_idle() == 0
        del settings.CREDITLINE_WORKFLOW_TTL_MINUTES  # the default: 60 minutes
        assert workflow_expire_idle() == 1


# The example card is published at the real now: steps are priced from then on.
AFTER_THE_CARD = timezone.now() + timedelta(days=1)


def suspended_with_hold(tenant: Tenant) -> WorkflowRun:
    """A run reserving 15 of 30 credits, suspended at step s2 with 5 still on its hold: step s1
    (10) came from the hold, someone else spent the other 15, and s2 (10) found 5 + 0."""
    grant(tenant, 30, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("15"))
    workflow_step(tenant=tenant, run=run, data=step("s1"))
    ledger_debit(tenant=tenant, amount=Decimal("15"), idempotency_key="elsewhere")
    with pytest.raises(WorkflowSuspended):
        workflow_step(tenant=tenant, run=run, data=step("s2"))
    run.refresh_from_db()
    assert run.state == State.SUSPENDED
    return run


def test_the_sweep_never_fails_a_suspended_run_but_releases_its_hold(
    tenant: Tenant, card: RateCard
) -> None:
    with time_machine.travel(AFTER_THE_CARD, tick=False) as clock:
        run = suspended_with_hold(tenant)
        assert balance_get(tenant=tenant).reserved == Decimal("5")

        clock.shift(timedelta(minutes=60))  # idle exactly the TTL: nothing yet
        assert workflow_expire_idle() == 0
        clock.shift(timedelta(seconds=1))
        assert workflow_expire_idle() == 1  # the hold released, the run left suspended
        assert workflow_expire_idle() == 0

        run.refresh_from_db()
        assert (run.state, run.suspension_reason, run.suspended_at_step) == (
            State.SUSPENDED,
            "insufficient_credits",
            "s2",
        )
        assert run.ended_at is None
        assert run.hold is not None
        assert run.hold.status == CreditHold.Status.RELEASED
        balance = balance_get(tenant=tenant)
        assert (balance.available, balance.reserved) == (Decimal("5"), Decimal("0"))

        # Days later a top-up arrives: the run resumes at s2, paid from the balance.
        clock.shift(timedelta(days=3))
        assert workflow_expire_idle() == 0
        grant(tenant, 10, "g2")
        resumed = workflow_step(tenant=tenant, run=run, data=step("s2"))

    assert (resumed.replayed, resumed.event.step_index, resumed.event.credits) == (
        False,
        2,
        Decimal("10"),
    )
    assert (resumed.run.state, resumed.run.steps_charged) == (State.RUNNING, 2)
    assert resumed.run.credits_charged == Decimal("20")
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("5"), Decimal("0"))
    assert ledger_verify(tenant=tenant) == []


def test_the_sweep_leaves_a_suspended_run_without_a_hold_alone(
    tenant: Tenant, card: RateCard
) -> None:
    grant(tenant, 5, "g1")
    with time_machine.travel(AFTER_THE_CARD, tick=False) as clock:
        run, _ = workflow_start(tenant=tenant, external_id="job-1")
        with pytest.raises(WorkflowSuspended):
            workflow_step(tenant=tenant, run=run, data=step("s1"))

        clock.shift(timedelta(hours=5))
        assert workflow_expire_idle() == 0

        grant(tenant, 10, "g2")
        resumed = workflow_step(tenant=tenant, run=run, data=step("s1"))

    assert resumed.run.state == State.RUNNING
    assert balance_get(tenant=tenant).available == Decimal("5")


def test_the_sweep_releasing_a_suspended_runs_hold_does_not_wake_that_run(
    tenant: Tenant, card: RateCard, events: list[DomainEvent], django_capture_on_commit_callbacks
) -> None:
    with time_machine.travel(AFTER_THE_CARD, tick=False) as clock:
        run = suspended_with_hold(tenant)  # s2 (10) refused with 5 on the hold and 0 besides
        clock.shift(timedelta(minutes=61))
        events.clear()  # the suspensions were heard as they happened
        with django_capture_on_commit_callbacks(execute=True):
            assert workflow_expire_idle() == 1
        # Its own 5 came back to the balance: s2 is covered no better than when it was refused.
        assert balance_get(tenant=tenant).available == Decimal("5")
        run.refresh_from_db()
        assert run.resumable_at is None
        assert events == []

        clock.shift(timedelta(minutes=1))
        with django_capture_on_commit_callbacks(execute=True):
            grant(tenant, 5, "g2")  # new credits: now it is told

    run.refresh_from_db()
    assert run.resumable_at is not None
    assert [(e.type, e.data["workflow_id"]) for e in events] == [("workflow.resumable", run.pk)]


def test_the_sweep_releasing_one_runs_hold_wakes_the_other_suspended_runs(
    tenant: Tenant, card: RateCard, events: list[DomainEvent], django_capture_on_commit_callbacks
) -> None:
    with time_machine.travel(AFTER_THE_CARD, tick=False) as clock:
        held = suspended_with_hold(tenant)  # 5 left on its hold, 0 available
        grant(tenant, 5, "g2")
        other, _ = workflow_start(tenant=tenant, external_id="job-2")
        workflow_step(tenant=tenant, run=other, data=step("o1", action="doc_search"))  # 3
        with pytest.raises(WorkflowSuspended):
            workflow_step(tenant=tenant, run=other, data=step("o2", action="doc_search"))

        clock.shift(timedelta(minutes=61))
        events.clear()  # the suspensions were heard as they happened
        with django_capture_on_commit_callbacks(execute=True):
            assert workflow_expire_idle() == 1

    assert [(e.type, e.data["workflow_id"]) for e in events] == [("workflow.resumable", other.pk)]
    held.refresh_from_db()
    assert held.resumable_at is None


def test_cancelling_a_run_releases_its_hold_and_wakes_a_suspended_run(
    tenant: Tenant, card: RateCard, events: list[DomainEvent], django_capture_on_commit_callbacks
) -> None:
    grant(tenant, 25, "g1")
    with time_machine.travel(AFTER_THE_CARD, tick=False):
        holder, _ = workflow_start(tenant=tenant, external_id="job-a", reserve_credits=Decimal(20))
        waiting, _ = workflow_start(tenant=tenant, external_id="job-b")
        with pytest.raises(WorkflowSuspended):
            workflow_step(tenant=tenant, run=waiting, data=step("b1"))  # 10 of 5 available

        events.clear()  # the suspension was heard as it happened
        with django_capture_on_commit_callbacks(execute=True):
            workflow_cancel(tenant=tenant, run=holder)

    assert [(e.type, e.data["workflow_id"], e.data["available"]) for e in events] == [
        ("workflow.resumable", waiting.pk, "25.0000")
    ]
    waiting.refresh_from_db()
    assert waiting.resumable_at is not None


def test_marking_a_run_resumable_restarts_its_ttl(tenant: Tenant, card: RateCard) -> None:
    with time_machine.travel(AFTER_THE_CARD, tick=False) as clock:
        run = suspended_with_hold(tenant)
        clock.shift(timedelta(minutes=50))
        grant(tenant, 1, "g2")  # not enough for s2 (10), but the run is told to try again
        assert workflow_mark_resumable(tenant=tenant) == 1
        run.refresh_from_db()
        assert run.last_activity_at == timezone.now() == run.resumable_at

        clock.shift(timedelta(minutes=40))  # 90 min after the suspension, 40 after the news
        assert workflow_expire_idle() == 0
        assert balance_get(tenant=tenant).reserved == Decimal("5")

        clock.shift(timedelta(minutes=21))
        assert workflow_expire_idle() == 1
        assert balance_get(tenant=tenant).reserved == Decimal("0")


# ---------------------------------------------------------------------------------------------
# Steps


def step(key: str, action: str = "web_research", **kwargs: Any) -> UsageInput:
    return UsageInput(idempotency_key=key, action=action, quantity=Decimal(1), **kwargs)


def test_steps_are_paid_from_the_hold_first_and_counted_on_the_run(
    tenant: Tenant, card: RateCard
) -> None:
    grant(tenant, 100, "g1", price_minor=1000)
    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("15"))

    first = workflow_step(tenant=tenant, run=run, data=step("s1", input_tokens=1_000_000))
    second = workflow_step(tenant=tenant, run=run, data=step("s2", tool_calls=2))

    assert (first.replayed, first.event.step_index, first.event.credits) == (
        False,
        1,
        Decimal("10"),
    )
    assert second.event.step_index == 2
    run.refresh_from_db()
    assert (run.credits_charged, run.steps_charged) == (Decimal("20"), 2)
    assert run.cogs_minor == Decimal("266")  # 250 for 1M input tokens + 2 x 8 per tool call
    assert run.revenue_minor == Decimal("200")  # 20 credits bought at 10 minor units each
    assert run.hold is not None
    run.hold.refresh_from_db()
    assert run.hold.remaining == Decimal("0")  # 15 from the hold, 5 from the balance
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (Decimal("80"), Decimal("0"))


def test_a_replayed_step_is_not_charged_again(tenant: Tenant, card: RateCard) -> None:
    grant(tenant, 100, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1")
    first = workflow_step(tenant=tenant, run=run, data=step("s1"))

    again = workflow_step(tenant=tenant, run=run, data=step("s1"))

    assert again.replayed
    assert again.event.pk == first.event.pk
    run.refresh_from_db()
    assert (run.credits_charged, run.steps_charged) == (Decimal("10"), 1)
    assert balance_get(tenant=tenant).available == Decimal("90")


def test_a_step_key_with_another_body_conflicts(tenant: Tenant, card: RateCard) -> None:
    grant(tenant, 100, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1")
    workflow_step(tenant=tenant, run=run, data=step("s1"))

    with pytest.raises(IdempotencyConflict):
        workflow_step(tenant=tenant, run=run, data=step("s1", action="chat"))


def test_a_key_used_by_another_run_conflicts(tenant: Tenant, card: RateCard) -> None:
    grant(tenant, 100, "g1")
    one, _ = workflow_start(tenant=tenant, external_id="job-1")
    two, _ = workflow_start(tenant=tenant, external_id="job-2")
    workflow_step(tenant=tenant, run=one, data=step("s1"))

    with pytest.raises(IdempotencyConflict) as conflict:
        workflow_step(tenant=tenant, run=two, data=step("s1"))

    assert conflict.value.details == {"idempotency_key": "s1"}


def test_an_unpaid_step_suspends_the_run_and_a_paid_one_resumes_it(
    tenant: Tenant, card: RateCard, events: list[DomainEvent], django_capture_on_commit_callbacks
) -> None:
    grant(tenant, 15, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1")
    workflow_step(tenant=tenant, run=run, data=step("s1"))

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(WorkflowSuspended) as s:
        workflow_step(tenant=tenant, run=run, data=step("s2"))

    assert s.value.status_code == 402
    assert s.value.details == {
        "state": "suspended",
        "workflow_id": run.pk,
        "resume_from_step": "s2",
        "required": "10.0000",
        "available": "5.0000",
    }
    run.refresh_from_db()
    assert (run.state, run.suspension_reason, run.suspended_at_step) == (
        State.SUSPENDED,
        "insufficient_credits",
        "s2",
    )
    assert not UsageEvent.objects.filter(tenant=tenant, idempotency_key="s2").exists()
    # A replay of a step charged before the suspension still answers.
    assert workflow_step(tenant=tenant, run=run, data=step("s1")).replayed
    assert [(e.type, e.data["resume_from_step"]) for e in events] == [("workflow.suspended", "s2")]

    with django_capture_on_commit_callbacks(execute=True):
        grant(tenant, 10, "g2")
    run.refresh_from_db()
    assert run.resumable_at is not None
    assert [e.type for e in events] == ["workflow.suspended", "workflow.resumable"]

    resumed = workflow_step(tenant=tenant, run=run, data=step("s2"))

    assert not resumed.replayed
    assert resumed.event.step_index == 2
    assert (resumed.run.state, resumed.run.suspended_at_step) == (State.RUNNING, "")
    assert balance_get(tenant=tenant).available == Decimal("5")


def test_a_step_on_an_ended_run_is_refused_but_a_replay_answers(
    tenant: Tenant, card: RateCard
) -> None:
    grant(tenant, 100, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1", reserve_credits=Decimal("50"))
    workflow_step(tenant=tenant, run=run, data=step("s1"))
    workflow_complete(tenant=tenant, run=run)

    with pytest.raises(IllegalTransition) as refused:
        workflow_step(tenant=tenant, run=run, data=step("s2"))

    assert refused.value.details == {"state": "completed", "workflow_id": run.pk}
    assert refused.value.message == "The workflow run is completed: it takes no new steps."
    assert workflow_step(tenant=tenant, run=run, data=step("s1")).replayed
    assert balance_get(tenant=tenant).available == Decimal("90")


def test_only_credits_wake_suspended_runs(
    tenant: Tenant, card: RateCard, events: list[DomainEvent], django_capture_on_commit_callbacks
) -> None:
    grant(tenant, 5, "g1")
    run, _ = workflow_start(tenant=tenant, external_id="job-1")
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(WorkflowSuspended):
        workflow_step(tenant=tenant, run=run, data=step("s1"))
    with django_capture_on_commit_callbacks(execute=True):
        workflow_step(
            tenant=tenant,
            run=workflow_start(tenant=tenant, external_id="j2")[0],
            data=step("c1", action="chat"),
        )  # a debit: not a reason to wake
        grant(tenant, 1, "g2")
        grant(tenant, 1, "g3")  # already told: no second event for the same suspension

    assert [e.type for e in events] == ["workflow.suspended", "workflow.resumable"]
    assert events[1].data == {
        "workflow_id": run.pk,
        "external_id": "job-1",
        "state": "suspended",
        "resume_from_step": "s1",
        "credits_charged": "0.0000",
        "steps_charged": 0,
        "available": "6.0000",  # the listeners ran once the block's writes were all in
    }


def test_the_sweep_is_a_beat_task(tenant: Tenant, settings) -> None:
    assert settings.CELERY_BEAT_SCHEDULE["metering.workflow_expire_idle"] == {
        "task": "metering.workflow_expire_idle",
        "schedule": 60.0,
    }
    grant(tenant, 100, "g1")
    with time_machine.travel("2026-03-01 09:00:00+00:00", tick=False) as clock:
        run, _ = workflow_start(tenant=tenant, external_id="job-1")
        clock.shift(timedelta(minutes=61))

        assert workflow_expire_idle_task.delay().get() == 1

    run.refresh_from_db()
    assert run.state == State.FAILED
