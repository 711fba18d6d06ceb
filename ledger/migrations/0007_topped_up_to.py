"""The account keeps `topped_up_to`, the base of "% remaining" (ledger/models.py).

Filled from each tenant's history by the rule the services keep from now on, replayed: the
available balance right after the latest grant that added spendable credits (a grant already
expired when made adds none and changes nothing), raised by every later refund or positive
adjustment whose balance after it is higher; never below 0; 0 for a tenant that was never
granted anything.
"""

from decimal import Decimal

from django.db import migrations, models

BACKFILL = """
WITH last_grant AS (
    SELECT DISTINCT ON (e.tenant_id) e.tenant_id, e.id, e.balance_after
      FROM ledger_ledgerentry e
      JOIN ledger_creditbucket b ON b.id = e.bucket_id
     WHERE e.kind = 'grant' AND (b.expires_at IS NULL OR b.expires_at > e.created_at)
     ORDER BY e.tenant_id, e.id DESC
), raised AS (
    SELECT e.tenant_id, max(e.balance_after) AS balance_after
      FROM ledger_ledgerentry e
      LEFT JOIN last_grant g ON g.tenant_id = e.tenant_id
     WHERE (e.kind = 'reversal' OR (e.kind = 'adjustment' AND e.amount > 0))
       AND e.id > coalesce(g.id, 0)
     GROUP BY e.tenant_id
)
UPDATE ledger_creditaccount a
   SET topped_up_to = greatest(
       0,
       coalesce((SELECT g.balance_after FROM last_grant g WHERE g.tenant_id = a.tenant_id), 0),
       coalesce((SELECT r.balance_after FROM raised r WHERE r.tenant_id = a.tenant_id), 0)
   )
"""


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0006_widen_transaction_key'),
        ('tenants', '0003_outbox_and_leases'),
    ]

    operations = [
        migrations.AddField(
            model_name='creditaccount',
            name='topped_up_to',
            field=models.DecimalField(db_default=Decimal('0'), decimal_places=4, default=Decimal('0'), max_digits=18),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.AddConstraint(
            model_name='creditaccount',
            constraint=models.CheckConstraint(condition=models.Q(('topped_up_to__gte', 0)), name='creditaccount_topped_up_to_gte_0'),
        ),
    ]
