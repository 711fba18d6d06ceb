"""The database and the ORM both refuse to change history (docs/architecture.md, money
invariants 1-4)."""

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from ledger.models import CreditBucket, LedgerEntry, LedgerTransaction
from ledger.services import ledger_debit, ledger_expire_due, ledger_grant
from tenants.models import Tenant

pytestmark = pytest.mark.django_db

P = CreditBucket.Policy
S = CreditBucket.Source


@pytest.fixture
def debit(tenant: Tenant) -> LedgerTransaction:
    ledger_grant(
        tenant=tenant,
        credits=10,
        policy=P.PERMANENT,
        source=S.PROMOTION,
        external_reference="promo",
    )
    return ledger_debit(tenant=tenant, amount=Decimal("4"), idempotency_key="d1").transaction


def raw(sql: str, params: list[Any] | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.parametrize("table", ["ledger_ledgerentry", "ledger_ledgertransaction"])
@pytest.mark.parametrize(
    "sql",
    ["UPDATE {table} SET memo = memo", "UPDATE {table} SET amount = 1", "DELETE FROM {table}"],
)
def test_the_trigger_refuses_raw_update_and_delete(
    debit: LedgerTransaction, table: str, sql: str
) -> None:
    if "memo" in sql and table == "ledger_ledgerentry":
        sql = "UPDATE {table} SET kind = kind"
    with pytest.raises(DatabaseError, match=f"ledger rows are append-only: .* on {table} refused"):
        raw(sql.format(table=table))
    assert LedgerEntry.objects.count() == 2


@pytest.mark.parametrize("model", [LedgerEntry, LedgerTransaction])
@pytest.mark.parametrize(
    "change",
    [
        lambda row: row.save(),
        lambda row: row.delete(),
        lambda row: type(row).objects.filter(pk=row.pk).update(memo="x"),
        lambda row: type(row).objects.filter(pk=row.pk).delete(),
    ],
    ids=["save", "delete", "queryset-update", "queryset-delete"],
)
def test_the_orm_refuses_to_change_a_row(
    debit: LedgerTransaction,
    model: type[LedgerEntry | LedgerTransaction],
    change: Callable[[Any], object],
) -> None:
    row = model.objects.filter(tenant_id=debit.tenant_id).first()
    with pytest.raises(PermissionError, match=f"{model.__name__} rows are append-only."):
        change(row)


def test_a_zero_entry_is_refused_by_a_check_constraint(debit: LedgerTransaction) -> None:
    entry = LedgerEntry.objects.get(transaction=debit)
    with pytest.raises(IntegrityError, match="entry_amount_ne_0"):
        raw(
            "INSERT INTO ledger_ledgerentry (tenant_id, transaction_id, kind, amount, bucket_id,"
            " balance_after, created_at) VALUES (%s, %s, 'debit', 0, %s, 0, now())",
            [debit.tenant_id, debit.pk, entry.bucket_id],
        )


def test_a_bucket_below_zero_is_refused_unless_it_is_the_overdraft(
    debit: LedgerTransaction,
) -> None:
    with pytest.raises(IntegrityError, match="bucket_remaining_gte_0"):
        raw("UPDATE ledger_creditbucket SET remaining = -1 WHERE is_overdraft = false")
    with pytest.raises(IntegrityError, match="bucket_granted_gt_0"):
        raw("UPDATE ledger_creditbucket SET granted = 0, remaining = 0")


def test_a_second_expiry_entry_for_a_bucket_is_refused(tenant: Tenant, frozen_time: Any) -> None:
    now = timezone.now()
    bucket = ledger_grant(
        tenant=tenant,
        credits=10,
        policy=P.MONTHLY_RESET,
        source=S.SUBSCRIPTION,
        external_reference="sub",
        expires_at=now + timedelta(days=1),
    ).bucket
    frozen_time.shift(timedelta(days=2))
    assert ledger_expire_due() == 1
    expiry = LedgerEntry.objects.get(bucket=bucket, kind="expiry")
    with pytest.raises(IntegrityError, match="entry_one_expiry_per_bucket"):
        raw(
            "INSERT INTO ledger_ledgerentry (tenant_id, transaction_id, kind, amount, bucket_id,"
            " balance_after, created_at) VALUES (%s, %s, 'expiry', -1, %s, 0, now())",
            [tenant.pk, expiry.transaction_id, bucket.pk],
        )
