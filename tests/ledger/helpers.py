"""Reading the ledger back in tests: the statement as rows a reader can check by eye."""

from datetime import datetime
from decimal import Decimal

from django.db import connection

from ledger.models import CreditBucket
from ledger.selectors import entry_list
from ledger.services import credit_account_update
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


_SEED_DUE = """
WITH b AS (
    INSERT INTO ledger_creditbucket (
        tenant_id, source, policy, granted, remaining, granted_at, expires_at, price_minor,
        currency, cost_basis_minor, external_reference, is_overdraft, created_at
    )
    SELECT t, 'subscription', 'monthly_reset', %(credits)s, %(credits)s, %(granted)s,
           %(expires)s, 0, 'USD', 0, %(prefix)s || n, false, %(granted)s
      FROM unnest(%(tenants)s::bigint[]) t, generate_series(1, %(per)s) n
    RETURNING id, tenant_id
),
bt AS MATERIALIZED (
    SELECT id, tenant_id,
           nextval(pg_get_serial_sequence('ledger_ledgertransaction', 'id')) AS tx
      FROM b
),
tx AS (
    INSERT INTO ledger_ledgertransaction (
        id, tenant_id, kind, amount, from_hold, idempotency_key, source_type, source_id, memo,
        created_at
    )
    SELECT tx, tenant_id, 'grant', %(credits)s, 0, 'grant:sub-' || id, '', '', '', %(granted)s
      FROM bt
)
INSERT INTO ledger_ledgerentry (
    tenant_id, transaction_id, kind, amount, bucket_id, balance_after, created_at
)
SELECT tenant_id, tx, 'grant', %(credits)s, id, %(credits)s, %(granted)s FROM bt
"""


def seed_due_buckets(
    tenants: list[Tenant],
    per_tenant: int,
    *,
    granted: datetime,
    expires: datetime,
    prefix: str = "sub-",
) -> int:
    """`per_tenant` monthly_reset buckets of 3 credits for each tenant, set-based: the rows
    ledger_grant would write (bucket, grant transaction and entry, account totals), for tests
    that need thousands of them (references `<prefix><n>`). Check with ledger_verify() before
    relying on them."""
    ids = [t.pk for t in tenants]
    for tenant in tenants:
        credit_account_update(tenant=tenant)  # makes the account
    with connection.cursor() as cursor:
        cursor.execute(
            _SEED_DUE,
            {
                "tenants": ids,
                "per": per_tenant,
                "credits": Decimal(3),
                "granted": granted,
                "expires": expires,
                "prefix": prefix,
            },
        )
        cursor.execute(
            "UPDATE ledger_creditaccount SET monthly_reset_total = monthly_reset_total + %s "
            "WHERE tenant_id = ANY(%s::bigint[])",
            [Decimal(3 * per_tenant), ids],
        )
    return len(ids) * per_tenant
