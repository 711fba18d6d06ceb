"""The alert thresholds move from the ledger's account (CreditAccount.alert_thresholds) to
billing's own AlertSettings: every account's thresholds are copied as they are (an empty list
too: that tenant wants no low-balance alerts). Runs before the ledger drops the column
(ledger 0008, by `run_before`). Unapplied, nothing is copied back (billing writes no ledger
row): unapplying ledger 0008 gives every account the default thresholds."""

import billing.models
import django.db.models.deletion
from django.db import migrations, models

COPY = """
INSERT INTO billing_alertsettings (tenant_id, thresholds, updated_at)
SELECT tenant_id, alert_thresholds, now() FROM ledger_creditaccount
"""


class Migration(migrations.Migration):

    run_before = [
        ('ledger', '0008_settings_leave_the_ledger'),
    ]

    dependencies = [
        ('billing', '0005_existing_api_keys_keep_billing'),
        ('ledger', '0006_widen_transaction_key'),
        ('tenants', '0003_outbox_and_leases'),
    ]

    operations = [
        migrations.CreateModel(
            name='AlertSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('thresholds', models.JSONField(default=billing.models.default_alert_thresholds)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('tenant', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant')),
            ],
            options={
                'verbose_name_plural': 'alert settings',
                'constraints': [models.UniqueConstraint(fields=('tenant',), name='alertsettings_tenant_uniq')],
            },
        ),
        migrations.RunSQL(COPY, migrations.RunSQL.noop),
    ]
