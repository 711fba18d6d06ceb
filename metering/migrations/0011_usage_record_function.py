"""metering_usage_record (metering/sql/record_v1.sql): a batch of usage events recorded in one
statement, which calls the ledger's ledger_debit_batch and inserts the events paid for. A
change is a new file and a new migration."""

from pathlib import Path

from django.db import migrations

SQL = Path(__file__).resolve().parent.parent / "sql"
DROP = """
DROP FUNCTION IF EXISTS metering_usage_record(
    bigint, timestamptz, timestamptz, text, boolean, integer,
    text[], numeric[], bigint[], text[], text[], text[], json, text, numeric
);
DROP FUNCTION IF EXISTS metering_currency_needed();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("metering", "0010_usageevent_gpu_seconds"),
        ("ledger", "0009_debit_writes_its_watch_message"),
    ]

    operations = [
        migrations.RunSQL((SQL / "record_v1.sql").read_text(), DROP),
    ]
