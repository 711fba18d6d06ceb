"""The account keeps its totals (O(1) balances) and the debit becomes one SQL function.

Totals are filled from the buckets as they stand; ledger/sql/debit_v1.sql is the debit and
ledger/sql/expire_v1.sql the sweep's step (a later change to either is a new file and a new
migration, so this one stays what it ran). Single-column foreign-key indexes go: composites
that start with the tenant serve every lookup (ledger/models.py says which).
"""

from pathlib import Path

import django.db.models.deletion
import django.db.models.expressions
from decimal import Decimal
from django.conf import settings
from django.db import migrations, models


SQL = Path(__file__).resolve().parent.parent / "sql"

BACKFILL = """
UPDATE ledger_creditaccount a
   SET monthly_reset_total = s.monthly, permanent_total = s.permanent,
       rolling_12m_total = s.rolling, overdraft_used = s.overdraft
  FROM (
    SELECT tenant_id,
           coalesce(sum(remaining) FILTER (
               WHERE NOT is_overdraft AND policy = 'monthly_reset'), 0) AS monthly,
           coalesce(sum(remaining) FILTER (
               WHERE NOT is_overdraft AND policy = 'permanent'), 0) AS permanent,
           coalesce(sum(remaining) FILTER (
               WHERE NOT is_overdraft AND policy = 'rolling_12m'), 0) AS rolling,
           -coalesce(sum(remaining) FILTER (WHERE is_overdraft), 0) AS overdraft
      FROM ledger_creditbucket GROUP BY tenant_id
  ) s
 WHERE a.tenant_id = s.tenant_id
"""


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0002_append_only_trigger'),
        ('tenants', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='creditbucket',
            name='bucket_tenant_spendable_idx',
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='monthly_reset_total',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=18),
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='overdraft_used',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=18),
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='permanent_total',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=18),
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='rolling_12m_total',
            field=models.DecimalField(decimal_places=4, default=Decimal('0'), max_digits=18),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='bucket',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='ledger.creditbucket'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='hold',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='ledger.credithold'),
        ),
        migrations.AlterField(
            model_name='ledgerentry',
            name='transaction',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='entries', to='ledger.ledgertransaction'),
        ),
        migrations.AlterField(
            model_name='ledgertransaction',
            name='actor',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AlterField(
            model_name='ledgertransaction',
            name='hold',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to='ledger.credithold'),
        ),
        migrations.AlterField(
            model_name='ledgertransaction',
            name='reverses',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reversals', to='ledger.ledgertransaction'),
        ),
        migrations.AddIndex(
            model_name='creditbucket',
            index=models.Index(condition=models.Q(('remaining__gt', 0)), fields=['tenant', 'expires_at', 'cost_basis_minor', 'granted_at', 'id'], name='bucket_tenant_spendable_idx'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(fields=['tenant', 'transaction'], name='entry_tenant_tx_idx'),
        ),
        migrations.AddIndex(
            model_name='ledgerentry',
            index=models.Index(condition=models.Q(('hold__isnull', False)), fields=['tenant', 'hold'], name='entry_tenant_hold_idx'),
        ),
        migrations.AddIndex(
            model_name='ledgertransaction',
            index=models.Index(condition=models.Q(('hold__isnull', False)), fields=['tenant', 'hold'], name='ledgertx_tenant_hold_idx'),
        ),
        migrations.AddIndex(
            model_name='ledgertransaction',
            index=models.Index(condition=models.Q(('reverses__isnull', False)), fields=['tenant', 'reverses'], name='ledgertx_tenant_reverses_idx'),
        ),
        migrations.AddConstraint(
            model_name='creditaccount',
            constraint=models.CheckConstraint(condition=models.Q(('monthly_reset_total__gte', 0), ('overdraft_used__gte', 0), ('permanent_total__gte', 0), ('rolling_12m_total__gte', 0)), name='creditaccount_totals_gte_0'),
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='available',
            field=models.GeneratedField(db_persist=True, expression=django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(django.db.models.expressions.CombinedExpression(models.F('monthly_reset_total'), '+', models.F('permanent_total')), '+', models.F('rolling_12m_total')), '-', models.F('overdraft_used')), '-', models.F('reserved')), output_field=models.DecimalField(decimal_places=4, max_digits=20)),
        ),
        migrations.AddField(
            model_name='creditaccount',
            name='watch_level',
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=18, null=True),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(
            (SQL / "debit_v1.sql").read_text(),
            "DROP FUNCTION IF EXISTS ledger_debit_batch(bigint, timestamptz, timestamptz, text, "
            "boolean, integer, text[], numeric[], bigint[], text[], text[], text[])",
        ),
        migrations.RunSQL(
            (SQL / "expire_v1.sql").read_text(),
            "DROP FUNCTION IF EXISTS ledger_expire_tenants(bigint[], timestamptz)",
        ),
    ]
