"""Tenant A's ledger rows for the isolation walk: B's /balance, /ledger-entries and /buckets
must show none of A's grants, debits or memos. The ledger routes take no URL kwargs."""

from decimal import Decimal

from ledger.models import CreditBucket
from ledger.services import ledger_debit, ledger_grant
from tenants.models import Tenant
from tests.isolation import MARKER, register


@register
def seed_ledger(tenant: Tenant) -> dict[str, str]:
    ledger_grant(
        tenant=tenant,
        credits=Decimal("4321.0987"),
        policy=CreditBucket.Policy.PERMANENT,
        source=CreditBucket.Source.PROMOTION,
        external_reference=f"{MARKER}-grant",
        memo=f"{MARKER} grant",
    )
    ledger_debit(
        tenant=tenant,
        amount=Decimal("1.2345"),
        idempotency_key=f"{MARKER}-debit",
        source_type="isolation",
        source_id=f"{MARKER}-source",
        memo=f"{MARKER} debit",
    )
    return {
        "ledger_debit_key": f"{MARKER}-debit",
        "ledger_debit_memo": f"{MARKER} debit",
        "ledger_remaining": "4319.8642",
    }
