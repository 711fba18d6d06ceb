"""The tenant foreign key needs no index of its own here: a tenant-first composite serves it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('metering', '0003_event_fk_indexes'),
        ('tenants', '0002_configstamp'),
    ]

    operations = [
        migrations.AlterField(
            model_name='usageevent',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant'),
        ),
        migrations.AlterField(
            model_name='workflowrun',
            name='tenant',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='tenants.tenant'),
        ),
    ]
