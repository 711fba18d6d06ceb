"""The ledger's account keeps credit facts only: the alert thresholds and the soft cap have moved
to the apps that apply them (billing and metering copy them first: their migrations run before
this one, by `run_before`, so this one names no other app). The debit's SQL function is
replaced by ledger/sql/debit_v2.sql, whose new account rows no longer name the two columns.

Unapplied, the columns come back with every tenant on the defaults (alerts at 20% and 10%, no
soft cap of its own), and debit_v1.sql with them.
"""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql"
DROP = """
ALTER TABLE ledger_creditaccount DROP COLUMN alert_thresholds, DROP COLUMN soft_cap
"""
RESTORE = """
ALTER TABLE ledger_creditaccount
    ADD COLUMN alert_thresholds jsonb NOT NULL DEFAULT '[20, 10]'::jsonb,
    ADD COLUMN soft_cap numeric(18, 4) NULL;
ALTER TABLE ledger_creditaccount ALTER COLUMN alert_thresholds DROP DEFAULT
"""


class Migration(migrations.Migration):

    dependencies = [
        ('ledger', '0007_topped_up_to'),
    ]

    operations = [
        migrations.RunSQL((SQL / "debit_v2.sql").read_text(), (SQL / "debit_v1.sql").read_text()),
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(DROP, RESTORE)],
            state_operations=[
                migrations.RemoveField(model_name='creditaccount', name='alert_thresholds'),
                migrations.RemoveField(model_name='creditaccount', name='soft_cap'),
            ],
        ),
    ]
