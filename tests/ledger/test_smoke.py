"""A first story through the ledger's services; the full worked examples live beside it."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from ledger.exceptions import InsufficientCredits
from ledger.models import CreditBucket, LedgerEntry
from ledger.selectors import balance_get, ledger_verify
from ledger.services import (
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


def test_grant_debit_expire_reverse(tenant: Tenant, frozen_time) -> None:
    now = timezone.now()
    sub = ledger_grant(
        tenant=tenant,
        credits=100,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub-1",
        expires_at=now + timedelta(days=10),
    ).bucket
    pack = ledger_grant(
        tenant=tenant,
        credits=50,
        policy=P.PERMANENT,
        source=S.TOPUP,
        external_reference="pack-1",
        price_minor=1000,
    ).bucket
    contract = ledger_grant(
        tenant=tenant,
        credits=30,
        policy=P.ROLLING_12M,
        source=S.CONTRACT,
        external_reference="contract-1",
        price_minor=300,
    ).bucket

    result = ledger_debit(tenant=tenant, amount=Decimal("120"), idempotency_key="d1")

    assert [(p.bucket_id, p.amount) for p in result.parts] == [
        (sub.pk, Decimal("100")),
        (contract.pk, Decimal("20")),
    ]
    assert result.available_after == Decimal("60")
    assert result.revenue_minor == Decimal("200")
    again = ledger_debit(tenant=tenant, amount=Decimal("120"), idempotency_key="d1")
    assert again.replayed
    assert again.transaction.pk == result.transaction.pk

    with pytest.raises(InsufficientCredits) as refused:
        ledger_debit(tenant=tenant, amount=Decimal("60.0001"), idempotency_key="d2")
    assert refused.value.details == {"required": "60.0001", "available": "60.0000"}

    hold = ledger_hold_place(tenant=tenant, amount=Decimal("25"), reference="run-1")
    assert balance_get(tenant=tenant).available == Decimal("35")
    ledger_debit(tenant=tenant, amount=Decimal("5"), idempotency_key="d3", hold=hold)
    assert balance_get(tenant=tenant).available == Decimal("35")
    assert ledger_hold_release(tenant=tenant, hold=hold) == Decimal("20")
    assert balance_get(tenant=tenant).available == Decimal("55")

    ledger_reverse(
        tenant=tenant, debit=result.transaction, idempotency_key="r1", amount=Decimal("30")
    )
    balance = balance_get(tenant=tenant)
    assert balance.available == Decimal("85")
    assert balance.by_policy == {
        "monthly_reset": Decimal("10"),
        "permanent": Decimal("50"),
        "rolling_12m": Decimal("25"),
    }

    frozen_time.shift(timedelta(days=11))
    assert balance_get(tenant=tenant).available == Decimal("75")
    assert ledger_expire_due() == 1
    assert ledger_expire_due() == 0
    assert LedgerEntry.objects.get(bucket=sub, kind="expiry").amount == Decimal("-10")
    assert ledger_verify() == []
    assert pack.pk


def test_trigger_refuses_update_and_delete(tenant: Tenant) -> None:
    ledger_grant(
        tenant=tenant, credits=5, policy=P.PERMANENT, source=S.PROMOTION, external_reference="promo"
    )
    for sql in ("UPDATE ledger_ledgerentry SET amount = 1", "DELETE FROM ledger_ledgerentry"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql)
