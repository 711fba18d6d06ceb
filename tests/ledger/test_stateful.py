"""Random sequences of grants, debits, reversals, holds, time travel and sweeps, checked after
every step against a small model of the ledger written independently of the services."""

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.db.models import F
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from ledger.exceptions import InsufficientCredits, NotReversible
from ledger.models import CreditBucket, CreditHold, LedgerEntry, LedgerTransaction
from ledger.selectors import available_get, credit_account_get, ledger_verify
from ledger.services import (
    ledger_debit,
    ledger_expire_due,
    ledger_grant,
    ledger_hold_place,
    ledger_hold_release,
    ledger_reverse,
)
from tests.ledger.factories import tenant_make

P = CreditBucket.Policy
S = CreditBucket.Source
ZERO = Decimal("0")
START = datetime(2026, 1, 15, 12, tzinfo=UTC)
credits = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("60"), places=4)


@dataclass
class Bucket:
    pk: int
    remaining: Decimal
    expires_at: datetime | None
    cost: Decimal

    def alive(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass
class Debit:
    tx: LedgerTransaction
    amount: Decimal
    parts: list[tuple[int, Decimal]]  # in the order drawn
    returned: dict[int, Decimal] = field(default_factory=dict)

    @property
    def reversible(self) -> Decimal:
        return self.amount - sum(self.returned.values(), ZERO)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.travel_ctx = time_machine.travel(START, tick=False)
        self.traveller = self.travel_ctx.start()
        self.tenant = tenant_make()
        self.buckets: dict[int, Bucket] = {}
        self.holds: dict[int, tuple[CreditHold, Decimal]] = {}  # open holds: remaining
        self.debits: list[Debit] = []
        self.keys = itertools.count()
        # What the tenant was last topped up to: the available balance after a grant, raised by
        # a refund, left by everything else.
        self.topped_up_to = ZERO

    def teardown(self) -> None:
        self.travel_ctx.stop()

    # The model ------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return timezone.now()

    @property
    def reserved(self) -> Decimal:
        return sum((remaining for _, remaining in self.holds.values()), ZERO)

    @property
    def available(self) -> Decimal:
        live = sum((b.remaining for b in self.buckets.values() if b.alive(self.now)), ZERO)
        return live - self.reserved

    def spend_order(self) -> list[Bucket]:
        never = datetime.max.replace(tzinfo=UTC)
        live = [b for b in self.buckets.values() if b.alive(self.now) and b.remaining > 0]
        return sorted(live, key=lambda b: (b.expires_at or never, b.cost, b.pk))

    def key(self) -> str:
        return f"k{next(self.keys)}"

    # Rules ----------------------------------------------------------------------------------

    @rule(
        amount=credits,
        policy=st.sampled_from(P.values),
        days=st.integers(min_value=1, max_value=40),
        price_minor=st.sampled_from([0, 0, 100, 2500]),
    )
    def grant(self, amount: Decimal, policy: str, days: int, price_minor: int) -> None:
        expires_at = self.now + timedelta(days=days) if policy == P.MONTHLY_RESET else None
        bucket = ledger_grant(
            tenant=self.tenant,
            credits=amount,
            policy=policy,
            source=S.TOPUP,
            external_reference=self.key(),
            expires_at=expires_at,
            price_minor=price_minor,
        ).bucket
        self.buckets[bucket.pk] = Bucket(
            bucket.pk, amount, bucket.expires_at, bucket.cost_basis_minor
        )
        self.topped_up_to = max(self.available, ZERO)

    @rule(amount=credits, through_hold=st.booleans())
    def debit(self, amount: Decimal, through_hold: bool) -> None:
        hold_pk = next(iter(self.holds), None) if through_hold else None
        hold, held = self.holds[hold_pk] if hold_pk is not None else (None, ZERO)
        covered = amount <= self.available + held
        try:
            result = ledger_debit(
                tenant=self.tenant, amount=amount, idempotency_key=self.key(), hold=hold
            )
        except InsufficientCredits:
            assert not covered
            return
        assert covered
        expected, left = [], amount
        for bucket in self.spend_order():
            part = min(bucket.remaining, left)
            if part > 0:
                expected.append((bucket.pk, part))
                bucket.remaining -= part
                left -= part
        assert [(p.bucket_id, p.amount) for p in result.parts] == expected
        if hold is not None and hold_pk is not None:
            self.holds[hold_pk] = (hold, held - min(amount, held))
        self.debits.append(Debit(result.transaction, amount, expected))
        assert result.available_after == self.available

    @precondition(lambda self: self.debits)
    @rule(data=st.data(), whole=st.booleans())
    def reverse(self, data: st.DataObject, whole: bool) -> None:
        debit = data.draw(st.sampled_from(self.debits))
        amount = None if whole else data.draw(credits)
        wanted = debit.reversible if amount is None else amount
        key = self.key()
        try:
            ledger_reverse(tenant=self.tenant, debit=debit.tx, idempotency_key=key, amount=amount)
        except NotReversible:
            assert wanted > debit.reversible or wanted == 0
            return
        assert wanted <= debit.reversible
        left = wanted
        for pk, drawn in reversed(debit.parts):
            part = min(drawn - debit.returned.get(pk, ZERO), left)
            if part <= 0:
                continue
            debit.returned[pk] = debit.returned.get(pk, ZERO) + part
            left -= part
            if self.buckets[pk].alive(self.now):
                self.buckets[pk].remaining += part
            else:  # the expired bucket's share goes to a new permanent refund bucket
                refund = CreditBucket.objects.get(
                    external_reference=f"refund:{key}:{pk}", tenant=self.tenant
                )
                assert (refund.granted, refund.expires_at) == (part, None)
                assert refund.cost_basis_minor == self.buckets[pk].cost
                self.buckets[refund.pk] = Bucket(refund.pk, part, None, refund.cost_basis_minor)
        self.topped_up_to = max(self.topped_up_to, self.available)

    @rule(amount=credits)
    def hold(self, amount: Decimal) -> None:
        covered = amount <= self.available
        try:
            hold = ledger_hold_place(tenant=self.tenant, amount=amount, reference=self.key())
        except InsufficientCredits:
            assert not covered
            return
        assert covered
        self.holds[hold.pk] = (hold, amount)

    @precondition(lambda self: self.holds)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        pk = data.draw(st.sampled_from(sorted(self.holds)))
        hold, held = self.holds.pop(pk)
        assert ledger_hold_release(tenant=self.tenant, hold=hold) == held

    @rule(
        delta=st.sampled_from(
            [
                timedelta(hours=1),
                timedelta(days=3),
                timedelta(days=20),
                timedelta(days=45),
                timedelta(days=400),
            ]
        )
    )
    def travel(self, delta: timedelta) -> None:
        self.traveller.shift(delta)

    @rule()
    def sweep(self) -> None:
        due = [b for b in self.buckets.values() if not b.alive(self.now) and b.remaining > 0]
        ledger_expire_due()
        for bucket in due:
            bucket.remaining = ZERO
        assert ledger_expire_due() == 0

    # Invariants -----------------------------------------------------------------------------

    @invariant()
    def balance_matches_the_model(self) -> None:
        assert available_get(tenant=self.tenant) == self.available
        stored = dict(
            CreditBucket.objects.filter(tenant=self.tenant).values_list("pk", "remaining")
        )
        assert stored == {pk: b.remaining for pk, b in self.buckets.items()}

    @invariant()
    def topped_up_to_matches_the_model(self) -> None:
        assert credit_account_get(tenant=self.tenant).topped_up_to == self.topped_up_to

    @invariant()
    def the_ledger_verifies(self) -> None:
        assert not CreditBucket.objects.filter(tenant=self.tenant, remaining__lt=0).exists()
        assert ledger_verify(tenant=self.tenant) == []

    @invariant()
    def expired_credits_are_never_spent(self) -> None:
        assert not LedgerEntry.objects.filter(
            tenant=self.tenant, kind="debit", created_at__gte=F("bucket__expires_at")
        ).exists()


@pytest.mark.django_db
def test_random_sequences_keep_the_invariants() -> None:
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            database=None,
        ),
    )
