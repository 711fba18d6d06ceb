"""The same request twice does one thing: idempotency is a unique constraint
(docs/architecture.md, money invariant 2)."""

from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import transaction

from ledger.exceptions import (
    IdempotencyConflict,
    InsufficientCredits,
    InvalidAmount,
    NotReversible,
)
from ledger.models import CreditBucket, LedgerEntry, LedgerTransaction
from ledger.selectors import available_get, ledger_verify
from ledger.services import (
    DebitRequest,
    credit_account_update,
    ledger_adjust,
    ledger_debit,
    ledger_debit_many,
    ledger_grant,
    ledger_reverse,
)
from tenants.models import Tenant
from tests.ledger.factories import bucket_make

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal


def test_the_same_debit_key_twice_gives_one_debit_and_the_original_result(
    tenant: Tenant,
) -> None:
    small = bucket_make(tenant=tenant, credits=D("3"), policy=P.ROLLING_12M)
    big = bucket_make(tenant=tenant, credits=D("100"))
    first = ledger_debit(
        tenant=tenant,
        amount=D("5"),
        idempotency_key="evt-1",
        source_type="usage_event",
        source_id="1",
    )
    ledger_debit(tenant=tenant, amount=D("20"), idempotency_key="evt-2")

    again = ledger_debit(tenant=tenant, amount=D("5"), idempotency_key="evt-1")

    assert again.replayed is True
    assert first.replayed is False
    assert again.transaction.pk == first.transaction.pk
    assert [(p.bucket_id, p.amount) for p in again.parts] == [(small.pk, D("3")), (big.pk, D("2"))]
    assert again.available_after == first.available_after == D("98")
    assert LedgerTransaction.objects.filter(kind="debit").count() == 2
    assert available_get(tenant=tenant) == D("78")


def test_the_same_debit_key_with_another_amount_is_a_conflict(tenant: Tenant) -> None:
    bucket_make(tenant=tenant, credits=D("100"))
    ledger_debit(tenant=tenant, amount=D("5"), idempotency_key="evt-1")
    with pytest.raises(IdempotencyConflict) as conflict:
        ledger_debit(tenant=tenant, amount=D("6"), idempotency_key="evt-1")
    assert (conflict.value.status_code, conflict.value.code) == (409, "idempotency_conflict")
    assert conflict.value.details == {"idempotency_key": "evt-1"}
    assert available_get(tenant=tenant) == D("95")


def test_a_batch_pays_or_refuses_each_charge_whole_and_replays_within_itself(
    tenant: Tenant,
) -> None:
    bucket_make(tenant=tenant, credits=D("10"))
    results = ledger_debit_many(
        tenant=tenant,
        requests=[
            DebitRequest(amount=D("4"), idempotency_key="a"),
            DebitRequest(amount=D("7"), idempotency_key="b"),
            DebitRequest(amount=D("4"), idempotency_key="a"),
            DebitRequest(amount=D("6"), idempotency_key="c"),
        ],
    )
    a, b, a_again, c = results
    assert isinstance(b, InsufficientCredits)
    assert b.details == {"required": "7", "available": "6.0000"}
    assert not isinstance(a, InsufficientCredits)
    assert not isinstance(a_again, InsufficientCredits)
    assert not isinstance(c, InsufficientCredits)
    assert (a_again.replayed, a_again.transaction.pk) == (True, a.transaction.pk)
    assert (a.available_after, c.available_after) == (D("6"), D("0"))
    assert set(
        LedgerTransaction.objects.filter(kind="debit").values_list("idempotency_key", flat=True)
    ) == {"a", "c"}


def test_the_same_grant_reference_twice_gives_one_bucket(tenant: Tenant) -> None:
    first = ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pi_123",
        price_minor=1000,
    )
    again = ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pi_123",
        price_minor=1000,
    )
    assert (first.created, again.created) == (True, False)
    assert again.bucket.pk == first.bucket.pk
    assert CreditBucket.objects.count() == 1
    assert LedgerEntry.objects.count() == 1
    with pytest.raises(IdempotencyConflict) as conflict:
        ledger_grant(
            tenant=tenant,
            credits=90,
            policy=P.PERMANENT,
            source=S.TOPUP,
            external_reference="pi_123",
        )
    assert conflict.value.details == {"external_reference": "pi_123"}


def test_grants_validate_their_amount_source_and_expiry(tenant: Tenant) -> None:
    for credits in ("0", "-1", "0.00001", "NaN"):
        with pytest.raises(InvalidAmount):
            bucket_make(tenant=tenant, credits=D(credits))
    with pytest.raises(InvalidAmount, match=r"Unknown credit source 'overdraft'\."):
        bucket_make(tenant=tenant, source=S.OVERDRAFT)
    with pytest.raises(InvalidAmount, match="need the end of their billing period"):
        bucket_make(tenant=tenant, policy=P.MONTHLY_RESET)
    assert CreditBucket.objects.count() == 0


def test_reversals_and_adjustments_are_idempotent_too(tenant: Tenant) -> None:
    admin = User.objects.create_user("ops")
    bucket_make(tenant=tenant, credits=D("10"))
    debit = ledger_debit(tenant=tenant, amount=D("6"), idempotency_key="d").transaction

    r1 = ledger_reverse(tenant=tenant, debit=debit, idempotency_key="r", amount=D("2"))
    assert ledger_reverse(tenant=tenant, debit=debit, idempotency_key="r", amount=D("2")) == r1
    with pytest.raises(IdempotencyConflict):
        ledger_reverse(tenant=tenant, debit=debit, idempotency_key="r", amount=D("3"))
    ledger_reverse(tenant=tenant, debit=debit, idempotency_key="r-rest")
    with pytest.raises(NotReversible, match=r"At most 0\.0000 credits of this debit"):
        ledger_reverse(tenant=tenant, debit=debit, idempotency_key="r-more", amount=D("1"))

    a1 = ledger_adjust(
        tenant=tenant,
        credits=D("-3"),
        reason="duplicate import",
        actor=admin,
        idempotency_key="adj-1",
    )
    again = ledger_adjust(
        tenant=tenant,
        credits=D("-3"),
        reason="duplicate import",
        actor=admin,
        idempotency_key="adj-1",
    )
    assert again == a1
    assert (a1.actor_id, a1.memo) == (admin.pk, "duplicate import")
    with pytest.raises(InsufficientCredits):
        ledger_adjust(
            tenant=tenant,
            credits=D("-7.5"),
            reason="too much",
            actor=admin,
            idempotency_key="adj-2",
        )
    with pytest.raises(InvalidAmount, match=r"An adjustment needs a reason\."):
        ledger_adjust(
            tenant=tenant, credits=D("5"), reason=" ", actor=admin, idempotency_key="adj-3"
        )
    assert available_get(tenant=tenant) == D("7")
    assert ledger_verify() == []


@pytest.mark.parametrize("conflicting_key", ["spill", "earlier"])
def test_a_batch_refused_after_an_overdraft_spill_leaves_no_overdraft_bucket_behind(
    tenant: Tenant, conflicting_key: str
) -> None:
    # Inside a caller's transaction a debit takes no savepoint, so a refusal that raises must
    # come before any write: the caller may catch it and commit.
    credit_account_update(tenant=tenant, overdraft_limit=D("50"))
    bucket_make(tenant=tenant, credits=D("10"))
    ledger_debit(tenant=tenant, amount=D("1"), idempotency_key="earlier")

    with transaction.atomic():
        buckets_before = CreditBucket.objects.filter(tenant=tenant).count()
        with pytest.raises(IdempotencyConflict) as conflict:
            ledger_debit_many(
                tenant=tenant,
                requests=[
                    DebitRequest(amount=D("15"), idempotency_key="spill"),
                    DebitRequest(amount=D("2"), idempotency_key=conflicting_key),
                ],
            )
        assert conflict.value.details == {"idempotency_key": conflicting_key}
        assert CreditBucket.objects.filter(tenant=tenant).count() == buckets_before
        assert not CreditBucket.objects.filter(tenant=tenant, is_overdraft=True).exists()

    assert available_get(tenant=tenant) == D("9")
    assert list(
        LedgerTransaction.objects.filter(kind="debit").values_list("idempotency_key", flat=True)
    ) == ["earlier"]


def test_a_batch_that_opens_the_overdraft_points_every_part_and_entry_at_its_new_bucket(
    tenant: Tenant,
) -> None:
    credit_account_update(tenant=tenant, overdraft_limit=D("50"))
    pack = bucket_make(tenant=tenant, credits=D("10"))

    first, again, second = ledger_debit_many(
        tenant=tenant,
        requests=[
            DebitRequest(amount=D("15"), idempotency_key="a"),
            DebitRequest(amount=D("15"), idempotency_key="a"),
            DebitRequest(amount=D("20"), idempotency_key="b"),
        ],
    )

    overdraft = CreditBucket.objects.get(tenant=tenant, is_overdraft=True)
    assert not isinstance(first, InsufficientCredits)
    assert not isinstance(again, InsufficientCredits)
    assert not isinstance(second, InsufficientCredits)
    assert [(p.bucket_id, p.amount) for p in first.parts] == [
        (pack.pk, D("10")),
        (overdraft.pk, D("5")),
    ]
    assert again.parts == first.parts
    assert (again.replayed, again.transaction.pk) == (True, first.transaction.pk)
    assert [(p.bucket_id, p.amount) for p in second.parts] == [(overdraft.pk, D("20"))]
    assert overdraft.remaining == D("-25")
    assert list(
        LedgerEntry.objects.filter(kind="debit")
        .order_by("id")
        .values_list("bucket_id", "amount", "balance_after")
    ) == [
        (pack.pk, D("-10"), D("0")),
        (overdraft.pk, D("-5"), D("-5")),
        (overdraft.pk, D("-20"), D("-25")),
    ]
    assert ledger_verify() == []
