"""Usage events carry no single-column foreign-key indexes (metering/models.py says why)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0003_account_totals_lean_debit'),
        ('metering', '0002_usageevent'),
        ('ratecards', '0003_assignment_history'),
    ]

    operations = [
        migrations.AlterField(
            model_name='usageevent',
            name='ledger_transaction',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ledger.ledgertransaction'),
        ),
        migrations.AlterField(
            model_name='usageevent',
            name='rate_card_version',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='ratecards.ratecardversion'),
        ),
        migrations.AlterField(
            model_name='usageevent',
            name='workflow_run',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='usage_events', to='metering.workflowrun'),
        ),
    ]
