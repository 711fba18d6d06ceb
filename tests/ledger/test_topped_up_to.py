"""What a tenant was last topped up to (CreditAccount.topped_up_to), the base of "% remaining".

Set to the available balance right after every grant; a refund or a positive adjustment raises
it, never lowers it; debits, holds, releases and expiry leave it. Clock: 2026-01-15 12:00 UTC.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.contrib.auth.models import User

from ledger.models import CreditAccount, CreditBucket, LedgerTransaction
from ledger.selectors import balance_get, ledger_verify
from ledger.services import (
    credit_account_update,
    ledger_adjust,
    ledger_debit,
    ledger_expire_due,
    ledger_grant,
    ledger_hold_place,
    ledger_hold_release,
    ledger_reverse,
)
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source
D = Decimal
PERIOD_END = datetime(2026, 2, 1, tzinfo=UTC)


def base(tenant: Tenant) -> tuple[Decimal, Decimal]:
    """(available, topped_up_to) as a balance read reports them."""
    balance = balance_get(tenant=tenant)
    return balance.available, balance.topped_up_to


def pack(tenant: Tenant, reference: str, credits: int = 100) -> None:
    ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference=reference,
        price_minor=credits * 10,
    )


def included(
    tenant: Tenant,
    reference: str,
    credits: int,
    expires_at: datetime = PERIOD_END,
    granted_at: datetime | None = None,
) -> None:
    """A subscription period's included credits."""
    ledger_grant(
        tenant=tenant,
        credits=credits,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference=reference,
        granted_at=granted_at,
        expires_at=expires_at,
    )


def spend(tenant: Tenant, amount: str, key: str) -> LedgerTransaction:
    return ledger_debit(tenant=tenant, amount=D(amount), idempotency_key=key).transaction


def test_pay_as_you_go_the_base_is_the_last_pack_not_every_pack_ever_bought(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given 11 packs of 100 bought and spent, one after the other
    for n in range(1, 12):
        pack(tenant, f"pack-{n}")
        assert base(tenant) == (D(100), D(100))
        spend(tenant, "100", f"spend-{n}")
        assert base(tenant) == (D(0), D(100))
    # When a 12th is bought
    pack(tenant, "pack-12")
    # Then it was topped up to 100 (not 1,200: spent packs are no part of the base)
    assert base(tenant) == (D(100), D(100))
    spend(tenant, "85", "spend-12")
    assert base(tenant) == (D(15), D(100))
    assert ledger_verify() == []


def test_subscription_a_period_plus_what_a_top_up_carried_over(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given January's 1000 included credits and a pack of 300, 1100 spent (the subscription's
    # credits first: they expire first)
    included(tenant, "sub:1:2026-01", 1000)
    pack(tenant, "pack-1", 300)
    assert base(tenant) == (D(1300), D(1300))
    spend(tenant, "1100", "january")
    assert base(tenant) == (D(200), D(1300))
    # When February's period is paid for and its 1000 credits granted
    frozen_time.move_to(datetime(2026, 2, 1, 1, tzinfo=UTC))
    included(tenant, "sub:1:2026-02", 1000, expires_at=datetime(2026, 3, 1, tzinfo=UTC))
    # Then the base is the period's 1000 plus the 200 carried over from the pack
    assert base(tenant) == (D(1200), D(1200))
    # and the renewal's expiry of what January left (nothing here) does not move it
    assert ledger_expire_due() == 0
    assert base(tenant) == (D(1200), D(1200))


def test_contract_a_tranche_repays_the_overdraft_and_tops_up_to_what_is_left(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given a contract's first tranche of 6000, all spent and 200 more lent by the overdraft
    credit_account_update(tenant=tenant, overdraft_limit=D(500))
    ledger_grant(
        tenant=tenant,
        credits=6000,
        policy=P.ROLLING_12M,
        source=S.CONTRACT,
        external_reference="contract:1:1",
        price_minor=600_000,
    )
    spend(tenant, "6200", "q1")
    assert base(tenant) == (D(-200), D(6000))
    # When the next tranche of 6000 is granted
    frozen_time.shift(timedelta(days=90))
    ledger_grant(
        tenant=tenant,
        credits=6000,
        policy=P.ROLLING_12M,
        source=S.CONTRACT,
        external_reference="contract:1:2",
        price_minor=600_000,
    )
    # Then it repays the 200 first, and the tenant was topped up to the 5800 that are left
    assert base(tenant) == (D(5800), D(5800))
    assert ledger_verify() == []


def test_a_grant_that_only_repays_part_of_an_overdraft_tops_up_to_zero(tenant: Tenant) -> None:
    credit_account_update(tenant=tenant, overdraft_limit=D(500))
    spend(tenant, "500", "lent")
    pack(tenant, "pack-1")
    assert base(tenant) == (D(-400), D(0))


def test_a_refund_never_lowers_the_base_and_raises_it_only_above_it(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    # Given a pack of 100, 60 spent, a second pack: topped up to 140
    pack(tenant, "pack-1")
    first = spend(tenant, "60", "d1")
    pack(tenant, "pack-2")
    assert base(tenant) == (D(140), D(140))
    second = spend(tenant, "130", "d2")
    assert base(tenant) == (D(10), D(140))
    # When 30 of the second debit are refunded: 40, under the base, which stays
    ledger_reverse(tenant=tenant, debit=second, idempotency_key="r1", amount=D(30))
    assert base(tenant) == (D(40), D(140))
    # When all of it and the first debit are refunded: 200, above the base, which rises to it
    ledger_reverse(tenant=tenant, debit=second, idempotency_key="r2")
    assert base(tenant) == (D(140), D(140))
    ledger_reverse(tenant=tenant, debit=first, idempotency_key="r3")
    assert base(tenant) == (D(200), D(200))
    # A replayed refund changes nothing
    ledger_reverse(tenant=tenant, debit=first, idempotency_key="r3")
    assert base(tenant) == (D(200), D(200))


def test_adjustments_up_raise_it_adjustments_down_leave_it(tenant: Tenant) -> None:
    admin = User.objects.create_user("admin")
    pack(tenant, "pack-1")
    spend(tenant, "50", "d1")
    ledger_adjust(tenant=tenant, credits="20", reason="goodwill", actor=admin, idempotency_key="a")
    assert base(tenant) == (D(70), D(100))
    ledger_adjust(tenant=tenant, credits="45", reason="outage", actor=admin, idempotency_key="b")
    assert base(tenant) == (D(115), D(115))
    ledger_adjust(tenant=tenant, credits="-15", reason="error", actor=admin, idempotency_key="c")
    assert base(tenant) == (D(100), D(115))


def test_holds_releases_and_expiry_leave_it(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    included(tenant, "sub:1:2026-01", 80)
    pack(tenant, "pack-1")
    hold = ledger_hold_place(tenant=tenant, amount=D(30), reference="run-1")
    assert base(tenant) == (D(150), D(180))
    assert ledger_hold_release(tenant=tenant, hold=hold) == D(30)
    assert base(tenant) == (D(180), D(180))
    frozen_time.move_to(PERIOD_END + timedelta(hours=1))
    assert base(tenant) == (D(100), D(180))  # expired, not yet swept
    assert ledger_expire_due() == 1
    assert base(tenant) == (D(100), D(180))


def test_a_grant_already_expired_when_made_or_replayed_changes_nothing(
    tenant: Tenant, frozen_time: time_machine.Traveller
) -> None:
    pack(tenant, "pack-1")
    spend(tenant, "40", "d1")
    december = datetime(2025, 12, 1, tzinfo=UTC)
    included(tenant, "sub:1:2025-12", 500, datetime(2026, 1, 1, tzinfo=UTC), granted_at=december)
    assert base(tenant) == (D(60), D(100))
    pack(tenant, "pack-1")  # a retried grant
    assert base(tenant) == (D(60), D(100))


def test_a_tenant_never_granted_anything_has_a_base_of_zero(tenant: Tenant) -> None:
    assert base(tenant) == (D(0), D(0))
    credit_account_update(tenant=tenant, overdraft_limit=D(50))
    spend(tenant, "20", "d1")
    assert CreditAccount.objects.get(tenant=tenant).topped_up_to == D(0)
