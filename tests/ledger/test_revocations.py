"""Taking back what is left of a grant (a refunded or lost-disputed pack): worked examples."""

from datetime import date
from decimal import Decimal

import pytest
import time_machine

from ledger.exceptions import IdempotencyConflict, NotReversible
from ledger.models import CreditBucket, DebitDay, EntryKind, LedgerTransaction
from ledger.rollup import debit_days_update
from ledger.selectors import balance_get, ledger_verify
from ledger.services import ledger_debit, ledger_grant, ledger_grant_revoke, ledger_reverse
from tenants.models import Tenant
from tests.ledger.helpers import remaining, statement

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal


def given(tenant: Tenant, reference: str, credits: int, *, price_minor: int) -> CreditBucket:
    """A permanent grant: a paid pack (a price) or a free promotion."""
    source = S.TOPUP if price_minor else S.PROMOTION
    return ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=P.PERMANENT,
        source=source,
        external_reference=reference,
        price_minor=price_minor,
    ).bucket


def test_a_partly_spent_pack_gives_back_what_is_left(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given: a free promotion of 100 and a paid pack of 500; 550 spent (100 promo, 450 pack).
    promo = given(tenant, "welcome", 100, price_minor=0)
    pack = given(tenant, "topup:7", 500, price_minor=6_500)
    ledger_debit(tenant=tenant, amount=D("550"), idempotency_key="usage:1")
    assert remaining(promo, pack) == [D("0"), D("50")]

    # When: the pack's payment is refunded: all 500 of its credits are asked back.
    result = ledger_grant_revoke(
        tenant=tenant,
        external_reference="topup:7",
        credits=500,
        idempotency_key="takeback:topup:7:6500",
        source_type="billing.topup",
        source_id="7",
    )

    # Then: the 50 left come back, 450 were spent (debt for the caller to record).
    assert (result.asked, result.taken, result.short) == (D("500"), D("50"), D("450"))
    assert remaining(promo, pack) == [D("0"), D("0")]
    assert balance_get(tenant=tenant).available == D("0")
    tx = result.transaction
    assert tx is not None
    assert tx.kind == EntryKind.REVERSAL
    assert tx.amount == D("-50")
    assert tx.reverses == LedgerTransaction.objects.get(
        tenant=tenant, idempotency_key="grant:topup:7"
    )
    assert statement(tenant, {promo.pk: "promo", pack.pk: "pack"})[-1] == (
        "reversal",
        "pack",
        D("-50.0000"),
        D("0.0000"),
    )
    assert ledger_verify(tenant=tenant) == []

    # And: the same key again writes nothing and answers the same.
    again = ledger_grant_revoke(
        tenant=tenant,
        external_reference="topup:7",
        credits=500,
        idempotency_key="takeback:topup:7:6500",
    )
    assert (again.taken, again.replayed, again.transaction) == (D("50"), True, tx)
    assert LedgerTransaction.objects.filter(tenant=tenant, kind=EntryKind.REVERSAL).count() == 1
    assert balance_get(tenant=tenant).available == D("0")


def test_an_unspent_pack_leaves_whole_and_other_buckets_stay(tenant: Tenant) -> None:
    promo = given(tenant, "welcome", 100, price_minor=0)
    pack = given(tenant, "topup:8", 500, price_minor=6_500)
    ledger_debit(tenant=tenant, amount=D("30"), idempotency_key="usage:1")  # the promo first

    result = ledger_grant_revoke(
        tenant=tenant, external_reference="topup:8", credits=500, idempotency_key="k1"
    )

    assert (result.taken, result.short) == (D("500"), D("0"))
    assert remaining(promo, pack) == [D("70"), D("0")]
    assert balance_get(tenant=tenant).available == D("70")
    assert ledger_verify(tenant=tenant) == []


def test_a_partial_take_back_then_the_rest(tenant: Tenant) -> None:
    pack = given(tenant, "topup:9", 500, price_minor=6_500)
    ledger_debit(tenant=tenant, amount=D("100"), idempotency_key="usage:1")

    first = ledger_grant_revoke(
        tenant=tenant, external_reference="topup:9", credits=250, idempotency_key="k1"
    )
    second = ledger_grant_revoke(
        tenant=tenant, external_reference="topup:9", credits=250, idempotency_key="k2"
    )

    assert (first.taken, second.taken, second.short) == (D("250"), D("150"), D("100"))
    assert remaining(pack) == [D("0")]
    assert ledger_verify(tenant=tenant) == []


def test_a_debit_refunded_after_the_take_back_lands_in_the_bucket_again(tenant: Tenant) -> None:
    # The customer was charged 100 from the pack; the pack is refunded (400 back), then the
    # vendor refunds the charge: those 100 credits are the customer's again.
    pack = given(tenant, "topup:10", 500, price_minor=6_500)
    debit = ledger_debit(tenant=tenant, amount=D("100"), idempotency_key="usage:1")
    ledger_grant_revoke(
        tenant=tenant, external_reference="topup:10", credits=500, idempotency_key="k1"
    )

    ledger_reverse(tenant=tenant, debit=debit.transaction, idempotency_key="refund:usage:1")

    assert remaining(pack) == [D("100")]
    assert ledger_verify(tenant=tenant) == []


def test_unknown_grant_and_key_reused_for_another_grant(tenant: Tenant) -> None:
    for ref in ("topup:1", "topup:2"):
        given(tenant, ref, 10, price_minor=100)
    with pytest.raises(NotReversible) as missing:
        ledger_grant_revoke(
            tenant=tenant, external_reference="topup:3", credits=1, idempotency_key="k"
        )
    assert missing.value.message == "No grant has the reference 'topup:3'."
    ledger_grant_revoke(tenant=tenant, external_reference="topup:1", credits=1, idempotency_key="k")
    with pytest.raises(IdempotencyConflict):
        ledger_grant_revoke(
            tenant=tenant, external_reference="topup:2", credits=1, idempotency_key="k"
        )
    assert balance_get(tenant=tenant).available == D("19")


def test_credits_taken_back_are_not_usage_in_the_daily_totals(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    given(tenant, "topup:11", 500, price_minor=6_500)
    ledger_debit(tenant=tenant, amount=D("120"), idempotency_key="usage:1")
    ledger_grant_revoke(
        tenant=tenant, external_reference="topup:11", credits=500, idempotency_key="k"
    )

    debit_days_update()

    assert list(DebitDay.objects.filter(tenant=tenant).values_list("day", "credits")) == [
        (date(2026, 1, 15), D("120.0000"))
    ]
