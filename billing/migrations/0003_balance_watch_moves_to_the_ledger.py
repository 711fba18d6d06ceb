"""The watch level lives on the ledger account now (CreditAccount.watch_level); the next evaluation sets it."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('billing', '0002_contract_terms_applied_at'),
    ]

    operations = [
        migrations.DeleteModel(
            name='BalanceWatch',
        ),
    ]
