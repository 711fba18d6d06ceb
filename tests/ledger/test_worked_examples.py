"""Worked examples: whole stories through the ledger, read top to bottom.

Acme's clock starts on 2026-01-15 12:00 UTC (the `frozen_time` fixture). Its billing period is
anchored on the 1st, so the January subscription credits end on 2026-02-01 00:00 UTC.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from ledger.exceptions import InsufficientCredits
from ledger.models import CreditBucket, LedgerTransaction
from ledger.periods import period_bounds
from ledger.selectors import balance_get, ledger_verify
from ledger.services import (
    credit_account_update,
    ledger_debit,
    ledger_expire_due,
    ledger_grant,
    ledger_hold_place,
    ledger_hold_release,
    ledger_reverse,
)
from tenants.models import Tenant
from tests.ledger.helpers import remaining, statement

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal


def at(day: int, month: int = 1, hour: int = 12) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_subscription_contract_and_packs_spent_expired_and_refunded(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given: January's subscription credits (free, end of period), a free promotion and a paid
    # contract grant (rolling 12 months, both granted now) and a paid permanent pack.
    _, period_end = period_bounds(datetime(2025, 11, 1, tzinfo=UTC), at(15))
    assert period_end == datetime(2026, 2, 1, tzinfo=UTC)
    sub = ledger_grant(
        tenant=tenant,
        credits=200,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub-2026-01",
        expires_at=period_end,
    ).bucket
    promo = ledger_grant(
        tenant=tenant,
        credits=50,
        policy=P.ROLLING_12M,
        source=S.PROMOTION,
        external_reference="welcome",
    ).bucket
    contract = ledger_grant(
        tenant=tenant,
        credits=300,
        policy=P.ROLLING_12M,
        source=S.CONTRACT,
        external_reference="contract-1",
        price_minor=3000,
    ).bucket
    pack1 = ledger_grant(
        tenant=tenant,
        credits=200,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack-1",
        price_minor=4000,
    ).bucket
    names = {sub.pk: "sub", promo.pk: "promo", contract.pk: "contract", pack1.pk: "pack1"}

    assert contract.expires_at == datetime(2027, 1, 15, 12, tzinfo=UTC)
    assert contract.cost_basis_minor == D("10")
    assert pack1.cost_basis_minor == D("20")
    balance = balance_get(tenant=tenant)
    assert balance.available == D("750")
    assert balance.by_policy == {
        "monthly_reset": D("200"),
        "rolling_12m": D("350"),
        "permanent": D("200"),
    }
    assert (balance.next_expiry_at, balance.next_expiry_amount) == (period_end, D("200"))

    # When: 80 credits are spent on the 16th, they come from the subscription (soonest expiry).
    frozen_time.move_to(at(16))
    d1 = ledger_debit(tenant=tenant, amount=D("80"), idempotency_key="d1")
    assert [(names[p.bucket_id], p.amount) for p in d1.parts] == [("sub", D("80"))]
    assert (d1.available_after, d1.revenue_minor) == (D("670"), D("0"))

    # A partial refund of 30 on the 17th goes back to the subscription bucket, still alive.
    frozen_time.move_to(at(17))
    ledger_reverse(tenant=tenant, debit=d1.transaction, idempotency_key="r1", amount=D("30"))
    assert remaining(sub) == [D("150")]
    assert balance_get(tenant=tenant).available == D("700")

    # At the period end the 150 left in the subscription bucket stop counting at once...
    frozen_time.move_to(period_end)
    balance = balance_get(tenant=tenant)
    assert balance.available == D("550")
    assert (balance.next_expiry_at, balance.next_expiry_amount) == (
        datetime(2027, 1, 15, 12, tzinfo=UTC),
        D("350"),
    )
    # ...and the sweep writes their one expiry entry (the balance had already dropped).
    assert ledger_expire_due() == 1
    assert remaining(sub) == [D("0")]

    # The rest of d1 (50) is refunded after its bucket expired: it lands in a new permanent
    # `refund` bucket with the expired bucket's cost basis (0 here).
    frozen_time.move_to(at(1, month=2))
    r2 = ledger_reverse(tenant=tenant, debit=d1.transaction, idempotency_key="r2")
    refund = CreditBucket.objects.get(source=S.REFUND)
    names[refund.pk] = "refund"
    assert (r2.amount, refund.policy, refund.granted, refund.remaining) == (
        D("50"),
        P.PERMANENT,
        D("50"),
        D("50"),
    )
    assert balance_get(tenant=tenant).available == D("600")

    # 450 on Feb 2 span four buckets: the two rolling buckets (same expiry: free promo before
    # the paid contract), then the permanent ones (free refund before the paid pack).
    frozen_time.move_to(at(2, month=2))
    d2 = ledger_debit(tenant=tenant, amount=D("450"), idempotency_key="d2")
    assert [(names[p.bucket_id], p.amount) for p in d2.parts] == [
        ("promo", D("50")),
        ("contract", D("300")),
        ("refund", D("50")),
        ("pack1", D("50")),
    ]
    assert (d2.available_after, d2.revenue_minor) == (D("150"), D("4000"))

    # A second pack at the same price per credit: the older pack is drawn first.
    frozen_time.move_to(at(3, month=2))
    pack2 = ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack-2",
        price_minor=2000,
    ).bucket
    names[pack2.pk] = "pack2"
    d3 = ledger_debit(tenant=tenant, amount=D("200"), idempotency_key="d3")
    assert [(names[p.bucket_id], p.amount) for p in d3.parts] == [
        ("pack1", D("150")),
        ("pack2", D("50")),
    ]

    # 60 more cannot be covered by the 50 left: refused whole, nothing written.
    with pytest.raises(InsufficientCredits) as refused:
        ledger_debit(tenant=tenant, amount=D("60"), idempotency_key="d4")
    assert refused.value.details == {"required": "60", "available": "50.0000"}
    assert not LedgerTransaction.objects.filter(idempotency_key="d4").exists()

    # Then: the statement, oldest first, with the balance after every entry.
    assert statement(tenant, names) == [
        ("grant", "sub", D("200"), D("200")),
        ("grant", "promo", D("50"), D("250")),
        ("grant", "contract", D("300"), D("550")),
        ("grant", "pack1", D("200"), D("750")),
        ("debit", "sub", D("-80"), D("670")),
        ("reversal", "sub", D("30"), D("700")),
        ("expiry", "sub", D("-150"), D("550")),
        ("reversal", "refund", D("50"), D("600")),
        ("debit", "promo", D("-50"), D("550")),
        ("debit", "contract", D("-300"), D("250")),
        ("debit", "refund", D("-50"), D("200")),
        ("debit", "pack1", D("-50"), D("150")),
        ("grant", "pack2", D("100"), D("250")),
        ("debit", "pack1", D("-150"), D("100")),
        ("debit", "pack2", D("-50"), D("50")),
    ]
    balance = balance_get(tenant=tenant)
    # Topped up to 250 by the last grant (pack2); the refunds before it do not count.
    assert (balance.available, balance.topped_up_to) == (D("50"), D("250"))
    assert balance.by_policy == {
        "monthly_reset": D("0"),
        "rolling_12m": D("0"),
        "permanent": D("50"),
    }
    assert [b.pk for b in balance.buckets] == [pack2.pk]
    assert remaining(sub, promo, contract, pack1, pack2, refund) == [
        D("0"),
        D("0"),
        D("0"),
        D("0"),
        D("50"),
        D("0"),
    ]
    assert ledger_verify() == []


def test_overdraft_goes_to_the_limit_and_the_next_grant_settles_it(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given: a contract allowing 100 credits of overdraft, and a pack of 50.
    credit_account_update(tenant=tenant, overdraft_limit=D("100"))
    pack = ledger_grant(
        tenant=tenant,
        credits=50,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack-1",
        price_minor=500,
    ).bucket

    # When: 120 are spent, the pack pays 50 and the overdraft lends 70.
    d1 = ledger_debit(tenant=tenant, amount=D("120"), idempotency_key="d1")
    overdraft = CreditBucket.objects.get(tenant=tenant, is_overdraft=True)
    names = {pack.pk: "pack", overdraft.pk: "overdraft"}
    assert [(names[p.bucket_id], p.amount) for p in d1.parts] == [
        ("pack", D("50")),
        ("overdraft", D("70")),
    ]
    assert d1.available_after == D("-70")

    # 30 more reach the limit exactly; one ten-thousandth more is refused.
    ledger_debit(tenant=tenant, amount=D("30"), idempotency_key="d2")
    with pytest.raises(InsufficientCredits) as refused:
        ledger_debit(tenant=tenant, amount=D("0.0001"), idempotency_key="d3")
    assert refused.value.details == {"required": "0.0001", "available": "0.0000"}
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.overdraft_used, balance.overdraft_limit) == (
        D("-100"),
        D("100"),
        D("100"),
    )

    # The next grant (150) first repays the 100 lent: settlement entries move them from the new
    # bucket to the overdraft bucket, and 50 are left to spend.
    grant = ledger_grant(
        tenant=tenant,
        credits=150,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack-2",
        price_minor=1500,
    )
    names[grant.bucket.pk] = "pack2"
    assert grant.available_after == D("50")
    assert remaining(grant.bucket, overdraft) == [D("50"), D("0")]
    assert balance_get(tenant=tenant).overdraft_used == D("0")

    # Reversing d1 after the settlement: the pack gets its 50 back, and the 70 the overdraft
    # lent (already repaid) become a free refund bucket, never positive credit on the overdraft.
    ledger_reverse(tenant=tenant, debit=d1.transaction, idempotency_key="r1")
    refund = CreditBucket.objects.get(tenant=tenant, source=S.REFUND)
    names[refund.pk] = "refund"
    assert (refund.remaining, refund.cost_basis_minor) == (D("70"), D("0"))

    assert statement(tenant, names) == [
        ("grant", "pack", D("50"), D("50")),
        ("debit", "pack", D("-50"), D("0")),
        ("debit", "overdraft", D("-70"), D("-70")),
        ("debit", "overdraft", D("-30"), D("-100")),
        ("grant", "pack2", D("150"), D("50")),
        ("settlement", "pack2", D("-100"), D("50")),
        ("settlement", "overdraft", D("100"), D("50")),
        ("reversal", "refund", D("70"), D("120")),
        ("reversal", "pack", D("50"), D("170")),
    ]
    assert balance_get(tenant=tenant).available == D("170")
    assert ledger_verify() == []


def test_a_hold_reserves_credits_is_spent_through_and_released(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    pack = ledger_grant(
        tenant=tenant, credits=100, policy=P.PERMANENT, source=S.TOPUP, external_reference="pack-1"
    ).bucket

    # A workflow run reserves 40: they leave the available balance at once.
    hold = ledger_hold_place(tenant=tenant, amount=D("40"), reference="run-1")
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (D("60"), D("40"))
    assert ledger_hold_place(tenant=tenant, amount=D("40"), reference="run-1").pk == hold.pk

    # Others cannot spend what is reserved.
    with pytest.raises(InsufficientCredits):
        ledger_debit(tenant=tenant, amount=D("60.0001"), idempotency_key="other")

    # A step of 10 through the hold does not change the available balance.
    step1 = ledger_debit(tenant=tenant, amount=D("10"), idempotency_key="step-1", hold=hold)
    assert (step1.available_after, step1.transaction.from_hold) == (D("60"), D("10"))
    # A step of 50 through it uses the 30 still held and 20 of the balance.
    step2 = ledger_debit(tenant=tenant, amount=D("50"), idempotency_key="step-2", hold=hold)
    assert (step2.available_after, step2.transaction.from_hold) == (D("40"), D("30"))
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (D("40"), D("0"))

    # Nothing is left to release; a second run's hold is released whole.
    assert ledger_hold_release(tenant=tenant, hold=hold) == D("0")
    hold2 = ledger_hold_place(tenant=tenant, amount=D("25"), reference="run-2")
    assert balance_get(tenant=tenant).available == D("15")
    assert ledger_verify() == []
    assert ledger_hold_release(tenant=tenant, hold=hold2) == D("25")
    assert ledger_hold_release(tenant=tenant, hold=hold2) == D("0")

    assert statement(tenant, {pack.pk: "pack"}) == [
        ("grant", "pack", D("100"), D("100")),
        ("hold", "hold", D("-40"), D("60")),
        ("debit", "pack", D("-10"), D("60")),
        ("debit", "pack", D("-50"), D("40")),
        ("hold", "hold", D("-25"), D("15")),
        ("release", "hold", D("25"), D("40")),
    ]
    balance = balance_get(tenant=tenant)
    assert (balance.available, balance.reserved) == (D("40"), D("0"))
    assert ledger_verify() == []


def test_a_hold_whose_credits_expire_spends_only_what_is_left(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    """Decision: a hold reserves an amount of the balance, not particular buckets. If the
    credits under it expire, the balance shows the shortfall (available < 0) and the hold's
    debits are paid only while the buckets still cover them."""
    ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub-1",
        expires_at=at(1, month=2, hour=0),
    )
    hold = ledger_hold_place(tenant=tenant, amount=D("80"), reference="run-1")
    frozen_time.move_to(at(1, month=2))
    assert balance_get(tenant=tenant).available == D("-80")
    with pytest.raises(InsufficientCredits):
        ledger_debit(tenant=tenant, amount=D("10"), idempotency_key="s1", hold=hold)

    ledger_grant(
        tenant=tenant, credits=50, policy=P.PERMANENT, source=S.TOPUP, external_reference="pack-1"
    )
    step = ledger_debit(tenant=tenant, amount=D("10"), idempotency_key="s2", hold=hold)
    assert step.available_after == D("-30")
    assert ledger_hold_release(tenant=tenant, hold=hold) == D("70")
    assert balance_get(tenant=tenant).available == D("40")
    assert ledger_expire_due() == 1
    assert ledger_verify() == []


def test_a_debit_refunded_in_two_steps_after_its_buckets_expired(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given: two subscription grants ending on 1 February, a paid one (40 credits at 2 cents)
    # and a free one (10); a debit of 15 draws the free one first (10), then 5 of the paid one.
    paid = ledger_grant(
        tenant=tenant,
        credits=40,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub-paid",
        expires_at=at(1, month=2, hour=0),
        price_minor=80,
    ).bucket
    free = ledger_grant(
        tenant=tenant,
        credits=10,
        policy=P.MONTHLY_RESET,
        source=S.PROMOTION,
        external_reference="sub-free",
        expires_at=at(1, month=2, hour=0),
    ).bucket
    debit = ledger_debit(tenant=tenant, amount=D("15"), idempotency_key="usage:1")
    assert [(p.bucket_id, p.amount) for p in debit.parts] == [(free.pk, D("10")), (paid.pk, D("5"))]

    # When: both buckets have expired, the vendor refunds 2 credits of the debit, then the rest.
    frozen_time.move_to(at(2, month=2))
    ledger_reverse(tenant=tenant, debit=debit.transaction, idempotency_key="r1", amount=D("2"))
    ledger_reverse(tenant=tenant, debit=debit.transaction, idempotency_key="r2")

    # Then: the refunds go back last drawn first, each into a permanent refund bucket with the
    # cost basis of the bucket it was drawn from: the paid bucket's 5 (2, then 3), then the
    # free bucket's 10. (The second refund once counted the first against the wrong bucket and
    # gave the paid bucket's cost basis to 5 credits of the free one.)
    refunds = CreditBucket.objects.filter(tenant=tenant, source=S.REFUND).order_by("id")
    assert [(b.external_reference, b.granted, b.cost_basis_minor) for b in refunds] == [
        (f"refund:r1:{paid.pk}", D("2"), D("2")),
        (f"refund:r2:{paid.pk}", D("3"), D("2")),
        (f"refund:r2:{free.pk}", D("10"), D("0")),
    ]
    assert balance_get(tenant=tenant).available == D("15")
    assert ledger_verify(tenant=tenant) == []
