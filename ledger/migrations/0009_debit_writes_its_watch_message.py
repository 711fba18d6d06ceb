"""The debit writes its own watch-level outbox message (ledger/sql/debit_v3.sql): a debit
outside a caller's transaction is one statement again. Its result gains a column, so the old
function is dropped first (CREATE OR REPLACE cannot change a function's result type)."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql"
DROP = """
DROP FUNCTION IF EXISTS ledger_debit_batch(
    bigint, timestamptz, timestamptz, text, boolean, integer,
    text[], numeric[], bigint[], text[], text[], text[]
);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("ledger", "0008_settings_leave_the_ledger"),
        ("tenants", "0005_outbox_until_handled"),
    ]

    operations = [
        migrations.RunSQL(
            DROP + (SQL / "debit_v3.sql").read_text(),
            DROP + (SQL / "debit_v2.sql").read_text(),
        ),
    ]
