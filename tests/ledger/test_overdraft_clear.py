"""An overdraft cleared by an invoice (ledger_overdraft_clear): one settlement entry on the
overdraft bucket, at most what is owed now, once per key; what was owed at a past moment
(overdraft_owed) counts the entries dated before it; ledger_verify finds nothing amiss."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine

from ledger.exceptions import IdempotencyConflict, InvalidAmount
from ledger.models import CreditBucket, LedgerEntry
from ledger.selectors import balance_get, credit_account_get, ledger_verify, overdraft_owed
from ledger.services import credit_account_update, ledger_debit, ledger_grant
from ledger.services.overdraft import ledger_overdraft_clear
from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def test_clearing_the_overdraft_restores_its_room_once(tenant: Tenant) -> None:
    credit_account_update(tenant=tenant, overdraft_limit=Decimal("100"))
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False):
        ledger_debit(tenant=tenant, amount=Decimal("60"), idempotency_key="a")
    with time_machine.travel(datetime(2026, 2, 5, tzinfo=UTC), tick=False):
        ledger_debit(tenant=tenant, amount=Decimal("15"), idempotency_key="b")
    assert overdraft_owed(tenant_id=tenant.pk) == Decimal("75")
    assert overdraft_owed(tenant_id=tenant.pk, at=datetime(2026, 2, 1, tzinfo=UTC)) == Decimal("60")

    with pytest.raises(InvalidAmount) as refused:
        ledger_overdraft_clear(tenant=tenant, credits=Decimal("80"), idempotency_key="inv:1")
    assert refused.value.details == {"owed": "75.0000"}

    cleared = ledger_overdraft_clear(
        tenant=tenant,
        credits=Decimal("60"),
        idempotency_key="inv:1",
        source_type="billing.contractinvoice",
        source_id="7",
    )
    again = ledger_overdraft_clear(tenant=tenant, credits=Decimal("60"), idempotency_key="inv:1")
    assert (cleared.credits, again.replayed, again.transaction_id) == (
        Decimal("60"),
        True,
        cleared.transaction_id,
    )
    with pytest.raises(IdempotencyConflict):
        ledger_overdraft_clear(tenant=tenant, credits=Decimal("5"), idempotency_key="inv:1")

    assert balance_get(tenant=tenant).available == Decimal("-15")
    assert credit_account_get(tenant=tenant).overdraft_used == Decimal("15")
    entry = LedgerEntry.objects.get(tenant=tenant, kind="settlement")
    assert (entry.amount, entry.balance_after, entry.transaction.source_id) == (
        Decimal("60.0000"),
        Decimal("-15.0000"),
        "7",
    )
    # A grant afterwards repays only what is still owed, never what was invoiced.
    ledger_grant(
        tenant=tenant,
        credits=Decimal("100"),
        policy=CreditBucket.Policy.PERMANENT,
        source=CreditBucket.Source.TOPUP,
        external_reference="pack",
    )
    assert balance_get(tenant=tenant).available == Decimal("85")
    assert overdraft_owed(tenant_id=tenant.pk) == Decimal("0")
    assert ledger_verify(tenant=tenant) == []
