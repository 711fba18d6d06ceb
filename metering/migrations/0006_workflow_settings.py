"""The soft cap moves from the ledger's account (CreditAccount.soft_cap) to metering's own
WorkflowSettings: a row for every account that set one (a negative one, which only code could
set, becomes 0: the new column refuses it); the others keep the default. Runs before the
ledger drops the column (ledger 0008, by `run_before`). Unapplied, nothing is copied back
(metering writes no ledger row): unapplying ledger 0008 leaves every account without one."""

import django.db.models.deletion
from django.db import migrations, models

COPY = """
INSERT INTO metering_workflowsettings (tenant_id, soft_cap, updated_at)
SELECT tenant_id, greatest(soft_cap, 0), now() FROM ledger_creditaccount
 WHERE soft_cap IS NOT NULL
"""


class Migration(migrations.Migration):

    run_before = [
        ('ledger', '0008_settings_leave_the_ledger'),
    ]

    dependencies = [
        ('ledger', '0006_widen_transaction_key'),
        ('metering', '0005_leaner_event_indexes'),
        ('tenants', '0003_outbox_and_leases'),
    ]

    operations = [
        migrations.CreateModel(
            name='WorkflowSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('soft_cap', models.DecimalField(blank=True, decimal_places=4, max_digits=18, null=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name_plural': 'workflow settings',
                'constraints': [models.UniqueConstraint(fields=('tenant',), name='workflowsettings_tenant_uniq'), models.CheckConstraint(condition=models.Q(('soft_cap__gte', 0)), name='workflowsettings_soft_cap_gte_0')],
            },
        ),
        migrations.RunSQL(COPY, migrations.RunSQL.noop),
    ]
