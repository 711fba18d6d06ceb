"""Contracts (rolling_12m grants at the contract price, rate card assignment, overdraft) and the
management commands."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.exceptions import InvalidContract
from billing.models import Contract, Plan
from billing.services import (
    contract_activate,
    contract_end_due,
    contract_start_due,
    contract_tranches_due,
    subscription_start,
)
from ledger.models import CreditBucket
from ledger.selectors import credit_account_get
from ratecards.models import RateCardAssignment
from ratecards.selectors import assignment_in_force
from ratecards.services import ratecard_create, ratecard_seed_example
from tenants.models import Tenant

pytestmark = pytest.mark.django_db
START = datetime(2026, 1, 31, 12, tzinfo=UTC)


def make_contract(tenant: Tenant, **fields: object) -> Contract:
    card = ratecard_seed_example()
    values = {
        "name": "Acme 2026",
        "price_per_1000_minor": 800,
        "committed_credits": Decimal("12000"),
        "start_at": START,
        "end_at": datetime(2027, 1, 31, 12, tzinfo=UTC),
        "rate_card": card,
        "notice_days": 30,
        "overdraft_limit": Decimal("500"),
        **fields,
    }
    return Contract.objects.create(tenant=tenant, **values)


def contract_buckets(tenant: Tenant) -> list[tuple[str, Decimal, int, datetime | None]]:
    return list(
        CreditBucket.objects.filter(tenant=tenant, source="contract")
        .order_by("id")
        .values_list("external_reference", "granted", "price_minor", "expires_at")
    )


def test_an_upfront_contract_grants_rolling_12m_at_the_contract_price(tenant: Tenant) -> None:
    with time_machine.travel(START, tick=False):
        contract = make_contract(tenant)
        contract_activate(contract=contract)
        contract_activate(contract=contract)  # re-applying grants nothing twice
    assert contract_buckets(tenant) == [
        (
            f"contract:{contract.pk}:0",
            Decimal("12000.0000"),
            9600,
            datetime(2027, 1, 31, 12, tzinfo=UTC),
        )
    ]
    assert credit_account_get(tenant=tenant).overdraft_limit == Decimal("500")
    assignment = RateCardAssignment.objects.get(tenant=tenant)
    assert (assignment.mode, assignment.notice_days) == ("follow", 30)


def test_monthly_tranches_sum_to_the_commitment(tenant: Tenant) -> None:
    with time_machine.travel(START, tick=False) as clock:
        contract = make_contract(
            tenant, committed_credits=Decimal("1000"), grant_schedule=Contract.Schedule.MONTHLY
        )
        contract_activate(contract=contract)
        assert [b[1] for b in contract_buckets(tenant)] == [Decimal("83.3333")]
        clock.move_to(datetime(2026, 2, 28, 12, tzinfo=UTC))  # the 31st → Feb 28
        assert contract_tranches_due() == 1
        assert contract_tranches_due() == 0
        clock.move_to(datetime(2027, 2, 1, tzinfo=UTC))
        assert contract_tranches_due() == 10
    granted = [b[1] for b in contract_buckets(tenant)]
    assert len(granted) == 12
    assert sum(granted) == Decimal("1000")
    assert granted[-1] == Decimal("83.3337")


def test_a_pinned_contract_pins_the_tenant(tenant: Tenant) -> None:
    card = ratecard_seed_example()
    version = card.versions.get(number=1)
    with time_machine.travel(START, tick=False):
        contract = make_contract(
            tenant,
            rate_card_mode=Contract.RateCardMode.PINNED,
            pinned_version=version,
            pinned_until=datetime(2026, 7, 1, tzinfo=UTC),
        )
        contract_activate(contract=contract)
    assignment = RateCardAssignment.objects.get(tenant=tenant)
    assert (assignment.mode, assignment.pinned_version_id) == ("pinned", version.pk)


def test_a_pinned_contract_without_a_version_is_refused(tenant: Tenant) -> None:
    contract = make_contract(tenant, rate_card_mode=Contract.RateCardMode.PINNED)
    with pytest.raises(InvalidContract) as refused:
        contract_activate(contract=contract)
    assert (refused.value.message, refused.value.details) == (
        "A pinned assignment needs a version.",
        {"field": "pinned_version"},
    )
    assert contract_buckets(tenant) == []


def test_a_contract_ends_at_its_end_at(tenant: Tenant) -> None:
    end = datetime(2027, 1, 31, 12, tzinfo=UTC)
    with time_machine.travel(START, tick=False) as clock:
        plan_card = ratecard_create(name="Pro card", slug="pro-card")
        plan = Plan.objects.create(
            slug="pro",
            name="Pro",
            price_minor=7_900,
            included_credits=Decimal("750"),
            rate_card=plan_card,
        )
        contract = make_contract(tenant, end_at=end)
        contract_activate(contract=contract)
        subscription_start(tenant=tenant, plan=plan)  # the contract's card outranks the plan's
        assert credit_account_get(tenant=tenant).overdraft_limit == Decimal("500")

        clock.move_to(datetime(2027, 1, 31, 11, 59, tzinfo=UTC))
        assert contract_end_due() == 0
        clock.move_to(datetime(2027, 1, 31, 12, 30, tzinfo=UTC))
        assert contract_end_due() == 1
        assert contract_end_due() == 0  # a second run changes nothing

        contract.refresh_from_db()
        assert contract.status == Contract.Status.ENDED
        assert credit_account_get(tenant=tenant).overdraft_limit == Decimal("0")
        assignment = assignment_in_force(
            tenant=tenant, at=datetime(2027, 1, 31, 12, 30, tzinfo=UTC)
        )
        assert assignment is not None
        assert (assignment.rate_card_id, assignment.mode, assignment.notice_days) == (
            plan_card.pk,
            "follow",
            0,
        )


def test_without_a_plan_an_ended_contract_leaves_the_default_card(tenant: Tenant) -> None:
    card = ratecard_seed_example()
    version = card.versions.get(number=1)
    with time_machine.travel(START, tick=False) as clock:
        contract = make_contract(
            tenant,
            end_at=datetime(2026, 6, 1, tzinfo=UTC),
            rate_card_mode=Contract.RateCardMode.PINNED,
            pinned_version=version,
            pinned_until=datetime(2026, 7, 1, tzinfo=UTC),
        )
        contract_activate(contract=contract)
        clock.move_to(datetime(2026, 6, 1, 0, 10, tzinfo=UTC))
        assert contract_end_due() == 1
        assignment = assignment_in_force(tenant=tenant, at=datetime(2026, 6, 1, 0, 10, tzinfo=UTC))
    assert assignment is not None
    assert (assignment.rate_card_id, assignment.mode, assignment.pinned_version_id) == (
        card.pk,
        "follow",
        None,
    )
    assert credit_account_get(tenant=tenant).overdraft_limit == Decimal("0")


def test_a_renewal_after_a_gap_takes_over_at_its_start(tenant: Tenant) -> None:
    may = datetime(2026, 5, 10, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False) as clock:
        c1 = make_contract(
            tenant,
            start_at=datetime(2026, 1, 1, tzinfo=UTC),
            end_at=datetime(2026, 6, 1, tzinfo=UTC),
        )
        contract_activate(contract=c1)
        c2_card = ratecard_create(name="Acme 2026-27", slug="acme-2026-27")
        clock.move_to(may)
        c2 = make_contract(
            tenant,
            name="Acme renewal",
            rate_card=c2_card,
            start_at=datetime(2026, 6, 2, tzinfo=UTC),
            end_at=datetime(2027, 6, 2, tzinfo=UTC),
            overdraft_limit=Decimal("900"),
        )
        contract_activate(contract=c2)

        # In May the first contract is still in force.
        in_may = assignment_in_force(tenant=tenant, at=may)
        assert in_may is not None
        assert in_may.rate_card_id == c1.rate_card_id
        assert credit_account_get(tenant=tenant).overdraft_limit == Decimal("500")
        assert contract_start_due() == 0

        clock.move_to(datetime(2026, 6, 3, tzinfo=UTC))
        assert contract_end_due() == 1
        assert contract_start_due() == 1
        assert contract_start_due() == 0  # the terms are applied once
        in_june = assignment_in_force(tenant=tenant, at=datetime(2026, 6, 3, tzinfo=UTC))
        assert in_june is not None
        assert in_june.rate_card_id == c2_card.pk
        assert credit_account_get(tenant=tenant).overdraft_limit == Decimal("900")
    c1.refresh_from_db()
    assert c1.status == Contract.Status.ENDED


def test_ending_a_contract_grants_its_last_tranche_first(tenant: Tenant) -> None:
    with time_machine.travel(datetime(2026, 1, 1, tzinfo=UTC), tick=False) as clock:
        contract = make_contract(
            tenant,
            committed_credits=Decimal("1000"),
            grant_schedule=Contract.Schedule.MONTHLY,
            start_at=datetime(2026, 1, 1, tzinfo=UTC),
            end_at=datetime(2026, 2, 1, 0, 30, tzinfo=UTC),
        )
        contract_activate(contract=contract)
        # The tranche due at Feb 1 00:00 was not granted before the contract ended at 00:30;
        # the end sweep happens to run before the tranche sweep.
        clock.move_to(datetime(2026, 2, 1, 0, 45, tzinfo=UTC))
        assert contract_end_due() == 1
        assert contract_tranches_due() == 0
    assert [(ref, granted) for ref, granted, _, _ in contract_buckets(tenant)] == [
        (f"contract:{contract.pk}:0", Decimal("500.0000")),
        (f"contract:{contract.pk}:1", Decimal("500.0000")),
    ]


def test_one_broken_contract_does_not_stop_the_end_sweep(
    tenant: Tenant, other_tenant: Tenant, caplog: pytest.LogCaptureFixture
) -> None:
    end = datetime(2026, 6, 1, tzinfo=UTC)
    with time_machine.travel(START, tick=False) as clock:
        broken = make_contract(tenant, end_at=end)
        contract_activate(contract=broken)
        # Edited after its grant: granting tranche 0 again conflicts with the bucket it made.
        Contract.objects.filter(pk=broken.pk).update(committed_credits=Decimal("13000"))
        sound = make_contract(other_tenant, end_at=end)
        contract_activate(contract=sound)
        clock.move_to(datetime(2026, 6, 1, 0, 10, tzinfo=UTC))
        assert contract_end_due() == 1
    statuses = dict(Contract.objects.values_list("pk", "status"))
    assert statuses == {broken.pk: Contract.Status.ACTIVE, sound.pk: Contract.Status.ENDED}
    assert credit_account_get(tenant=other_tenant).overdraft_limit == Decimal("0")
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        f"contract {broken.pk}: ending failed"
    ]
