"""Reading the ledger back in tests: the statement as rows a reader can check by eye."""

from decimal import Decimal

from ledger.models import CreditBucket
from ledger.selectors import entry_list
from tenants.models import Tenant


def statement(tenant: Tenant, names: dict[int, str]) -> list[tuple[str, str, Decimal, Decimal]]:
    """(kind, bucket name, amount, balance_after) oldest first; hold entries name the hold."""
    rows = []
    for entry in reversed(list(entry_list(tenant=tenant))):
        where = names.get(entry.bucket_id or 0, str(entry.bucket_id)) if entry.bucket_id else "hold"
        rows.append((entry.kind, where, entry.amount, entry.balance_after))
    return rows


def remaining(*buckets: CreditBucket) -> list[Decimal]:
    return [CreditBucket.objects.get(pk=b.pk).remaining for b in buckets]
