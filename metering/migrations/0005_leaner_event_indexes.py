"""Usage events: the run index only for events in a run; no index by action (metering/models.py)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0005_drop_unused_transaction_indexes'),
        ('metering', '0004_tenant_fk_without_index'),
        ('ratecards', '0003_assignment_history'),
        ('tenants', '0002_configstamp'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='usageevent',
            name='usageevent_action_idx',
        ),
        migrations.RemoveIndex(
            model_name='usageevent',
            name='usageevent_run_idx',
        ),
        migrations.AddIndex(
            model_name='usageevent',
            index=models.Index(condition=models.Q(('workflow_run__isnull', False)), fields=['tenant', 'workflow_run'], name='usageevent_run_idx'),
        ),
    ]
