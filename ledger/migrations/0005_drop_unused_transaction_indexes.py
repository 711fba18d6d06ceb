"""Transactions lose the two indexes nothing reads (ledger/models.py says why)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0004_tenant_fk_without_index'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='ledgertransaction',
            name='ledgertx_tenant_created_idx',
        ),
        migrations.RemoveIndex(
            model_name='ledgertransaction',
            name='ledgertx_source_idx',
        ),
    ]
